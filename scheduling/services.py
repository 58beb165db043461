"""Every write of the agenda: booking, the status machine, rescheduling, cancelling,
check-in, recurring series, the waitlist and calendar feeds.

Each function runs in one transaction, checks the status machine (``choices.TRANSITIONS``),
records who and how, and publishes its domain event in the same transaction.

No double booking: on PostgreSQL exclusion constraints refuse overlapping occupying
appointments (professional, room, patient), so concurrent bookings cannot both win; a
booking simply inserts, and a violation (SQLSTATE 23P01) becomes ``SlotUnavailable`` naming
*what* clashes, looked up then. On SQLite the service looks for clashes first, inside a
write transaction, and SQLite serialises writers (IMMEDIATE mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Clinic, Patient, Professional, Room
from integrations.events import publish

from . import conf
from .agenda_setup import AgendaSetup, agenda_setup
from .choices import TRANSITIONS, AppointmentStatus, Channel, DayPeriod, OfferStatus
from .choices import WaitlistOfferMode as OfferMode
from .choices import WaitlistStatus as WStatus
from .exceptions import (
    CancellationWindowClosed,
    InvalidTransition,
    NoAppointmentToday,
    OfferUnavailable,
    SchedulingError,
    SeriesClash,
    SlotUnavailable,
)
from .models import (
    Appointment,
    CalendarFeed,
    RecurrenceSeries,
    Service,
    WaitlistEntry,
    WaitlistOffer,
    new_feed_token,
)

S = AppointmentStatus
EXCLUSION_VIOLATION = "23P01"
#: Two bookings racing through the exclusion constraints' indexes can deadlock; PostgreSQL
#: aborts one of them, which simply lost the race.
DEADLOCK_DETECTED = "40P01"
#: Longer than any appointment with its buffers (a service lasts at most 12 h).
LOOKBACK = timedelta(hours=16)
MAX_SERIES_OCCURRENCES = 104  # two years of weekly sessions


# --- Helpers --------------------------------------------------------------------------------
def _occupied(service: Service, start: datetime) -> tuple[datetime, datetime, datetime]:
    end = start + service.duration
    return end, start - service.buffer_before, end + service.buffer_after


def _conflicts(
    *,
    clinic_id: int,
    professional_id: int,
    room_id: int | None,
    patient_id: int,
    occupied_start: datetime,
    occupied_end: datetime,
    exclude_pk: int | None = None,
) -> list[str]:
    """Which of professional, room and patient are already occupied then (one query).

    Each arm is bounded on both sides of an index — ``(professional|room, occupied_start)``
    and ``(patient, start)`` — by ``LOOKBACK``, longer than any appointment, so a booking
    stays fast on an agenda with years of history (bench/scheduling.py). The exclusion
    constraints remain the guarantee; the bound only decides what the message names."""
    since = occupied_start - LOOKBACK
    arms = Q(professional_id=professional_id, occupied_start__gt=since) | Q(
        patient_id=patient_id, start__gt=since, start__lt=occupied_end + LOOKBACK
    )
    if room_id is not None:
        arms |= Q(room_id=room_id, occupied_start__gt=since)
    clash = (
        Appointment.objects.filter(clinic_id=clinic_id)
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .filter(arms)
    )
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    found: set[str] = set()
    for prof, room, patient in clash.values_list("professional_id", "room_id", "patient_id"):
        if prof == professional_id:
            found.add("professional")
        if room_id is not None and room == room_id:
            found.add("room")
        if patient == patient_id:
            found.add("patient")
    return [name for name in ("professional", "room", "patient") if name in found]


def _professional_busy(
    *,
    clinic: Clinic,
    professional: Professional,
    occupied_start: datetime,
    occupied_end: datetime,
    exclude_pk: int | None = None,
) -> str:
    """Why the professional is busy then, in the words reception needs: "Dra. Helena is busy
    until 10:40 (appointment 10:00–10:30 plus 10 min buffer)" — the first of their occupying
    appointments that the range overlaps, with its buffers (one query, on refusal only).
    Empty when none is found (the clash was committed and undone meanwhile)."""
    clash = (
        Appointment.objects.filter(clinic_id=clinic.pk, professional_id=professional.pk)
        .filter(occupied_start__gt=occupied_start - LOOKBACK)
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .exclude(pk=exclude_pk)
        .order_by("occupied_start")
        .values_list("start", "end", "occupied_start", "occupied_end")
        .first()
    )
    if clash is None:
        return ""
    zone = ZoneInfo(clinic.time_zone)

    def hhmm(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%H:%M")

    start, end, busy_from, busy_until = clash
    before = int((start - busy_from).total_seconds() // 60)
    after = int((busy_until - end).total_seconds() // 60)
    appointment = {"start": hhmm(start), "end": hhmm(end)}
    if before and after:
        what = _(
            "appointment %(start)s–%(end)s plus %(before)s min buffer before and %(after)s after"
        ) % {**appointment, "before": before, "after": after}
    elif before:
        what = _("appointment %(start)s–%(end)s plus %(before)s min buffer before") % {
            **appointment,
            "before": before,
        }
    elif after:
        what = _("appointment %(start)s–%(end)s plus %(after)s min buffer") % {
            **appointment,
            "after": after,
        }
    else:
        what = _("appointment %(start)s–%(end)s") % appointment
    names = {"professional": professional.full_name, "what": what, "until": hhmm(busy_until)}
    if busy_from <= occupied_start:
        return _("%(professional)s is busy until %(until)s (%(what)s)") % names
    return _("%(professional)s is busy from %(from)s until %(until)s (%(what)s)") % {
        **names,
        "from": hhmm(busy_from),
    }


def _conflict_message(conflicts: list[str], *, professional_busy: str = "") -> str:
    labels = {
        "professional": professional_busy or _("the professional is busy"),
        "room": _("the room is taken"),
        "patient": _("the patient already has an appointment then"),
        "hours": _("it is outside the available hours"),
    }
    detail = "; ".join(labels[c] for c in conflicts if c in labels)
    return (
        _("Time slot unavailable: %(detail)s.") % {"detail": detail}
        if detail
        else _("Time slot unavailable.")
    )


def _same_clinic(clinic: Clinic, *objects) -> None:
    for obj in objects:
        if obj is not None and obj.clinic_id != clinic.pk:
            # Edges scope their choices; reaching here is a bug or tampering.
            raise SchedulingError(_("%(obj)s belongs to another clinic.") % {"obj": obj})


def _free_room(
    *, clinic: Clinic, service: Service, occupied_start, occupied_end, exclude_pk=None, setup=None
) -> Room | None:
    """The first eligible room free for the range, or None if the service needs none
    (``setup``: the clinic's agenda setup, which answers that without a query)."""
    if setup is not None and not any(
        active for _room, active, _owner in setup.service_rooms.get(service.pk, ())
    ):
        return None
    rooms = list(service.rooms.filter(is_active=True).order_by("name"))
    if not rooms:
        return None
    busy = set(
        Appointment.objects.filter(
            clinic=clinic, room__in=rooms, occupied_start__gt=occupied_start - LOOKBACK
        )
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .exclude(pk=exclude_pk)
        .values_list("room_id", flat=True)
    )
    return next((room for room in rooms if room.pk not in busy), rooms[0])


def _payload(appointment: Appointment, **extra) -> dict:
    return {
        "appointment_id": appointment.pk,
        "patient_id": appointment.patient_id,
        "professional_id": appointment.professional_id,
        "service_id": appointment.service_id,
        "room_id": appointment.room_id,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "status": appointment.status,
        **extra,
    }


def _slot_freed(appointment: Appointment) -> None:
    """A future slot became free: the waitlist (and partners) may want it."""
    if appointment.start > timezone.now():
        publish("slot.freed", clinic=appointment.clinic_id, payload=_payload(appointment))


# --- Booking --------------------------------------------------------------------------------
@transaction.atomic
def appointment_book(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    service: Service,
    start: datetime,
    room: Room | None = None,
    booked_via: str = Channel.RECEPTION,
    booked_by=None,
    notes: str = "",
    internal_notes: str = "",
    check_availability: bool = False,
    series: RecurrenceSeries | None = None,
    replaces: Appointment | None = None,
    setup: AgendaSetup | None = None,
) -> Appointment:
    """Book an appointment. Raises ``SlotUnavailable`` when the professional, the room or
    the patient is occupied then (buffers included).

    ``check_availability`` also requires the slot to be one ``slot_list_available`` offers
    (working hours, time off, holidays, notice): patients and partners book that way;
    reception may squeeze a patient in ("encaixe") outside the published slots.
    ``setup``: the clinic's agenda setup if the caller has it (default: ``agenda_setup``).
    """
    _same_clinic(clinic, patient, professional, service, room)
    if not service.is_active:
        raise SchedulingError(_("This service is not offered any more."))
    if not professional.is_active:
        raise SchedulingError(_("This professional is not active."))
    setup = setup or agenda_setup(clinic.pk)
    if not setup.performs(service.pk, professional.pk):
        raise SchedulingError(
            _("%(professional)s does not perform %(service)s.")
            % {"professional": professional, "service": service}
        )
    if (
        room is not None
        and service.rooms.exists()
        and not service.rooms.filter(pk=room.pk).exists()
    ):
        raise SchedulingError(
            _("%(service)s cannot take place in %(room)s.") % {"service": service, "room": room}
        )
    end, occupied_start, occupied_end = _occupied(service, start)
    if room is None:
        room = _free_room(
            clinic=clinic,
            service=service,
            occupied_start=occupied_start,
            occupied_end=occupied_end,
            setup=setup,
        )

    def refused(conflicts: list[str]) -> SlotUnavailable:
        busy = ""
        if "professional" in conflicts:
            busy = _professional_busy(
                clinic=clinic,
                professional=professional,
                occupied_start=occupied_start,
                occupied_end=occupied_end,
            )
        return SlotUnavailable(
            _conflict_message(conflicts, professional_busy=busy), conflicts=conflicts
        )

    def clashes() -> list[str]:
        return _conflicts(
            clinic_id=clinic.pk,
            professional_id=professional.pk,
            room_id=room.pk if room else None,
            patient_id=patient.pk,
            occupied_start=occupied_start,
            occupied_end=occupied_end,
        )

    # A clash is the more useful answer ("the professional is busy"), so it comes before
    # the working hours. On PostgreSQL the exclusion constraints refuse every clash at the
    # insert, so the clashes are looked up only to name them once the slot was refused (a
    # query less for every booking that succeeds); SQLite has no such constraint, so there
    # they are looked up first.
    refused_by_constraints = connection.vendor == "postgresql"
    if not refused_by_constraints and (conflicts := clashes()):
        raise refused(conflicts)

    if check_availability:
        from .availability import slot_list_available

        slots = slot_list_available(
            clinic=clinic,
            service=service,
            professional=professional,
            room=room,
            start=start,
            end=end + timedelta(minutes=1),
            setup=setup,
            professional_checked=not refused_by_constraints,  # by the clashes above
        )
        if not any(slot.start == start for slot in slots):
            conflicts = (clashes() if refused_by_constraints else []) or ["hours"]
            raise refused(conflicts)

    appointment = Appointment(
        clinic=clinic,
        patient=patient,
        professional=professional,
        service=service,
        room=room,
        start=start,
        end=end,
        occupied_start=occupied_start,
        occupied_end=occupied_end,
        price=service.price,
        booked_via=booked_via,
        booked_by=booked_by,
        notes=notes,
        internal_notes=internal_notes,
        series=series,
        replaces=replaces,
    )
    try:
        with transaction.atomic():  # savepoint: a lost race must not poison the caller
            appointment.save()
    except (IntegrityError, OperationalError) as exc:
        lost_race = (EXCLUSION_VIOLATION, DEADLOCK_DETECTED)
        if getattr(exc.__cause__, "sqlstate", None) not in lost_race:
            raise
        # The exclusion constraints refused it: a clash that was there already, or
        # another booking that committed while this one ran.
        conflicts = clashes() or ["professional"]
        raise refused(conflicts) from None
    if replaces is None:
        publish("appointment.booked", clinic=clinic, payload=_payload(appointment))
    return appointment


# --- The status machine ---------------------------------------------------------------------
def _transition(appointment: Appointment, to: str, **fields) -> Appointment:
    """Move a locked copy of the appointment to ``to`` if the machine allows it."""
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if to not in TRANSITIONS[locked.status]:
        raise InvalidTransition(current=S(locked.status).label.lower(), wanted=S(to).label.lower())
    locked.status = to
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", *fields, "updated_at"])
    # The caller's instance reflects the change too.
    for name in ("status", *fields, "updated_at"):
        setattr(appointment, name, getattr(locked, name))
    return appointment


@transaction.atomic
def appointment_confirm(*, appointment: Appointment, via: str = Channel.RECEPTION, by=None):
    """The patient confirmed they will come."""
    _transition(
        appointment,
        S.CONFIRMED,
        confirmed_at=timezone.now(),
        confirmed_via=via,
        confirmed_by=by,
    )
    publish(
        "appointment.confirmed",
        clinic=appointment.clinic_id,
        payload=_payload(appointment, via=via),
    )
    return appointment


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by=None) -> Appointment:
    """The patient arrived at the clinic."""
    _transition(appointment, S.ARRIVED, arrived_at=timezone.now())
    publish("appointment.checked_in", clinic=appointment.clinic_id, payload=_payload(appointment))
    return appointment


