"""The receptionist's agenda in the admin: the day (per professional or per room), a
professional's week, one-click status changes and rescheduling to a free slot.

The views are registered by ``AppointmentAdmin.get_urls()`` (wrapped in
``admin_site.admin_view``) and take the ModelAdmin as their first argument, so that scoping
and permissions are the admin's own: an appointment is looked up through
``model_admin.get_queryset(request)``, which is limited to the current clinic, so another
clinic's id is a 404. Every change goes through ``scheduling/services.py``.

Queries are fixed per page, whatever the number of appointments: professionals, rooms,
working hours, time off, closures and the appointments (with their patient, service,
professional and room joined and the "first visit" flag annotated) are one query each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.models import Professional, Room
from clinic.tenancy import current_clinic

from . import conf, services
from .availability import Slot, holiday_name, slot_list_available, slots_for_reception
from .choices import OCCUPYING_STATUSES, TRANSITIONS, AppointmentStatus
from .exceptions import SchedulingError
from .models import Appointment, ClinicClosure, TimeOff, WorkingHours

S = AppointmentStatus
DEFAULT_DAY = (8 * 60, 18 * 60)  # rows shown when nobody works and nothing is booked
RESCHEDULE_DAYS = 14
# Shown in the grid; cancelled and rescheduled ones are listed under it, so that their
# time shows as free (and bookable) again.
GRID_STATUSES = (*OCCUPYING_STATUSES, S.NO_SHOW)


#: A working row where nothing can start (why it is not "free").
NOT_BOOKABLE = gettext_lazy(
    "Not bookable: no service fits here (buffers, a gap too short, or the past)"
)


# --- Time zone ------------------------------------------------------------------------------
def clinic_zone(clinic) -> ZoneInfo:
    """The clinic's time zone (the site's default for a superuser viewing all clinics)."""
    if clinic is None:
        return timezone.get_default_timezone()
    return ZoneInfo(clinic.time_zone)


def render_in_zone(zone, view: Callable, *args, **kwargs):
    """Run a view and render its response with ``zone`` active: forms read and templates
    show datetimes in the clinic's time zone (a TemplateResponse renders lazily, after the
    view returned, so it is rendered here)."""
    with timezone.override(zone):
        response = view(*args, **kwargs)
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
    return response


def local_label(appointment: Appointment, zone) -> str:
    """ "Maria Souza — 10/06/2026 14:00": how an appointment is named in messages."""
    start = formats.date_format(appointment.start.astimezone(zone), "SHORT_DATETIME_FORMAT")
    return f"{appointment.patient.display_name} — {start}"


# --- Status changes offered as buttons ------------------------------------------------------
@dataclass(frozen=True)
class StatusAction:
    """A transition the reception performs with one click, and the service that does it."""

    name: str
    target: str
    label: str
    done: str
    perform: Callable[..., Appointment]

    def run(self, appointment: Appointment, *, user, reason: str = "") -> Appointment:
        if self.target == S.CANCELLED:
            return self.perform(appointment=appointment, by=user, reason=reason)
        return self.perform(appointment=appointment, by=user)


STATUS_ACTIONS: dict[str, StatusAction] = {
    a.name: a
    for a in (
        StatusAction(
            "confirm",
            S.CONFIRMED,
            gettext_lazy("Confirm"),
            gettext_lazy("Confirmed"),
            services.appointment_confirm,
        ),
        StatusAction(
            "check_in",
            S.ARRIVED,
            gettext_lazy("Check in"),
            gettext_lazy("Checked in"),
            services.appointment_check_in,
        ),
        StatusAction(
            "start",
            S.IN_PROGRESS,
            gettext_lazy("Start"),
            gettext_lazy("Started"),
            services.appointment_start,
        ),
        StatusAction(
            "complete",
            S.COMPLETED,
            gettext_lazy("Complete"),
            gettext_lazy("Completed"),
            services.appointment_complete,
        ),
        StatusAction(
            "no_show",
            S.NO_SHOW,
            gettext_lazy("No-show"),
            gettext_lazy("Marked as no-show"),
            services.appointment_mark_no_show,
        ),
        StatusAction(
            "cancel",
            S.CANCELLED,
            gettext_lazy("Cancel"),
            gettext_lazy("Cancelled"),
            services.appointment_cancel,
        ),
    )
}


def actions_allowed(appointment: Appointment) -> list[StatusAction]:
    """The buttons the status machine allows for this appointment now."""
    allowed = TRANSITIONS[appointment.status]
    return [a for a in STATUS_ACTIONS.values() if a.target in allowed]


def can_reschedule(appointment: Appointment) -> bool:
    return S.RESCHEDULED in TRANSITIONS[appointment.status]


# --- Shared view helpers --------------------------------------------------------------------
def _admin_url(model_admin, name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args, current_app=model_admin.admin_site.name)


def day_url(model_admin, day: date, **params) -> str:
    query = urlencode({"date": day.isoformat(), **{k: v for k, v in params.items() if v}})
    return f"{_admin_url(model_admin, 'scheduling_agenda')}?{query}"


def week_url(model_admin, professional_id: int, day: date) -> str:
    query = urlencode({"professional": professional_id, "date": day.isoformat()})
    return f"{_admin_url(model_admin, 'scheduling_agenda_week')}?{query}"


def _parse_day(value: str | None, zone) -> date:
    """The ``date`` asked for, or today; nonsense (or a year the calendar arithmetic of a
    week could overflow) is today too."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return timezone.localdate(timezone=zone)
    return day if 1900 <= day.year <= 2999 else timezone.localdate(timezone=zone)


