"""Demo data of the agenda, found by ``manage.py seed_demo``: services, working hours and
two weeks of appointments around today in every status. Idempotent.

The appointments obey the agenda's own rules: each is booked at a time the availability
computation offers that day (working hours, holidays, buffers), about a third of each
professional's time, so the coming week always has free times to book — whatever the day,
or the hour, the demo is seeded (a weekend, a holiday, late evening, New Year's Eve)."""

from contextlib import suppress
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from clinic.kernel.timezones import clinic_today, clinic_zone
from clinic.models import Patient, Professional, Room

from . import services
from .agenda_setup import agenda_setup
from .availability import slots_for_reception
from .choices import ServiceCategory
from .exceptions import SchedulingError
from .models import Appointment, Service, WorkingHours

SERVICES = [
    # name, category, minutes, buffer after, price, specialty of who performs it, room name
    ("Consulta clínica", ServiceCategory.CONSULTATION, 30, 10, "250.00", "Clínica geral", None),
    ("Retorno", ServiceCategory.CONSULTATION, 20, 0, "0.00", "Clínica geral", None),
    ("Consulta ortopédica", ServiceCategory.CONSULTATION, 30, 10, "320.00", "Ortopedia", None),
    ("Sessão de fisioterapia", ServiceCategory.THERAPY, 50, 10, "180.00", "Fisioterapia",
     "Sala de fisioterapia"),
    ("Psicoterapia", ServiceCategory.THERAPY, 50, 10, "200.00", "Psicologia", None),
    ("Avaliação nutricional", ServiceCategory.CONSULTATION, 40, 10, "220.00", "Nutrição", None),
    ("Pilates clínico", ServiceCategory.THERAPY, 50, 10, "120.00", "Pilates clínico",
     "Estúdio de pilates"),
]  # fmt: skip
HOURS = [(time(8), time(12)), (time(13), time(18))]


def seed_demo(*, clinics, rng, stdout) -> None:
    for clinic in clinics:
        with transaction.atomic():
            _catalogue(clinic)
            _hours(clinic)
            if not Appointment.objects.for_clinic(clinic).exists():
                count = _appointments(clinic, rng)
                stdout.write(f"{clinic.name}: {count} demo appointments.")
                replies = _messages(clinic)
                stdout.write(f"{clinic.name}: reminders queued, {replies} patient replies.")


def _catalogue(clinic) -> None:
    rooms = {room.name: room for room in Room.objects.for_clinic(clinic)}
    for name, category, minutes, after, price, specialty, room_name in SERVICES:
        professionals = Professional.objects.for_clinic(clinic).filter(specialty=specialty)
        if not professionals.exists():
            continue
        service, created = Service.objects.get_or_create(
            clinic=clinic,
            name=name,
            defaults={
                "category": category,
                "duration_minutes": minutes,
                "buffer_after_minutes": after,
                "price": Decimal(price),
                "preparation_instructions": (
                    "Traga seus exames recentes."
                    if category == ServiceCategory.CONSULTATION
                    else "Venha com roupas confortáveis."
                ),
            },
        )
        if created:
            service.professionals.set(professionals)
            if room_name in rooms:
                service.rooms.add(rooms[room_name])


def _hours(clinic) -> None:
    for professional in Professional.objects.for_clinic(clinic):
        if WorkingHours.objects.filter(professional=professional).exists():
            continue
        WorkingHours.objects.bulk_create(
            [
                WorkingHours(
                    clinic=clinic, professional=professional, weekday=day, start_time=a, end_time=b
                )
                for day in range(5)
                for a, b in HOURS
            ]
        )


#: Appointments per service and professional on an open day (a third of a day or less).
PER_DAY = 3


