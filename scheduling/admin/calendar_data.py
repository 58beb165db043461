"""What the receptionist's calendar draws, computed: its columns (professionals or rooms),
the appointments as cards, and the shaded time (outside working hours, time off, closures
and holidays, the past), as the JSON the page's script hands to the calendar component.

Times go out as the clinic's wall-clock time without an offset ("floating" for the
component), so the calendar shows the clinic's time whatever the browser's zone; the page
sends times back the same way and ``local_parse`` reads them in the clinic's zone.

A fixed number of queries whatever the number of appointments: professionals (or rooms),
working hours, time off, closures and the appointments (patient, service, professional and
room joined, the "first visit" flag annotated) — one each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, Max, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Professional, Room

from ..agenda import GRID_STATUSES, STATUS_ACTIONS
from ..availability import holiday_name
from ..choices import OCCUPYING_STATUSES, TRANSITIONS, AppointmentStatus
from ..models import Appointment, ClinicClosure, TimeOff, WorkingHours

S = AppointmentStatus
#: The longest range one request may ask for (a week view and its margins).
MAX_DAYS = 14
#: Hours drawn when nobody works and nothing is booked.
DEFAULT_HOURS = (8, 18)
#: What a card can still be moved from: the statuses a reschedule accepts.
MOVABLE = {S.SCHEDULED, S.CONFIRMED}
#: A text symbol beside each status, so that colour is never the only signal (WCAG 1.4.1).
STATUS_ICONS = {
    S.SCHEDULED: "○",
    S.CONFIRMED: "✓",
    S.ARRIVED: "⌂",
    S.IN_PROGRESS: "▶",
    S.COMPLETED: "✔",
    S.NO_SHOW: "✕",
    S.CANCELLED: "⊘",
    S.RESCHEDULED: "↷",
}


def local_str(moment: datetime, zone) -> str:
    """``2026-06-10T14:00:00``: a moment as the clinic's wall-clock time, no offset."""
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def local_parse(value: str, zone) -> datetime:
    """A wall-clock time sent by the page (``2026-06-10T14:00`` or with seconds; an offset,
    if any, is honoured) as an aware datetime. Raises ``ValueError`` on nonsense."""
    moment = datetime.fromisoformat((value or "").strip())
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=zone)
    if not 1900 <= moment.year <= 2999:
        raise ValueError(value)
    return moment


def utc_offset(zone, day: date) -> str:
    """The zone's offset at noon of ``day`` as ``-03:00`` (the component's ``timeZone``)."""
    offset = datetime.combine(day, time(12), tzinfo=zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class CalendarQuery:
    """What the page asks for: local days ``[first, last)``, columns by professional or by
    room, optionally only some professionals."""

    first: date
    last: date
    by: str = "professional"
    professional_ids: tuple[int, ...] = ()

    @classmethod
    def from_params(cls, params, zone) -> CalendarQuery:
        today = timezone.localdate(timezone=zone)
        first = _day(params.get("start"), today)
        last = _day(params.get("end"), first + timedelta(days=1))
        if last <= first:
            last = first + timedelta(days=1)
        last = min(last, first + timedelta(days=MAX_DAYS))
        ids = tuple(int(v) for v in params.getlist("professional") if str(v).isdigit())
        by = "room" if params.get("by") == "room" else "professional"
        return cls(first=first, last=last, by=by, professional_ids=ids)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days)]


def _day(value: str | None, default: date) -> date:
    try:
        day = date.fromisoformat((value or "")[:10])
    except ValueError:
        return default
    return day if 1900 <= day.year <= 2999 else default


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}:00"