def clinic_or_redirect(model_admin, request):
    """The current clinic, or a redirect to the dashboard for a superuser viewing all
    clinics (an agenda is always one clinic's)."""
    clinic = current_clinic(request)
    if clinic is None:
        messages.warning(request, _("Choose a clinic at the top of the page to see its agenda."))
        return None, HttpResponseRedirect(
            reverse("admin:index", current_app=model_admin.admin_site.name)
        )
    return clinic, None


def _safe_next(request, fallback: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return fallback


def page_context(model_admin, request, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "can_change": model_admin.has_change_permission(request),
        "can_add": model_admin.has_add_permission(request),
        "status_choices": S.choices,
        **extra,
    }


def appointments_for_agenda(*, clinic, start: datetime, end: datetime):
    """Appointments starting in ``[start, end)``, with everything a card shows in the same
    query: patient, service, professional, room, and whether it is a first visit (the
    patient has no earlier completed appointment)."""
    earlier_visit = Appointment.objects.filter(
        patient=OuterRef("patient"), status=S.COMPLETED, start__lt=OuterRef("start")
    )
    return (
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=start, start__lt=end)
        .select_related("patient", "service", "professional", "room")
        .annotate(has_earlier_visit=Exists(earlier_visit))
        .order_by("start", "pk")
    )


# --- The time grid --------------------------------------------------------------------------
@dataclass
class AgendaItem:
    """An appointment as a card of the agenda."""

    appointment: Appointment
    start: datetime  # local
    end: datetime  # local
    first_visit: bool
    actions: list[StatusAction]
    reschedule: bool
    change_url: str

    @property
    def unconfirmed(self) -> bool:
        return self.appointment.status == S.SCHEDULED


@dataclass(frozen=True)
class Bookable:
    """A time the agenda offers: a slot of ``slots_for_reception`` (of one or more services
    starting then), in the clinic's local time."""

    start: datetime  # local
    professional_id: int
    room_id: int | None
    service_ids: tuple[int, ...]


def bookables(slots_by_service: dict[int, list[Slot]], zone) -> list[Bookable]:
    """The offered times, one per (start, professional, room), naming every service that
    can start then, sorted by start."""
    found: dict[tuple, list[int]] = {}
    for service_id, slots in slots_by_service.items():
        for slot in slots:
            found.setdefault((slot.start, slot.professional_id, slot.room_id), []).append(
                service_id
            )
    return [
        Bookable(start.astimezone(zone), professional_id, room_id, tuple(sorted(services)))
        for (start, professional_id, room_id), services in sorted(
            found.items(), key=lambda f: (f[0][0], f[0][1], f[0][2] or 0)
        )
    ]


@dataclass
class Cell:
    # "busy" (appointments), "free" (bookable), "full" (working, but nothing fits: buffers,
    # a gap too short, the past), "off" (time off), "closed"
    kind: str
    rowspan: int = 1
    items: list[AgendaItem] = field(default_factory=list)
    start: datetime | None = None  # local
    book_url: str = ""
    note: str = ""
    offered: Bookable | None = None  # what a "free" cell books