@transaction.atomic
def appointment_start(*, appointment: Appointment, by=None) -> Appointment:
    """The professional called the patient in."""
    _transition(appointment, S.IN_PROGRESS, started_at=timezone.now())
    publish("appointment.started", clinic=appointment.clinic_id, payload=_payload(appointment))
    return appointment


@transaction.atomic
def appointment_complete(*, appointment: Appointment, by=None) -> Appointment:
    """The appointment took place (packages, billing and loyalty react to the event)."""
    _transition(appointment, S.COMPLETED, completed_at=timezone.now())
    publish("appointment.completed", clinic=appointment.clinic_id, payload=_payload(appointment))
    return appointment


@transaction.atomic
def appointment_mark_no_show(*, appointment: Appointment, by=None) -> Appointment:
    """The patient did not come; it counts on their record."""
    _transition(appointment, S.NO_SHOW, no_show_at=timezone.now())
    Patient.objects.filter(pk=appointment.patient_id).update(no_show_count=F("no_show_count") + 1)
    publish("appointment.no_show", clinic=appointment.clinic_id, payload=_payload(appointment))
    return appointment


def is_late_cancellation(appointment: Appointment, *, now: datetime | None = None) -> bool:
    window = timedelta(hours=appointment.service.cancellation_window_hours)
    return appointment.start - (now or timezone.now()) < window