def calendar_version(*, clinic, query: CalendarQuery, now: datetime) -> str:
    """A token that changes whenever what ``calendar_payload`` draws may have changed: an
    appointment of the range booked, moved or changing status (``updated_at``), time off or
    a closure added or removed, and the minute (the past's shading; working hours edited
    show within a minute). Three small aggregates instead of the whole day, so a poll that
    finds nothing new costs little."""
    zone = clinic_zone(clinic)
    range_start = datetime.combine(query.first, time.min, tzinfo=zone)
    range_end = datetime.combine(query.last, time.min, tzinfo=zone)
    appointments = (
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=range_start, start__lt=range_end)
        .aggregate(n=Count("pk"), last=Max("updated_at"), top=Max("pk"))
    )
    time_off = (
        TimeOff.objects.for_clinic(clinic)
        .filter(start__lt=range_end, end__gt=range_start)
        .aggregate(n=Count("pk"), top=Max("pk"))
    )
    closures = (
        ClinicClosure.objects.for_clinic(clinic)
        .filter(start_date__lt=query.last, end_date__gte=query.first)
        .aggregate(n=Count("pk"), top=Max("pk"))
    )
    parts = [
        now.strftime("%Y%m%d%H%M"),
        repr(query),
        *map(str, appointments.values()),
        *map(str, time_off.values()),
        *map(str, closures.values()),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def calendar_payload(*, clinic, query: CalendarQuery, now: datetime | None = None) -> dict:
    """Everything the calendar draws for ``query``: resources (columns), events (cards and
    shaded time), the visible hours and the clinic's clock."""
    zone = clinic_zone(clinic)
    now = now or timezone.now()
    range_start = datetime.combine(query.first, time.min, tzinfo=zone)
    range_end = datetime.combine(query.last, time.min, tzinfo=zone)

    appointments = card_rows(clinic=clinic, start=range_start, end=range_end)
    hours = [
        HoursRow(*row)
        for row in WorkingHours.objects.for_clinic(clinic)
        .filter(professional__is_active=True)
        .order_by("start_time")
        .values_list(
            "professional_id",
            "room_id",
            "weekday",
            "start_time",
            "end_time",
            "valid_from",
            "valid_until",
        )
    ]
    time_off = list(
        TimeOff.objects.for_clinic(clinic).filter(start__lt=range_end, end__gt=range_start)
    )
    closures = list(
        ClinicClosure.objects.for_clinic(clinic).filter(
            start_date__lt=query.last, end_date__gte=query.first
        )
    )
    closed = {}
    for day in query.days:
        reason = next(
            (c.reason for c in closures if c.start_date <= day <= c.end_date), ""
        ) or holiday_name(clinic, day)
        if reason:
            closed[day] = reason

    if query.by == "room":
        resources, opening = _room_columns(clinic, query, appointments, hours)
    else:
        resources, opening = _professional_columns(clinic, query, appointments, hours)
    resource_ids = [r["id"] for r in resources]
    if query.by == "professional" and query.professional_ids:
        appointments = [a for a in appointments if a.professional_id in resource_ids]

    first_minute, last_minute = _visible_hours(hours, appointments, zone)
    change_url = reverse("admin:scheduling_appointment_change", args=[0]).replace("/0/", "/%d/")
    per_status = _per_status()
    events = [_card(a, zone, now, query.by, change_url, per_status) for a in appointments]
    events += _shading(
        query=query,
        resource_ids=resource_ids,
        opening=opening,
        time_off=time_off,
        closed=closed,
        zone=zone,
        now=now,
        bounds=(first_minute, last_minute),
    )
    return {
        "zone": clinic.time_zone,
        "offset": utc_offset(zone, query.first),
        "now": local_str(now, zone),
        "today": timezone.localdate(now, zone).isoformat(),
        "start": query.first.isoformat(),
        "end": query.last.isoformat(),
        "by": query.by,
        "slotMinTime": _hhmm(first_minute),
        "slotMaxTime": _hhmm(last_minute),
        "closed": {day.isoformat(): reason for day, reason in closed.items()},
        "resources": resources,
        "events": events,
        "count": sum(1 for a in appointments if a.is_occupying),
    }


def _professional_columns(clinic, query, appointments, hours):
    """Active professionals who work in the range or have something booked (all of them if
    nobody does), or those asked for; their working minutes by (professional, day)."""
    professionals = list(Professional.objects.for_clinic(clinic).order_by("full_name"))
    booked = {a.professional_id for a in appointments}
    weekdays = {d.weekday() for d in query.days}
    working = {h.professional_id for h in hours if h.weekday in weekdays}
    if query.professional_ids:
        chosen = [p for p in professionals if p.pk in query.professional_ids]
    else:
        chosen = [p for p in professionals if p.pk in booked or (p.is_active and p.pk in working)]
        if not chosen:
            chosen = [p for p in professionals if p.is_active]
    opening: dict[tuple[int, date], list[tuple[int, int]]] = {}
    for h in hours:
        for day in query.days:
            if h.applies_on(day):
                opening.setdefault((h.professional_id, day), []).append(_span(h))
    resources = [
        {
            "id": p.pk,
            "title": p.full_name,
            "extendedProps": {"specialty": p.specialty, "color": p.color},
        }
        for p in chosen
    ]
    return resources, opening


def _room_columns(clinic, query, appointments, hours):
    """Active rooms (and any room with a booking), plus "No room" when something has none; a
    room is open while someone works in it, or (no hours name it) while anyone works."""
    used = {a.room_id for a in appointments}
    rooms = [
        r for r in Room.objects.for_clinic(clinic).order_by("name") if r.is_active or r.pk in used
    ]
    opening: dict[tuple, list[tuple[int, int]]] = {}
    for room in rooms:
        own = [h for h in hours if h.room_id == room.pk] or hours
        for day in query.days:
            spans = [_span(h) for h in own if h.applies_on(day)]
            if spans:
                opening[(room.pk, day)] = spans
    resources = [{"id": r.pk, "title": r.name, "extendedProps": {}} for r in rooms]
    if None in used:
        resources.append({"id": "none", "title": _("No room"), "extendedProps": {}})
        for day in query.days:
            opening[("none", day)] = [(0, 24 * 60)]
    return resources, opening


def _span(h) -> tuple[int, int]:
    return (
        h.start_time.hour * 60 + h.start_time.minute,
        h.end_time.hour * 60 + h.end_time.minute,
    )


def _visible_hours(hours, appointments, zone) -> tuple[int, int]:
    """From the clinic's earliest opening to its latest closing (any weekday, so the axis
    does not jump from day to day), widened to show every appointment, on whole hours."""
    starts = [s for s, _e in map(_span, hours)]
    ends = [e for _s, e in map(_span, hours)]
    for a in appointments:
        local_start, local_end = a.start.astimezone(zone), a.end.astimezone(zone)
        starts.append(local_start.hour * 60 + local_start.minute)
        ends.append(
            24 * 60
            if local_end.date() > local_start.date()
            else local_end.hour * 60 + local_end.minute
        )
    if not starts:
        return DEFAULT_HOURS[0] * 60, DEFAULT_HOURS[1] * 60
    first = min(starts) // 60 * 60
    last = min(24 * 60, -(-max(ends) // 60) * 60)
    return first, max(last, first + 60)


@dataclass(frozen=True, slots=True)
class HoursRow:
    """A working-hours interval as plain values (``WorkingHours.applies_on``'s rule)."""

    professional_id: int
    room_id: int | None
    weekday: int
    start_time: time
    end_time: time
    valid_from: date | None
    valid_until: date | None

    def applies_on(self, day: date) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class CardRow:
    """What a card shows of an appointment, read as plain values (no model instances:
    a day of 50 professionals is over a thousand cards)."""

    pk: int
    status: str
    start: datetime
    end: datetime
    encaixe: bool
    arrived_at: datetime | None
    professional_id: int
    room_id: int | None
    patient_name: str
    phone: str
    service: str
    professional: str
    room: str
    has_earlier_visit: bool

    @property
    def is_occupying(self) -> bool:
        return self.status in OCCUPYING_STATUSES


def card_rows(*, clinic, start: datetime, end: datetime) -> list[CardRow]:
    """The appointments drawn (occupying ones and no-shows) starting in ``[start, end)``,
    with their patient, service, professional and room and the "first visit" flag, in one
    query."""
    earlier_visit = Appointment.objects.filter(
        patient=OuterRef("patient"), status=S.COMPLETED, start__lt=OuterRef("start")
    )
    rows = (
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=start, start__lt=end, status__in=GRID_STATUSES)
        .annotate(has_earlier_visit=Exists(earlier_visit))
        .order_by("start", "pk")
        .values_list(
            "pk",
            "status",
            "start",
            "end",
            "encaixe",
            "arrived_at",
            "professional_id",
            "room_id",
            "patient__social_name",
            "patient__full_name",
            "patient__phone",
            "service__name",
            "professional__full_name",
            "room__name",
            "has_earlier_visit",
        )
    )
    return [
        CardRow(
            pk=pk,
            status=status,
            start=a_start,
            end=a_end,
            encaixe=encaixe,
            arrived_at=arrived_at,
            professional_id=professional_id,
            room_id=room_id,
            patient_name=social_name or full_name,
            phone="".join(ch for ch in (phone or "") if ch.isdigit()),
            service=service,
            professional=professional,
            room=room or "",
            has_earlier_visit=has_earlier_visit,
        )
        for (
            pk,
            status,
            a_start,
            a_end,
            encaixe,
            arrived_at,
            professional_id,
            room_id,
            social_name,
            full_name,
            phone,
            service,
            professional,
            room,
            has_earlier_visit,
        ) in rows
    ]


def _per_status() -> dict[str, dict]:
    """What depends on the status only, worked out once per answer."""
    return {
        status: {
            "label": str(S(status).label),
            "icon": STATUS_ICONS.get(status, ""),
            "actions": [
                name for name, act in STATUS_ACTIONS.items() if act.target in TRANSITIONS[status]
            ],
            "reschedule": S.RESCHEDULED in TRANSITIONS[status],
        }
        for status in S.values
    }


def _badges(a: CardRow, now: datetime) -> list[dict]:
    badges = []
    if a.encaixe:
        badges.append({"code": "encaixe", "label": _("Encaixe")})
    if not a.has_earlier_visit and a.status != S.COMPLETED:
        badges.append({"code": "first", "label": _("First visit")})
    if a.status == S.SCHEDULED:
        badges.append({"code": "unconfirmed", "label": _("Not confirmed")})
    if a.status == S.ARRIVED and a.arrived_at:
        minutes = max(0, int((now - a.arrived_at).total_seconds() // 60))
        badges.append(
            {
                "code": "waiting",
                "label": _("Waiting %(minutes)d min") % {"minutes": minutes},
                "minutes": minutes,
            }
        )
    return badges


def _card(a: CardRow, zone, now: datetime, by: str, change_url: str, per_status) -> dict:
    """An appointment as the component's event, with what the card and its menu need."""
    movable = a.status in MOVABLE and a.end > now
    status = per_status[a.status]
    if by == "room":
        resource = a.room_id if a.room_id is not None else "none"
    else:
        resource = a.professional_id
    classes = ["cal-appt", f"cal-status-{a.status}"]
    if a.encaixe:
        classes.append("cal-encaixe")
    return {
        "id": a.pk,
        "resourceIds": [resource],
        "start": local_str(a.start, zone),
        "end": local_str(a.end, zone),
        "title": a.patient_name,
        "classNames": classes,
        "startEditable": movable,
        "durationEditable": movable,
        "extendedProps": {
            "kind": "appointment",
            "patient": a.patient_name,
            "phone": a.phone,
            "service": a.service,
            "professional": a.professional,
            "room": a.room,
            "status": a.status,
            "statusLabel": status["label"],
            "icon": status["icon"],
            "encaixe": a.encaixe,
            "badges": _badges(a, now),
            "actions": status["actions"],
            "movable": movable and status["reschedule"],
            "url": change_url % a.pk,
        },
    }


def _shading(*, query, resource_ids, opening, time_off, closed, zone, now, bounds) -> list[dict]:
    """Background events: closed days, time outside working hours and time off, per column
    and day, and the past (one band across every column)."""
    lo, hi = bounds
    events = []

    def band(resource, day, start_minute, end_minute, kind, title=""):
        start_minute, end_minute = max(lo, start_minute), min(hi, end_minute)
        if start_minute >= end_minute:
            return
        midnight = datetime.combine(day, time.min)
        events.append(
            {
                "resourceIds": resource if isinstance(resource, list) else [resource],
                "start": (midnight + timedelta(minutes=start_minute)).isoformat(),
                "end": (midnight + timedelta(minutes=end_minute)).isoformat(),
                "display": "background",
                "classNames": [f"cal-{kind}"],
                "title": title,
                "extendedProps": {"kind": kind},
            }
        )

    for day in query.days:
        if day in closed:
            band(resource_ids, day, lo, hi, "closed", closed[day])
            continue
        for resource in resource_ids:
            spans = sorted(opening.get((resource, day), []))
            cursor = lo
            for start_minute, end_minute in spans:
                band(resource, day, cursor, start_minute, "off-hours")
                cursor = max(cursor, end_minute)
            band(resource, day, cursor, hi, "off-hours")
        midnight = datetime.combine(day, time.min, tzinfo=zone)
        for t in time_off:
            key = t.professional_id if query.by == "professional" else t.room_id
            if key is None or key not in resource_ids:
                continue
            start_minute = int((max(t.start, midnight) - midnight).total_seconds() // 60)
            end_minute = int(
                (min(t.end, midnight + timedelta(days=1)) - midnight).total_seconds() // 60
            )
            band(key, day, start_minute, end_minute, "time-off", t.reason or _("Time off"))
        local_now = now.astimezone(zone)
        if day < local_now.date():
            band(resource_ids, day, lo, hi, "past")
        elif day == local_now.date():
            band(resource_ids, day, lo, local_now.hour * 60 + local_now.minute, "past")
    return events