@dataclass
class Column:
    """One column of the grid: a professional or a room on a day, or a day of a week."""

    label: str
    day: date
    items: list[AgendaItem]
    # Working intervals in minutes since local midnight, with the room they name (if any).
    open_minutes: list[tuple[int, int, int | None]]
    off_minutes: list[tuple[int, int, str]]  # time off: from, until, reason
    book_params: dict
    # What can be booked in this column, from the same computation booking relies on.
    bookable: list[Bookable] = field(default_factory=list)
    closed: str = ""  # reason the clinic is closed that day
    link: str = ""
    color: str = ""
    sublabel: str = ""
    cells: list[Cell | None] = field(default_factory=list)


@dataclass
class Row:
    label: str
    minute: int
    cells: list[Cell | None]


def _minutes(moment: datetime, day: date, zone) -> int:
    """Minutes from the local midnight of ``day`` (clamped to the day)."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(day, time.min, tzinfo=zone)
    return max(0, min(24 * 60, int((local - midnight).total_seconds() // 60)))


def _bounds(columns: list[Column], zone, step: int) -> tuple[int, int]:
    starts, ends = [], []
    for column in columns:
        for lo, hi, _room in column.open_minutes:
            starts.append(lo)
            ends.append(hi)
        for item in column.items:
            starts.append(_minutes(item.start, column.day, zone))
            ends.append(max(_minutes(item.end, column.day, zone), starts[-1] + step))
    first, last = (min(starts), max(ends)) if starts else DEFAULT_DAY
    first = first // step * step
    last = min(24 * 60, -(-last // step) * step)
    return first, max(last, first + step)


def grid_build(*, columns: list[Column], zone, step: int, add_url: str) -> list[Row]:
    """Lay the columns out in rows of ``step`` minutes, from the earliest working hour (or
    appointment) to the latest. Appointments that overlap in a column share one cell (a
    no-show and the patient booked in its place); a cell spans the rows it covers."""
    first, last = _bounds(columns, zone, step)
    count = (last - first) // step
    for column in columns:
        cells: list[Cell | None] = [None] * count
        groups: list[list] = []  # [first row, end row, items]
        for item in column.items:
            lo = (_minutes(item.start, column.day, zone) - first) // step
            hi = -(-(_minutes(item.end, column.day, zone) - first) // step)
            lo, hi = max(0, min(lo, count - 1)), max(lo + 1, min(hi, count))
            if groups and lo < groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], hi)
                groups[-1][2].append(item)
            else:
                groups.append([lo, hi, [item]])
        covered = set()
        for lo, hi, items in groups:
            cells[lo] = Cell("busy", rowspan=hi - lo, items=items)
            covered.update(range(lo + 1, hi))
        midnight = datetime.combine(column.day, time.min, tzinfo=zone)

        def row_end(row_start: datetime) -> datetime:
            return row_start + timedelta(minutes=step)

        for index in range(count):
            if cells[index] is not None or index in covered:
                continue
            minute = first + index * step
            start = midnight + timedelta(minutes=minute)
            off = next(
                (r for lo, hi, r in column.off_minutes if lo < minute + step and minute < hi),
                None,
            )
            # The first time offered inside this row (the grid of the slots may not be the
            # grid of the rows: intervals starting at 08:10, rows of 15 minutes).
            offered = next((b for b in column.bookable if start <= b.start < row_end(start)), None)
            if column.closed:
                cells[index] = Cell("closed", start=start, note=column.closed)
            elif offered is not None:
                cells[index] = Cell(
                    "free",
                    start=offered.start,
                    book_url=book_url(add_url, column.book_params, offered),
                    note=column.label,
                    offered=offered,
                )
            elif off is not None:
                cells[index] = Cell("off", start=start, note=off or _("Time off"))
            elif any(i[0] <= minute < i[1] for i in column.open_minutes):
                cells[index] = Cell("full", start=start, note=NOT_BOOKABLE)
            else:
                cells[index] = Cell("closed", start=start)
        column.cells = cells
    rows = []
    for index in range(count):
        minute = first + index * step
        rows.append(
            Row(
                label=f"{minute // 60:02d}:{minute % 60:02d}",
                minute=minute,
                cells=[c.cells[index] for c in columns],
            )
        )
    return rows


def book_url(add_url: str, params: dict, offered: Bookable) -> str:
    """The add form prefilled with the offered time, its professional, its room and, when
    only one service fits there, that service."""
    params = {
        **params,
        "professional": offered.professional_id,
        "start": offered.start.strftime("%Y-%m-%dT%H:%M"),
    }
    if offered.room_id is not None:
        params["room"] = offered.room_id
    if len(offered.service_ids) == 1:
        params["service"] = offered.service_ids[0]
    return f"{add_url}?{urlencode(params)}"


def _step(clinic) -> int:
    # The clinic's availability grid, kept between 10 and 60 minutes so the page stays
    # readable on a tablet.
    return max(10, min(60, int(conf.clinic_option(clinic, "slot_step_minutes"))))


def _item(model_admin, appointment: Appointment, zone) -> AgendaItem:
    return AgendaItem(
        appointment=appointment,
        start=appointment.start.astimezone(zone),
        end=appointment.end.astimezone(zone),
        first_visit=not appointment.has_earlier_visit,
        actions=actions_allowed(appointment),
        reschedule=can_reschedule(appointment),
        change_url=_admin_url(model_admin, "scheduling_appointment_change", appointment.pk),
    )


def _hours_minutes(hours) -> list[tuple[int, int, int | None]]:
    return [
        (
            h.start_time.hour * 60 + h.start_time.minute,
            h.end_time.hour * 60 + h.end_time.minute,
            h.room_id,
        )
        for h in hours
    ]


def _off_minutes(time_off, day: date, zone) -> list[tuple[int, int, str]]:
    midnight = datetime.combine(day, time.min, tzinfo=zone)
    next_midnight = midnight + timedelta(days=1)
    return [
        (_minutes(t.start, day, zone), _minutes(t.end, day, zone), t.reason)
        for t in time_off
        if t.start < next_midnight and t.end > midnight
    ]


def _closure_on(closures, day: date) -> str:
    return next((c.reason for c in closures if c.start_date <= day <= c.end_date), "")


# --- Day view -------------------------------------------------------------------------------
def day_view(model_admin, request):
    """``?date=YYYY-MM-DD&by=professional|room``: the clinic's day, one column per
    professional (or room)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic, redirect = clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    return render_in_zone(zone, _day_view, model_admin, request, clinic, zone)