@transaction.atomic
def appointment_cancel(
    *,
    appointment: Appointment,
    via: str = Channel.RECEPTION,
    by=None,
    reason: str = "",
    enforce_window: bool = False,
) -> Appointment:
    """Cancel; a cancellation inside the service's window is flagged late. With
    ``enforce_window`` (patients cancelling online) a late one is refused instead."""
    late = is_late_cancellation(appointment)
    if late and enforce_window:
        raise CancellationWindowClosed(
            _(
                "Appointments can only be cancelled online up to %(hours)d hours before. "
                "Please call the clinic."
            )
            % {"hours": appointment.service.cancellation_window_hours}
        )
    _transition(
        appointment,
        S.CANCELLED,
        cancelled_at=timezone.now(),
        cancelled_by=by,
        cancelled_via=via,
        cancellation_reason=reason[:255],
        late_cancellation=late,
    )
    publish(
        "appointment.cancelled",
        clinic=appointment.clinic_id,
        payload=_payload(appointment, via=via, late=late),
    )
    _slot_freed(appointment)
    return appointment


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    start: datetime,
    professional: Professional | None = None,
    room: Room | None = None,
    via: str = Channel.RECEPTION,
    by=None,
    check_availability: bool = False,
) -> Appointment:
    """Move an appointment: the old one ends as ``rescheduled`` and a new one, linked to
    it, is booked — both or neither. Returns the new appointment. ``check_availability``
    (partners, patients) also refuses times outside working hours, as booking does."""
    old = appointment
    _transition(old, S.RESCHEDULED)  # frees the old range before booking the new one
    new = appointment_book(
        clinic=old.clinic,
        patient=old.patient,
        professional=professional or old.professional,
        service=old.service,
        start=start,
        room=room if room is not None else (old.room if professional is None else None),
        booked_via=via,
        booked_by=by,
        notes=old.notes,
        internal_notes=old.internal_notes,
        replaces=old,
        check_availability=check_availability,
    )
    publish(
        "appointment.rescheduled",
        clinic=new.clinic_id,
        payload=_payload(new, previous_appointment_id=old.pk, previous_start=old.start.isoformat()),
    )
    _slot_freed(old)
    return new


