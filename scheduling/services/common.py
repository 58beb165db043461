"""What the agenda's services share: where an appointment would sit (its occupied span
with buffers), what clashes there, a free room, the event payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.tenancy import other_clinic_object
from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Professional, Room
from integrations.events import publish

from ..choices import AppointmentStatus
from ..exceptions import (
    SchedulingError,
)
from ..models import (
    Appointment,
    Service,
)

S = AppointmentStatus
EXCLUSION_VIOLATION = "23P01"
#: Two bookings racing through the exclusion constraints' indexes can deadlock; PostgreSQL
#: aborts one of them, which simply lost the race.
DEADLOCK_DETECTED = "40P01"
#: Longer than any appointment with its buffers (a service lasts at most 12 h).
LOOKBACK = timedelta(hours=16)


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
    encaixe: bool = False,
) -> list[str]:
    """Which of professional, room and patient are already occupied then (one query).

    Each arm is bounded on both sides of an index — ``(professional|room, occupied_start)``
    and ``(patient, start)`` — by ``LOOKBACK``, longer than any appointment, so a booking
    stays fast on an agenda with years of history (bench/scheduling.py). The exclusion
    constraints remain the guarantee; the bound only decides what the message names.

    As the professional's constraint (migration 0004), an encaixe row never makes the
    professional busy, and a booking made as an ``encaixe`` ignores the professional."""
    since = occupied_start - LOOKBACK
    arms = Q(patient_id=patient_id, start__gt=since, start__lt=occupied_end + LOOKBACK)
    if not encaixe:
        arms |= Q(professional_id=professional_id, occupied_start__gt=since, encaixe=False)
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
    rows = clash.values_list("professional_id", "room_id", "patient_id", "encaixe")
    for prof, room, patient, row_encaixe in rows:
        if prof == professional_id and not (encaixe or row_encaixe):
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
        .filter(occupied_start__gt=occupied_start - LOOKBACK, encaixe=False)
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .exclude(pk=exclude_pk)
        .order_by("occupied_start")
        .values_list("start", "end", "occupied_start", "occupied_end")
        .first()
    )
    if clash is None:
        return ""
    zone = clinic_zone(clinic)

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
    if (obj := other_clinic_object(clinic, *objects)) is not None:
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
        # UTC whatever the caller's offset: one time format in every event (issue 17).
        "start": appointment.start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "end": appointment.end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "status": appointment.status,
        **extra,
    }


def _slot_freed(appointment: Appointment) -> None:
    """A future slot became free: the waitlist (and partners) may want it."""
    if appointment.start > timezone.now():
        publish("slot.freed", clinic=appointment.clinic_id, payload=_payload(appointment))