def _day_view(model_admin, request, clinic, zone):
    day = _parse_day(request.GET.get("date"), zone)
    by = "room" if request.GET.get("by") == "room" else "professional"
    day_start = datetime.combine(day, time.min, tzinfo=zone)
    day_end = day_start + timedelta(days=1)

    appointments = list(appointments_for_agenda(clinic=clinic, start=day_start, end=day_end))
    hours = [
        h
        for h in WorkingHours.objects.for_clinic(clinic)
        .filter(weekday=day.weekday(), professional__is_active=True)
        .order_by("start_time")
        if h.applies_on(day)
    ]
    time_off = list(TimeOff.objects.for_clinic(clinic).filter(start__lt=day_end, end__gt=day_start))
    closed = _closure_on(
        ClinicClosure.objects.for_clinic(clinic).filter(start_date__lte=day, end_date__gte=day),
        day,
    ) or holiday_name(clinic, day)
    offered = bookables(slots_for_reception(clinic=clinic, start=day_start, end=day_end), zone)
    items = [_item(model_admin, a, zone) for a in appointments]
    in_grid = [i for i in items if i.appointment.status in GRID_STATUSES]
    columns = (
        _room_columns(clinic, day, zone, in_grid, hours, time_off, closed, offered)
        if by == "room"
        else _professional_columns(
            model_admin, clinic, day, zone, in_grid, hours, time_off, closed, offered
        )
    )
    add_url = _admin_url(model_admin, "scheduling_appointment_add")
    rows = grid_build(columns=columns, zone=zone, step=_step(clinic), add_url=add_url)
    context = page_context(
        model_admin,
        request,
        title=_("Agenda"),
        subtitle=formats.date_format(day, "DATE_FORMAT"),
        clinic=clinic,
        day=day,
        by=by,
        show_professional=by == "room",
        show_room=by == "professional",
        today=timezone.localdate(timezone=zone),
        columns=columns,
        rows=rows,
        closed=closed,
        off_grid=[i for i in items if i.appointment.status not in GRID_STATUSES],
        count_active=sum(1 for i in items if i.appointment.status in OCCUPYING_STATUSES),
        prev_url=day_url(model_admin, day - timedelta(days=1), by=by),
        next_url=day_url(model_admin, day + timedelta(days=1), by=by),
        today_url=day_url(model_admin, timezone.localdate(timezone=zone), by=by),
        by_professional_url=day_url(model_admin, day),
        by_room_url=day_url(model_admin, day, by="room"),
        checkin_url=_admin_url(model_admin, "scheduling_checkin"),
        list_url=_admin_url(model_admin, "scheduling_appointment_changelist"),
        add_url=add_url,
        next_path=request.get_full_path(),
    )
    return TemplateResponse(request, "scheduling/admin/agenda_day.html", context)


