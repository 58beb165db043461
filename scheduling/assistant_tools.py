"""Scheduling's tools for the WhatsApp assistant (``clinic.messaging.assistant.tools``):
services and prices, professionals, real availability, booking, rescheduling, cancelling,
confirming and the patient's upcoming appointments — each through this app's services and
selectors, with the rules patients book by (``check_availability``, the cancellation
window). Registered by importing this module (``apps.SchedulingConfig.ready``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from clinic.kernel.timezones import clinic_zone
from clinic.messaging.assistant.tools import (
    AppointmentInfo,
    ServiceInfo,
    SlotInfo,
    SlotTaken,
    ToolRefused,
    assistant_tool,
)
from clinic.models import Professional, Room

from .availability import slot_list_available
from .choices import AppointmentStatus, Channel
from .exceptions import CancellationWindowClosed, InvalidTransition, SlotUnavailable
from .models import Appointment, Service
from .portal.booking import bookable_services
from .services import (
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_reschedule,
)

PENDING = (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED)


def _info(appointment: Appointment) -> AppointmentInfo:
    return AppointmentInfo(
        id=appointment.pk,
        start=appointment.start,
        service_id=appointment.service_id,
        service_name=appointment.service.name,
        professional_name=appointment.professional.full_name,
        status=appointment.status,
        professional_id=appointment.professional_id,
    )


@assistant_tool("services")
def services(*, clinic) -> list[ServiceInfo]:
    """The services a patient may book online (the portal's list)."""
    return [
        ServiceInfo(s.pk, s.name, s.price, s.duration_minutes) for s in bookable_services(clinic)
    ]


@assistant_tool("professionals")
def professionals(*, clinic, service_id: int) -> list[tuple[int, str]]:
    service = bookable_services(clinic).filter(pk=service_id).first()
    if service is None:
        return []
    return list(
        service.professionals.filter(clinic=clinic, is_active=True)
        .order_by("full_name", "pk")
        .values_list("pk", "full_name")
    )


@assistant_tool("availability")
def availability(
    *,
    clinic,
    service_id: int,
    professional_id: int | None,
    first_day: date,
    last_day: date,
    hours: tuple[int, int] | None = None,
    limit: int = 5,
    exclude_starts: frozenset = frozenset(),
) -> list[SlotInfo]:
    """Free slots from the agenda, the earliest first, spread over the days asked for
    (at most ``limit``), within ``hours`` of the clinic's day when given."""
    service = bookable_services(clinic).filter(pk=service_id).first()
    if service is None:
        return []
    professional = None
    if professional_id:
        professional = service.professionals.filter(
            clinic=clinic, is_active=True, pk=professional_id
        ).first()
        if professional is None:
            return []
    zone = clinic_zone(clinic)
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=zone)
    slots = slot_list_available(
        clinic=clinic, service=service, professional=professional, start=start, end=end
    )
    names = dict(
        Professional.objects.for_clinic(clinic)
        .filter(pk__in={s.professional_id for s in slots})
        .values_list("pk", "full_name")
    )
    chosen: list[SlotInfo] = []
    seen_starts = set(exclude_starts)
    for slot in slots:
        local = slot.start.astimezone(zone)
        if hours and not hours[0] <= local.hour < hours[1]:
            continue
        if slot.start.isoformat() in seen_starts:
            continue  # one offer per time, whoever the professional ("anyone")
        seen_starts.add(slot.start.isoformat())
        chosen.append(
            SlotInfo(
                slot.start, slot.professional_id, names.get(slot.professional_id, ""), slot.room_id
            )
        )
        if len(chosen) >= limit:
            break
    return chosen


def _service(clinic, service_id: int) -> Service:
    service = bookable_services(clinic).filter(pk=service_id).first()
    if service is None:
        raise ToolRefused("service not bookable")
    return service


@assistant_tool("book")
def book(*, clinic, patient, slot: SlotInfo, service_id: int) -> AppointmentInfo:
    """Book ``slot``, re-checked against the agenda now (``check_availability``): a slot
    taken since it was offered raises ``SlotTaken``."""
    service = _service(clinic, service_id)
    professional = service.professionals.filter(
        clinic=clinic, is_active=True, pk=slot.professional_id
    ).first()
    if professional is None:
        raise SlotTaken("professional unavailable")
    room = Room.objects.for_clinic(clinic).filter(pk=slot.room_id).first() if slot.room_id else None
    try:
        # Savepoint: a refused booking must not undo the conversation's own writes.
        with transaction.atomic():
            appointment = appointment_book(
                clinic=clinic,
                patient=patient,
                professional=professional,
                service=service,
                start=slot.start,
                room=room,
                booked_via=Channel.WHATSAPP,
                check_availability=True,
            )
    except SlotUnavailable as exc:
        raise SlotTaken(str(exc)) from exc
    return _info(appointment)


def _own(clinic, patient, appointment_id: int) -> Appointment:
    appointment = (
        Appointment.objects.for_clinic(clinic)
        .select_related("service", "professional", "clinic", "patient")
        .filter(pk=appointment_id, patient=patient, status__in=PENDING)
        .first()
    )
    if appointment is None:
        raise ToolRefused("no such appointment")
    return appointment


@assistant_tool("reschedule")
def reschedule(*, clinic, patient, appointment_id: int, slot: SlotInfo, service_id: int):
    appointment = _own(clinic, patient, appointment_id)
    professional = Professional.objects.for_clinic(clinic).filter(pk=slot.professional_id).first()
    room = Room.objects.for_clinic(clinic).filter(pk=slot.room_id).first() if slot.room_id else None
    try:
        with transaction.atomic():
            new = appointment_reschedule(
                appointment=appointment,
                start=slot.start,
                professional=professional,
                room=room,
                via=Channel.WHATSAPP,
                check_availability=True,
            )
    except SlotUnavailable as exc:
        raise SlotTaken(str(exc)) from exc
    except InvalidTransition as exc:
        raise ToolRefused(str(exc)) from exc
    return _info(new)


@assistant_tool("cancel")
def cancel(*, clinic, patient, appointment_id: int) -> AppointmentInfo:
    appointment = _own(clinic, patient, appointment_id)
    try:
        with transaction.atomic():
            appointment_cancel(
                appointment=appointment,
                via=Channel.WHATSAPP,
                reason="cancelled by the patient with the assistant",
                enforce_window=True,
            )
    except CancellationWindowClosed as exc:
        raise ToolRefused(str(exc)) from exc
    return _info(appointment)


@assistant_tool("confirm")
def confirm(*, clinic, patient, appointment_id: int) -> AppointmentInfo:
    appointment = _own(clinic, patient, appointment_id)
    if appointment.status != AppointmentStatus.CONFIRMED:
        appointment_confirm(appointment=appointment, via=Channel.WHATSAPP)
    return _info(appointment)


@assistant_tool("upcoming")
def upcoming(*, clinic, patient, limit: int = 5) -> list[AppointmentInfo]:
    return [
        _info(a)
        for a in Appointment.objects.for_clinic(clinic)
        .select_related("service", "professional")
        .filter(patient=patient, status__in=PENDING, start__gt=timezone.now())
        .order_by("start", "pk")[:limit]
    ]