@transaction.atomic
def appointment_notes_update(*, appointment: Appointment, notes: str, internal_notes: str):
    """Change the notes (for the patient) and internal notes; nothing else moves."""
    appointment.notes = notes
    appointment.internal_notes = internal_notes
    appointment.save(update_fields=["notes", "internal_notes", "updated_at"])
    return appointment


# --- Check-in -------------------------------------------------------------------------------
@transaction.atomic
def appointment_check_in_by_token(*, clinic: Clinic, token: str, by=None) -> Appointment:
    """Reception scanned the patient's QR code: check in today's next appointment.

    An unknown token, another clinic's token and a patient with nothing today all get the
    same ``NoAppointmentToday``: a scan reveals nothing."""
    patient = Patient.objects.for_clinic(clinic).filter(checkin_token=(token or "").strip()).first()
    appointment = None
    if patient is not None:
        appointment = (
            appointments_today(clinic=clinic)
            .filter(patient=patient, status__in=[S.SCHEDULED, S.CONFIRMED])
            .order_by("start")
            .first()
        )
    if appointment is None:
        raise NoAppointmentToday(_("No appointment today for this code."))
    return appointment_check_in(appointment=appointment, by=by)


def local_day_bounds(clinic: Clinic, day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) of a local day of the clinic, as aware datetimes."""
    zone = ZoneInfo(clinic.time_zone)
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def appointments_today(*, clinic: Clinic, now: datetime | None = None):
    today = (now or timezone.now()).astimezone(ZoneInfo(clinic.time_zone)).date()
    start, end = local_day_bounds(clinic, today)
    return Appointment.objects.for_clinic(clinic).filter(start__gte=start, start__lt=end)


# --- Recurring series -----------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesOccurrence:
    start: datetime
    end: datetime
    conflicts: list[str] = field(default_factory=list)

    @property
    def free(self) -> bool:
        return not self.conflicts


def _series_starts(
    clinic: Clinic, first_start: datetime, interval_weeks: int, occurrences, until
) -> list[datetime]:
    """Same local wall-clock time every N weeks (DST-proof), by count or until a date."""
    if not occurrences and not until:
        raise SchedulingError(_("Say how many sessions, or until which date."))
    if interval_weeks < 1:
        raise SchedulingError(_("The interval must be at least one week."))
    zone = ZoneInfo(clinic.time_zone)
    local = first_start.astimezone(zone)
    starts = []
    k = 0
    while len(starts) < MAX_SERIES_OCCURRENCES:
        day = local.date() + timedelta(weeks=k * interval_weeks)
        if until and day > until:
            break
        starts.append(datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone))
        k += 1
        if occurrences and len(starts) >= occurrences:
            break
    return starts


def series_plan(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    service: Service,
    first_start: datetime,
    interval_weeks: int = 1,
    occurrences: int | None = None,
    until: date | None = None,
    room: Room | None = None,
) -> list[SeriesOccurrence]:
    """Every occurrence of a series, each with what clashes (empty when free)."""
    _same_clinic(clinic, patient, professional, service, room)
    plan = []
    for start in _series_starts(clinic, first_start, interval_weeks, occurrences, until):
        end, occupied_start, occupied_end = _occupied(service, start)
        chosen = room or _free_room(
            clinic=clinic, service=service, occupied_start=occupied_start, occupied_end=occupied_end
        )
        conflicts = _conflicts(
            clinic_id=clinic.pk,
            professional_id=professional.pk,
            room_id=chosen.pk if chosen else None,
            patient_id=patient.pk,
            occupied_start=occupied_start,
            occupied_end=occupied_end,
        )
        plan.append(SeriesOccurrence(start=start, end=end, conflicts=conflicts))
    return plan


@transaction.atomic
def series_book(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    service: Service,
    first_start: datetime,
    interval_weeks: int = 1,
    occurrences: int | None = None,
    until: date | None = None,
    room: Room | None = None,
    skip=(),
    booked_via: str = Channel.RECEPTION,
    booked_by=None,
) -> tuple[RecurrenceSeries, list[Appointment]]:
    """Book a whole series, checked first: every occurrence not in ``skip`` must be free,
    else ``SeriesClash`` lists the dates that clash and nothing is booked."""
    skip = {s.astimezone(ZoneInfo("UTC")) for s in skip}
    plan = series_plan(
        clinic=clinic,
        patient=patient,
        professional=professional,
        service=service,
        first_start=first_start,
        interval_weeks=interval_weeks,
        occurrences=occurrences,
        until=until,
        room=room,
    )
    wanted = [o for o in plan if o.start.astimezone(ZoneInfo("UTC")) not in skip]
    clashes = [o for o in wanted if not o.free]
    if clashes:
        raise SeriesClash(
            _("Some dates of the series are taken: choose to skip them or cancel."),
            clashes=clashes,
        )
    if not wanted:
        raise SchedulingError(_("Every date of the series was skipped: nothing to book."))
    series = RecurrenceSeries.objects.create(
        clinic=clinic,
        interval_weeks=interval_weeks,
        occurrences=occurrences,
        until=until,
        created_by=booked_by,
    )
    booked = []
    for occurrence in wanted:
        try:
            booked.append(
                appointment_book(
                    clinic=clinic,
                    patient=patient,
                    professional=professional,
                    service=service,
                    start=occurrence.start,
                    room=room,
                    booked_via=booked_via,
                    booked_by=booked_by,
                    series=series,
                )
            )
        except SlotUnavailable as exc:  # taken since the plan: all or nothing
            raise SeriesClash(
                _("A date of the series was taken meanwhile: check again."),
                clashes=[SeriesOccurrence(occurrence.start, occurrence.end, exc.conflicts)],
            ) from None
    return series, booked


# --- Waitlist -------------------------------------------------------------------------------
@transaction.atomic
def waitlist_add(
    *,
    clinic: Clinic,
    patient: Patient,
    service: Service,
    earliest_date: date,
    latest_date: date,
    professional: Professional | None = None,
    period: str = DayPeriod.ANY,
    notes: str = "",
) -> WaitlistEntry:
    """Put a patient on the waitlist for a service in a date range."""
    _same_clinic(clinic, patient, service, professional)
    entry = WaitlistEntry(
        clinic=clinic,
        patient=patient,
        service=service,
        professional=professional,
        earliest_date=earliest_date,
        latest_date=latest_date,
        period=period,
        notes=notes,
    )
    entry.full_clean()
    entry.save()
    return entry


def _period_of(local_start: datetime) -> str:
    return DayPeriod.MORNING if local_start.hour < 12 else DayPeriod.AFTERNOON


@transaction.atomic
def waitlist_offer_slot(
    *,
    clinic: Clinic,
    service_id: int,
    professional_id: int,
    room_id: int | None,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> list[WaitlistOffer]:
    """Offer a freed slot to the matching waitlist entries: the oldest one, or all at once
    (clinic setting). Each offer publishes ``waitlist.offered`` (messaging sends it)."""
    now = now or timezone.now()
    if start <= now:
        return []
    service = Service.objects.for_clinic(clinic).filter(pk=service_id).first()
    if service is None:
        return []
    end, occupied_start, occupied_end = _occupied(service, start)
    if (
        Appointment.objects.filter(clinic=clinic, professional_id=professional_id)
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .exists()
    ):
        return []  # someone booked it already
    local = start.astimezone(ZoneInfo(clinic.time_zone))
    open_for_slot = WaitlistOffer.objects.filter(
        clinic=clinic, professional_id=professional_id, start=start, status=OfferStatus.OPEN
    )
    if open_for_slot.exists():
        return []  # already on offer (e.g. the same event delivered again)
    entries = (
        WaitlistEntry.objects.select_for_update()
        .filter(
            clinic=clinic,
            service_id=service_id,
            status=WStatus.WAITING,
            earliest_date__lte=local.date(),
            latest_date__gte=local.date(),
            period__in=[DayPeriod.ANY, _period_of(local)],
        )
        .order_by("created_at", "pk")
    )
    matching = [e for e in entries if e.professional_id in (None, professional_id)]
    if conf.clinic_option(clinic, "waitlist_offer_mode") == OfferMode.ONE:
        matching = matching[:1]
    minutes = conf.clinic_option(clinic, "waitlist_offer_minutes")
    offers = []
    for entry in matching:
        offer = WaitlistOffer.objects.create(
            clinic=clinic,
            entry=entry,
            professional_id=professional_id,
            room_id=room_id,
            start=start,
            end=end,
            expires_at=now + timedelta(minutes=minutes),
        )
        entry.status = WStatus.OFFERED
        entry.save(update_fields=["status"])
        publish(
            "waitlist.offered",
            clinic=clinic,
            payload={
                "offer_id": offer.pk,
                "entry_id": entry.pk,
                "patient_id": entry.patient_id,
                "service_id": service_id,
                "professional_id": professional_id,
                "start": start.isoformat(),
                "expires_at": offer.expires_at.isoformat(),
            },
        )
        offers.append(offer)
    return offers


def waitlist_offer_claim(
    *, token: str, via: str = Channel.PORTAL, now: datetime | None = None
) -> Appointment:
    """The patient accepts an offer: the first claim books; a later one, or an expired
    offer, gets ``OfferUnavailable`` with a clear message (and the offer's new status — taken
    or expired — is kept: the error is raised after the transaction commits it)."""
    outcome = _offer_claim(token=token, via=via, now=now or timezone.now())
    if isinstance(outcome, OfferUnavailable):
        raise outcome
    return outcome


@transaction.atomic
def _offer_claim(*, token: str, via: str, now: datetime) -> Appointment | OfferUnavailable:
    offer = (
        WaitlistOffer.objects.select_for_update()
        .select_related("entry", "entry__patient", "entry__service", "clinic", "professional")
        .filter(token=token)
        .first()
    )
    if offer is None:
        return OfferUnavailable(_("This offer does not exist."))
    if offer.status == OfferStatus.TAKEN:
        return OfferUnavailable(_("Sorry, this slot was already taken by someone else."))
    if offer.status != OfferStatus.OPEN:
        return OfferUnavailable(_("This offer was already used."))
    if offer.expires_at <= now:
        _offer_expire(offer)
        return OfferUnavailable(_("This offer has expired."))
    entry = offer.entry
    try:
        # Savepoint: a lost race must not undo the offer's "taken" below.
        with transaction.atomic():
            appointment = appointment_book(
                clinic=offer.clinic,
                patient=entry.patient,
                professional=offer.professional,
                service=entry.service,
                start=offer.start,
                room=offer.room,
                booked_via=via,
            )
    except SlotUnavailable:
        offer.status = OfferStatus.TAKEN
        offer.save(update_fields=["status"])
        entry.status = WStatus.WAITING
        entry.save(update_fields=["status"])
        return OfferUnavailable(_("Sorry, this slot was already taken by someone else."))
    offer.status = OfferStatus.CLAIMED
    offer.save(update_fields=["status"])
    entry.status = WStatus.BOOKED
    entry.appointment = appointment
    entry.save(update_fields=["status", "appointment"])
    # Everyone else offered the same slot: it is gone.
    others = WaitlistOffer.objects.filter(
        clinic=offer.clinic,
        professional=offer.professional,
        start=offer.start,
        status=OfferStatus.OPEN,
    ).exclude(pk=offer.pk)
    WaitlistEntry.objects.filter(pk__in=others.values("entry_id")).update(status=WStatus.WAITING)
    others.update(status=OfferStatus.TAKEN)
    return appointment


def _offer_expire(offer: WaitlistOffer) -> None:
    offer.status = OfferStatus.EXPIRED
    offer.save(update_fields=["status"])
    if offer.entry.status == WStatus.OFFERED:
        offer.entry.status = WStatus.WAITING
        offer.entry.save(update_fields=["status"])


@transaction.atomic
def waitlist_offers_expire(*, now: datetime | None = None) -> int:
    """Expire open offers past their time; in one-at-a-time mode the slot goes to the next
    patient in line (if still free). Periodic job; idempotent."""
    now = now or timezone.now()
    expired = list(
        WaitlistOffer.objects.select_for_update(skip_locked=True)
        .select_related("entry", "clinic")
        .filter(status=OfferStatus.OPEN, expires_at__lte=now)
    )
    for offer in expired:
        _offer_expire(offer)
        if offer.entry.status == WStatus.WAITING:
            # The patient let it pass: back in the queue, behind the others.
            WaitlistEntry.objects.filter(pk=offer.entry_id).update(created_at=now)
    for offer in expired:
        if conf.clinic_option(offer.clinic, "waitlist_offer_mode") == OfferMode.ONE:
            waitlist_offer_slot(
                clinic=offer.clinic,
                service_id=offer.entry.service_id,
                professional_id=offer.professional_id,
                room_id=offer.room_id,
                start=offer.start,
                end=offer.end,
                now=now,
            )
    return len(expired)


# --- Calendar feeds -------------------------------------------------------------------------
@transaction.atomic
def calendar_feed_rotate(*, professional: Professional) -> CalendarFeed:
    """Create the professional's private ICS feed, or issue a new link (the old one stops
    working at once)."""
    feed, created = CalendarFeed.objects.get_or_create(
        professional=professional, defaults={"clinic_id": professional.clinic_id}
    )
    if not created:
        feed.token = new_feed_token()
        feed.save(update_fields=["token"])
    return feed