def _professional_columns(model_admin, clinic, day, zone, items, hours, time_off, closed, offered):
    booked = {i.appointment.professional_id for i in items}
    working = {h.professional_id for h in hours}
    professionals = [
        p
        for p in Professional.objects.for_clinic(clinic).order_by("full_name")
        if p.pk in booked or (p.is_active and p.pk in working)
    ]
    if not professionals:
        # Nobody has hours that day: show the team anyway, so the day is not a blank page.
        professionals = list(
            Professional.objects.for_clinic(clinic).filter(is_active=True).order_by("full_name")
        )
    return [
        Column(
            label=p.full_name,
            sublabel=p.specialty,
            day=day,
            color=p.color,
            link=week_url(model_admin, p.pk, day),
            items=[i for i in items if i.appointment.professional_id == p.pk],
            open_minutes=_hours_minutes(h for h in hours if h.professional_id == p.pk),
            off_minutes=_off_minutes((t for t in time_off if t.professional_id == p.pk), day, zone),
            book_params={"professional": p.pk},
            bookable=[b for b in offered if b.professional_id == p.pk],
            closed=closed,
        )
        for p in professionals
    ]


def _room_columns(clinic, day, zone, items, hours, time_off, closed, offered):
    used = {i.appointment.room_id for i in items}
    rooms = [
        r for r in Room.objects.for_clinic(clinic).order_by("name") if r.is_active or r.pk in used
    ]
    columns = []
    for room in rooms:
        # A room is open while someone works in it, or (no hours name it) while anyone works.
        own = [h for h in hours if h.room_id == room.pk]
        columns.append(
            Column(
                label=room.name,
                day=day,
                items=[i for i in items if i.appointment.room_id == room.pk],
                open_minutes=_hours_minutes(own or hours),
                off_minutes=_off_minutes((t for t in time_off if t.room_id == room.pk), day, zone),
                book_params={"room": room.pk},
                bookable=[b for b in offered if b.room_id == room.pk],
                closed=closed,
            )
        )
    without_room = [i for i in items if i.appointment.room_id is None]
    if without_room:
        columns.append(
            Column(
                label=_("No room"),
                day=day,
                items=without_room,
                open_minutes=[],
                off_minutes=[],
                book_params={},
                closed=closed,
            )
        )
    return columns