def _appointments(clinic, rng) -> int:
    zone = clinic_zone(clinic)
    today = clinic_today(clinic)
    patients = list(Patient.objects.for_clinic(clinic).order_by("pk"))
    professionals = {p.pk: p for p in Professional.objects.for_clinic(clinic)}
    setup = agenda_setup(clinic.pk)
    booked = 0
    for offset in range(-7, 8):
        day = today + timedelta(days=offset)
        day_start = datetime.combine(day, time.min, tzinfo=zone)
        # The times reception could book that day, as seen from its first minute (so past
        # days have them too); closed days (weekends, holidays) have none.
        offered = slots_for_reception(
            clinic=clinic,
            start=day_start,
            end=day_start + timedelta(days=1),
            now=day_start,
            setup=setup,
        )
        for service_id, slots in sorted(offered.items()):
            service = setup.services[service_id]
            by_professional: dict[int, list] = {}
            for slot in slots:
                by_professional.setdefault(slot.professional_id, []).append(slot)
            for professional_id, choices in sorted(by_professional.items()):
                for slot in rng.sample(choices, k=min(PER_DAY, len(choices))):
                    try:
                        appointment = services.appointment_book(
                            clinic=clinic,
                            patient=rng.choice(patients),
                            professional=professionals[professional_id],
                            service=service,
                            start=slot.start,
                            room=Room.objects.get(pk=slot.room_id) if slot.room_id else None,
                            booked_via=rng.choice(["reception", "reception", "whatsapp", "phone"]),
                        )
                    except SchedulingError:
                        continue  # taken by an earlier pick, or the patient is busy: skip it
                    _advance(appointment, offset, rng)
                    booked += 1
    return booked


def _advance(appointment, offset, rng) -> None:
    """Move an appointment along the status machine as its day suggests."""
    roll = rng.random()
    if offset > 0 and roll < 0.08:
        with suppress(SchedulingError):  # next week's slot is taken or closed: leave it
            services.appointment_reschedule(
                appointment=appointment,
                start=appointment.start + timedelta(days=7),
                check_availability=True,  # working hours and holidays, as the portal books
            )
        return
    if offset < 0:
        if roll < 0.12:
            services.appointment_mark_no_show(appointment=appointment)
            return
        if roll < 0.22:
            services.appointment_cancel(appointment=appointment, reason="Imprevisto")
            return
        services.appointment_confirm(appointment=appointment, via="whatsapp")
        services.appointment_check_in(appointment=appointment)
        services.appointment_start(appointment=appointment)
        services.appointment_complete(appointment=appointment)
    elif offset == 0:
        if roll < 0.3:
            services.appointment_confirm(appointment=appointment, via="whatsapp")
        if roll < 0.2:
            services.appointment_check_in(appointment=appointment)
        if roll < 0.1:
            services.appointment_start(appointment=appointment)
    elif roll < 0.5:
        services.appointment_confirm(appointment=appointment, via=rng.choice(["whatsapp", "sms"]))


def _messages(clinic) -> int:
    """What reception sees in the messaging screens: the 48 h reminders (delivered by the
    worker through the console providers, listed under Integrations → Console), a patient
    who confirmed by answering "1" and one whose question waits in the unanswered inbox."""
    from clinic.messaging.services import message_receive
    from integrations.base import InboundMessage

    from .reminders import reminders_48h_send

    reminders_48h_send()
    upcoming = list(
        Appointment.objects.for_clinic(clinic)
        .filter(status="scheduled", start__gt=timezone.now() + timedelta(hours=2))
        .select_related("patient")
        .order_by("start")[:2]
    )
    texts = ["1", "Bom dia! Posso levar meu filho junto na consulta?"]
    for index, (appointment, text) in enumerate(zip(upcoming, texts, strict=False)):
        patient = appointment.patient
        message_receive(
            clinic=clinic,
            channel=patient.preferred_channel
            if patient.preferred_channel in ("whatsapp", "sms")
            else "whatsapp",
            item=InboundMessage(
                provider_message_id=f"demo-{clinic.pk}-{index}",
                from_address=patient.phone,
                to_address=clinic.phone or "",
                text=text,
                received_at=timezone.now(),
                sender_name=patient.first_name,
            ),
            provider="console",
            source_key=f"demo:{clinic.pk}:{index}",
        )
    return len(upcoming)
