"""Booking one appointment and its status machine: confirm, check-in, start, complete,
no-show, cancel, reschedule, notes, check-in by token, today's appointments."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Patient, Professional, Room
from integrations.events import publish

from ..agenda_setup import AgendaSetup, agenda_setup
from ..choices import TRANSITIONS, Channel
from ..exceptions import (
    CancellationWindowClosed,
    InvalidTransition,
    NoAppointmentToday,
    SchedulingError,
    SlotUnavailable,
)
from ..models import (
    Appointment,
    RecurrenceSeries,
    Service,
)
from .common import (
    DEADLOCK_DETECTED,
    EXCLUSION_VIOLATION,
    S,
    _conflict_message,
    _conflicts,
    _free_room,
    _occupied,
    _payload,
    _professional_busy,
    _same_clinic,
    _slot_freed,
)


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
    encaixe: bool = False,
    duration: timedelta | None = None,
) -> Appointment:
    """Book an appointment. Raises ``SlotUnavailable`` when the professional, the room or
    the patient is occupied then (buffers included).

    ``check_availability`` also requires the slot to be one ``slot_list_available`` offers
    (working hours, time off, holidays, notice): patients and partners book that way;
    reception may book outside the published slots.
    ``encaixe``: reception deliberately books over the professional's occupied time (after
    a warning naming the clash); the professional is then not checked, the room and the
    patient still are. Only reception may (never the portal, the API or the assistant),
    and never with ``check_availability``.
    ``duration``: another length than the service's (reception resizing a card).
    ``setup``: the clinic's agenda setup if the caller has it (default: ``agenda_setup``).
    """
    if encaixe and (booked_via != Channel.RECEPTION or check_availability):
        raise SchedulingError(_("Only reception can squeeze a patient in (encaixe)."))
    if duration is not None and not (timedelta(minutes=5) <= duration <= timedelta(hours=12)):
        raise SchedulingError(_("An appointment lasts from 5 minutes to 12 hours."))
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
    if duration is not None:
        end = start + duration
        occupied_end = end + service.buffer_after
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
            encaixe=encaixe,
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
        from ..availability import slot_list_available

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
        encaixe=encaixe,
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
        extra = {"encaixe": True} if encaixe else {}
        publish("appointment.booked", clinic=clinic, payload=_payload(appointment, **extra))
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
    encaixe: bool = False,
    duration: timedelta | None = None,
    notify_patient: bool = False,
) -> Appointment:
    """Move an appointment: the old one ends as ``rescheduled`` and a new one, linked to
    it, is booked — both or neither. Returns the new appointment. ``check_availability``
    (partners, patients) also refuses times outside working hours, as booking does.
    ``encaixe`` and ``duration`` as for :func:`appointment_book` (reception's calendar);
    ``notify_patient``: the patient is sent the new time (``handlers.py``, after commit)."""
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
        encaixe=encaixe,
        duration=duration,
    )
    publish(
        "appointment.rescheduled",
        clinic=new.clinic_id,
        payload=_payload(
            new,
            previous_appointment_id=old.pk,
            previous_start=old.start.isoformat(),
            notify_patient=notify_patient,
            **({"encaixe": True} if encaixe else {}),
        ),
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
    zone = clinic_zone(clinic)
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def appointments_today(*, clinic: Clinic, now: datetime | None = None):
    today = (now or timezone.now()).astimezone(clinic_zone(clinic)).date()
    start, end = local_day_bounds(clinic, today)
    return Appointment.objects.for_clinic(clinic).filter(start__gte=start, start__lt=end)