# --- Week view ------------------------------------------------------------------------------
def week_view(model_admin, request):
    """``?professional=ID&date=YYYY-MM-DD``: one professional's week (Monday to Sunday)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic, redirect = clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    return render_in_zone(zone, _week_view, model_admin, request, clinic, zone)


def _week_view(model_admin, request, clinic, zone):
    day = _parse_day(request.GET.get("date"), zone)
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    professionals = list(Professional.objects.for_clinic(clinic).order_by("full_name"))
    wanted = request.GET.get("professional")
    if wanted:
        # Another clinic's professional is not in the list: the same 404 as a missing one.
        professional = next((p for p in professionals if str(p.pk) == wanted), None)
        if professional is None:
            raise Http404
    else:
        professional = next((p for p in professionals if p.is_active), None)
    week_start = datetime.combine(monday, time.min, tzinfo=zone)
    week_end = week_start + timedelta(days=7)
    columns: list[Column] = []
    rows: list[Row] = []
    if professional is not None:
        appointments = appointments_for_agenda(clinic=clinic, start=week_start, end=week_end)
        items = [
            _item(model_admin, a, zone)
            for a in appointments.filter(professional=professional, status__in=GRID_STATUSES)
        ]
        hours = list(WorkingHours.objects.for_clinic(clinic).filter(professional=professional))
        time_off = list(
            TimeOff.objects.for_clinic(clinic).filter(
                professional=professional, start__lt=week_end, end__gt=week_start
            )
        )
        closures = list(
            ClinicClosure.objects.for_clinic(clinic).filter(
                start_date__lte=days[-1], end_date__gte=days[0]
            )
        )
        offered = bookables(
            slots_for_reception(
                clinic=clinic, professional=professional, start=week_start, end=week_end
            ),
            zone,
        )
        for d in days:
            day_items = [i for i in items if i.start.date() == d]
            day_hours = [h for h in hours if h.applies_on(d)]
            if d.weekday() >= 5 and not day_items and not day_hours:
                continue  # a weekend day with nothing on it
            columns.append(
                Column(
                    label=formats.date_format(d, "l"),
                    sublabel=formats.date_format(d, "SHORT_DATE_FORMAT"),
                    day=d,
                    link=day_url(model_admin, d),
                    items=day_items,
                    open_minutes=_hours_minutes(day_hours),
                    off_minutes=_off_minutes(time_off, d, zone),
                    book_params={"professional": professional.pk},
                    bookable=[b for b in offered if b.start.date() == d],
                    closed=_closure_on(closures, d) or holiday_name(clinic, d),
                )
            )
        add_url = _admin_url(model_admin, "scheduling_appointment_add")
        rows = grid_build(columns=columns, zone=zone, step=_step(clinic), add_url=add_url)
    pk = professional.pk if professional else ""
    context = page_context(
        model_admin,
        request,
        title=_("Week agenda"),
        subtitle=professional.full_name if professional else "",
        clinic=clinic,
        day=day,
        monday=monday,
        sunday=days[-1],
        professional=professional,
        professionals=[p for p in professionals if p.is_active or p == professional],
        columns=columns,
        rows=rows,
        prev_url=week_url(model_admin, pk, monday - timedelta(days=7)),
        next_url=week_url(model_admin, pk, monday + timedelta(days=7)),
        today_url=week_url(model_admin, pk, timezone.localdate(timezone=zone)),
        day_url=day_url(model_admin, day),
        today=timezone.localdate(timezone=zone),
        add_url=_admin_url(model_admin, "scheduling_appointment_add"),
        next_path=request.get_full_path(),
    )
    return TemplateResponse(request, "scheduling/admin/agenda_week.html", context)


# --- One-click status changes ---------------------------------------------------------------
def _appointment_or_404(model_admin, request, object_id) -> Appointment:
    appointment = (
        model_admin.get_queryset(request)
        .select_related("patient", "service", "professional", "room", "clinic")
        .filter(pk=object_id)
        .first()
    )
    if appointment is None:  # another clinic's, or none: the same 404
        raise Http404
    return appointment


def transition_view(model_admin, request, object_id, action):
    """POST: move one appointment through the status machine (``action`` is a key of
    ``STATUS_ACTIONS``; ``reason`` for a cancellation), then go back where the click was."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    status_action = STATUS_ACTIONS.get(action)
    if status_action is None:
        raise Http404
    appointment = _appointment_or_404(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, appointment):
        raise PermissionDenied
    zone = clinic_zone(appointment.clinic)
    label = local_label(appointment, zone)
    reason = request.POST.get("reason", "").strip()
    try:
        status_action.run(appointment, user=request.user, reason=reason)
    except SchedulingError as exc:
        messages.error(
            request,
            _("%(appointment)s was not changed: %(reason)s")
            % {"appointment": label, "reason": exc.message},
        )
    else:
        messages.success(
            request,
            _("%(done)s: %(appointment)s.") % {"done": status_action.done, "appointment": label},
        )
    fallback = day_url(model_admin, appointment.start.astimezone(zone).date())
    return HttpResponseRedirect(_safe_next(request, fallback))


# --- Reschedule -----------------------------------------------------------------------------
def reschedule_view(model_admin, request, object_id):
    """GET: the free slots of the next 14 days for the same service (same professional,
    another one, or anyone); POST ``start``, ``professional``, ``room``: move it there."""
    appointment = _appointment_or_404(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, appointment):
        raise PermissionDenied
    zone = clinic_zone(appointment.clinic)
    return render_in_zone(zone, _reschedule_view, model_admin, request, appointment, zone)


def _reschedule_view(model_admin, request, appointment, zone):
    clinic = appointment.clinic
    change_url = _admin_url(model_admin, "scheduling_appointment_change", appointment.pk)
    if not can_reschedule(appointment):
        messages.error(
            request,
            _("An appointment that is %(status)s cannot be rescheduled.")
            % {"status": appointment.get_status_display().lower()},
        )
        return HttpResponseRedirect(change_url)
    if request.method == "POST":
        return _reschedule_post(model_admin, request, appointment, zone)

    performers = list(
        Professional.objects.for_clinic(clinic)
        .filter(is_active=True)
        .filter(Q(services=appointment.service) | Q(pk=appointment.professional_id))
        .distinct()
        .order_by("full_name")
    )
    wanted = request.GET.get("professional", str(appointment.professional_id))
    chosen = None if wanted == "any" else next((p for p in performers if str(p.pk) == wanted), None)
    if wanted != "any" and chosen is None:
        chosen = appointment.professional
    now = timezone.now()
    slots = slot_list_available(
        clinic=clinic,
        service=appointment.service,
        professional=chosen,
        start=now,
        end=now + timedelta(days=RESCHEDULE_DAYS),
        now=now,
    )
    names = {p.pk: p.full_name for p in performers}
    room_names = dict(Room.objects.for_clinic(clinic).values_list("pk", "name"))
    days: dict[date, list[dict]] = {}
    for slot in slots:
        local = slot.start.astimezone(zone)
        days.setdefault(local.date(), []).append(
            {
                "start": local,
                "value": slot.start.isoformat(),
                "professional_id": slot.professional_id,
                "professional": names.get(slot.professional_id, ""),
                "room_id": slot.room_id or "",
                "room": room_names.get(slot.room_id, ""),
            }
        )
    context = page_context(
        model_admin,
        request,
        title=_("Reschedule"),
        subtitle=local_label(appointment, zone),
        appointment=appointment,
        item=_item_plain(appointment, zone),
        performers=performers,
        chosen=wanted if wanted == "any" else str(chosen.pk),
        days=sorted(days.items()),
        reschedule_days=RESCHEDULE_DAYS,
        change_url=change_url,
        agenda_url=day_url(model_admin, appointment.start.astimezone(zone).date()),
    )
    return TemplateResponse(request, "scheduling/admin/reschedule.html", context)


def _item_plain(appointment, zone) -> dict:
    return {
        "start": appointment.start.astimezone(zone),
        "end": appointment.end.astimezone(zone),
    }


def _reschedule_post(model_admin, request, appointment, zone):
    clinic = appointment.clinic
    back = request.get_full_path()
    try:
        start = datetime.fromisoformat(request.POST.get("start", ""))
        if timezone.is_naive(start):
            start = start.replace(tzinfo=zone)
        professional_id = int(request.POST.get("professional", ""))
        room_id = int(request.POST["room"]) if request.POST.get("room") else None
    except (TypeError, ValueError):
        messages.error(request, _("Choose one of the free times listed."))
        return HttpResponseRedirect(back)
    professional = Professional.objects.for_clinic(clinic).filter(pk=professional_id).first()
    room = Room.objects.for_clinic(clinic).filter(pk=room_id).first() if room_id else None
    if professional is None or (room_id and room is None):
        messages.error(request, _("Choose one of the free times listed."))
        return HttpResponseRedirect(back)
    label = local_label(appointment, zone)
    try:
        new = services.appointment_reschedule(
            appointment=appointment,
            start=start,
            professional=professional,
            room=room,
            by=request.user,
        )
    except SchedulingError as exc:
        messages.error(
            request,
            _("%(appointment)s was not rescheduled: %(reason)s")
            % {"appointment": label, "reason": exc.message},
        )
        return HttpResponseRedirect(back)
    messages.success(
        request,
        _("%(appointment)s moved to %(start)s with %(professional)s.")
        % {
            "appointment": label,
            "start": formats.date_format(new.start.astimezone(zone), "SHORT_DATETIME_FORMAT"),
            "professional": professional.full_name,
        },
    )
    return HttpResponseRedirect(day_url(model_admin, new.start.astimezone(zone).date()))
