"""The agenda's periodic jobs: reminders 48 h ahead and on the eve, no-show detection,
birthdays — each idempotent (a repeat, or two overlapping runs, sends once) — and the
messages the agenda's events send (booking confirmation, no-show follow-up)."""

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from clinic import services as clinic_services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from clinic.messaging.services import birthdays_greet
from clinic.messaging.tasks import birthdays_greet_task
from integrations.models import ConsoleRecord
from scheduling import links, reminders
from scheduling.choices import AppointmentStatus, Channel
from scheduling.tasks import reminders_eve_task
from tests.clinic.factories import ClinicFactory, PatientFactory, ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
#: A Monday, 18:00 in São Paulo (21:00 UTC): when the evening jobs run.
EVENING = datetime(2026, 11, 23, 18, 0, tzinfo=SAO_PAULO)


def consented_patient(clinic, **fields):
    patient = PatientFactory(clinic=clinic, **fields)
    clinic_services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    return patient


@pytest.fixture
def desk(db):
    clinic = ClinicFactory(name="Clínica Lembrete", street="Rua A", number="10", city="São Paulo")
    professional = ProfessionalFactory(clinic=clinic, full_name="Dra. Ana Souza")
    service = ServiceFactory(
        clinic=clinic,
        name="Fisioterapia",
        professionals=[professional],
        preparation_instructions="Venha com roupa confortável.",
    )
    return {"clinic": clinic, "professional": professional, "service": service}


def appointment(desk, start, status=AppointmentStatus.SCHEDULED, **fields):
    return AppointmentFactory(
        clinic=desk["clinic"],
        service=desk["service"],
        professional=desk["professional"],
        patient=consented_patient(desk["clinic"]),
        start=start,
        status=status,
        **fields,
    )


def sent(template):
    return OutboundMessage.objects.filter(template=template)


# --- 48 h reminders -------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_48h_reminder_goes_to_appointments_24_to_48_hours_ahead_once(
    desk, django_capture_on_commit_callbacks
):
    due = appointment(desk, EVENING + timedelta(hours=40))
    confirmed = appointment(desk, EVENING + timedelta(hours=30), AppointmentStatus.CONFIRMED)
    appointment(desk, EVENING + timedelta(hours=60))  # next run's
    appointment(desk, EVENING + timedelta(hours=10))  # the eve reminder's
    appointment(desk, EVENING + timedelta(hours=40, minutes=30), AppointmentStatus.CANCELLED)

    with (
        time_machine.travel(EVENING, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reminders.reminders_48h_send() == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert reminders.reminders_48h_send() == 0  # the repeat sends nothing

    assert {m.idempotency_key for m in sent("lembrete_consulta")} == {
        f"reminder-48h:{due.pk}",
        f"reminder-48h:{confirmed.pk}",
    }
    assert ConsoleRecord.objects.filter(operation="send").count() == 2
    message = sent("lembrete_consulta").get(patient=due.patient)
    # Wednesday 25/11 at 10:00 in São Paulo, whatever the server's zone.
    assert "quarta-feira, 25/11/2026, às 10:00" in message.body
    assert "Dra. Ana Souza" in message.body and "Fisioterapia" in message.body
    assert "Preparo: Venha com roupa confortável." in message.body
    assert "/agenda/l/confirm/" in message.body and "/agenda/l/cancel/" in message.body
    assert message.status == "sent"


@pytest.mark.django_db
def test_the_eve_reminder_goes_to_tomorrows_unconfirmed_appointments(
    desk, django_capture_on_commit_callbacks
):
    tomorrow_morning = datetime(2026, 11, 24, 9, 0, tzinfo=SAO_PAULO)
    unconfirmed = appointment(desk, tomorrow_morning)
    appointment(desk, tomorrow_morning + timedelta(hours=2), AppointmentStatus.CONFIRMED)
    appointment(desk, tomorrow_morning + timedelta(days=1))

    with (
        time_machine.travel(EVENING, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reminders.reminders_eve_send() == 1
        assert reminders.reminders_eve_send() == 0

    [message] = sent("lembrete_vespera")
    assert message.patient == unconfirmed.patient
    assert "amanhã, 24/11/2026, às 09:00" in message.body


@pytest.mark.django_db
def test_a_swept_reminder_carries_the_same_links_as_one_sent_alone_and_they_open_it(
    desk, django_capture_on_commit_callbacks
):
    due = appointment(desk, EVENING + timedelta(hours=40))

    with (
        time_machine.travel(EVENING, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reminders.reminders_48h_send() == 1
        expected = {
            action: links.appointment_link(appointment=due, action=action, channel=Channel.WHATSAPP)
            for action in ("confirm", "cancel")
        }
        message = sent("lembrete_consulta").get()
        for action, url in expected.items():
            assert url in message.body
            token = url.rstrip("/").rsplit("/", 1)[1]
            found, channel = links.appointment_from_link(action=action, token=token)
            assert (found, channel) == (due, Channel.WHATSAPP)


@pytest.mark.django_db
def test_batch_signed_links_are_exactly_those_of_appointment_link(desk):
    due = appointment(desk, EVENING + timedelta(hours=40))
    with time_machine.travel(EVENING, tick=False):
        signer = links.AppointmentLinks()
        for channel in Channel.values:
            assert signer(appointment_id=due.pk, channel=channel) == {
                action: links.appointment_link(appointment=due, action=action, channel=channel)
                for action in links.LINK_ACTIONS
            }
        with pytest.raises(ValueError):
            signer(appointment_id=due.pk, channel="pigeon")


@pytest.mark.django_db
def test_the_eve_reminder_uses_each_clinics_own_calendar(django_capture_on_commit_callbacks):
    manaus = ClinicFactory(time_zone="America/Manaus")
    professional = ProfessionalFactory(clinic=manaus)
    service = ServiceFactory(clinic=manaus, professionals=[professional])
    # 23:30 on the 24th in Manaus is already the 25th in UTC (and in São Paulo).
    late = datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("America/Manaus"))
    booked = AppointmentFactory(
        clinic=manaus,
        service=service,
        professional=professional,
        patient=consented_patient(manaus),
        start=late,
    )

    with (
        time_machine.travel(EVENING, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reminders.reminders_eve_send() == 1
    assert sent("lembrete_vespera").get().patient == booked.patient


@pytest.mark.django_db
def test_each_clinic_gets_its_eve_reminders_at_its_own_six_pm(
    desk, django_capture_on_commit_callbacks
):
    # The job runs every hour; at 18:00 in São Paulo it serves São Paulo's clinics, an hour
    # later (18:00 in Manaus) Manaus's.
    in_sao_paulo = appointment(desk, datetime(2026, 11, 24, 9, 0, tzinfo=SAO_PAULO))
    manaus = ClinicFactory(time_zone="America/Manaus")
    professional = ProfessionalFactory(clinic=manaus)
    in_manaus = AppointmentFactory(
        clinic=manaus,
        service=ServiceFactory(clinic=manaus, professionals=[professional]),
        professional=professional,
        patient=consented_patient(manaus),
        start=datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("America/Manaus")),
    )

    def hourly_run(at) -> set:
        with (
            time_machine.travel(at, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            before = set(sent("lembrete_vespera").values_list("patient", flat=True))
            reminders_eve_task(local_hours=[18])
            return set(sent("lembrete_vespera").values_list("patient", flat=True)) - before

    assert hourly_run(EVENING - timedelta(hours=1)) == set()
    assert hourly_run(EVENING) == {in_sao_paulo.patient_id}
    assert hourly_run(EVENING + timedelta(hours=1)) == {in_manaus.patient_id}
    assert hourly_run(EVENING + timedelta(hours=2)) == set()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_reminder_runs_send_each_reminder_once(desk):
    booked = [appointment(desk, EVENING + timedelta(hours=30, minutes=30 * i)) for i in range(12)]
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait(timeout=10)
            with time_machine.travel(EVENING, tick=False):
                reminders.reminders_48h_send()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sent("lembrete_consulta").count() == len(booked)
    # One provider call per reminder: the loser of each race found the message and left.
    assert ConsoleRecord.objects.filter(operation="send").count() == len(booked)
    assert set(sent("lembrete_consulta").values_list("status", flat=True)) == {"sent"}


# --- No-shows -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_no_show_detection_marks_past_appointments_without_arrival_once(
    desk, django_capture_on_commit_callbacks
):
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    missed = appointment(desk, now - timedelta(hours=2))
    within_grace = appointment(desk, now - timedelta(minutes=45))  # ended 15 min ago
    arrived = appointment(
        desk,
        now - timedelta(hours=3),
        AppointmentStatus.ARRIVED,
        arrived_at=now - timedelta(hours=3),
    )

    with (
        time_machine.travel(now, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reminders.no_shows_detect() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert reminders.no_shows_detect() == 0

    missed.refresh_from_db()
    missed.patient.refresh_from_db()
    within_grace.refresh_from_db()
    arrived.refresh_from_db()
    assert missed.status == AppointmentStatus.NO_SHOW
    assert missed.patient.no_show_count == 1
    assert within_grace.status == AppointmentStatus.SCHEDULED
    assert arrived.status == AppointmentStatus.ARRIVED
    [follow_up] = sent("falta_consulta")
    assert follow_up.patient == missed.patient
    assert "Sentimos sua falta" in follow_up.body
    assert follow_up.idempotency_key == f"no-show:{missed.pk}"


# --- Event reactions ------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_booking_sends_its_confirmation_once(desk, django_capture_on_commit_callbacks):
    from scheduling import services

    patient = consented_patient(desk["clinic"])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.appointment_book(
            clinic=desk["clinic"],
            patient=patient,
            professional=desk["professional"],
            service=desk["service"],
            start=start,
        )
    [message] = sent("confirmacao")
    assert message.patient == patient
    assert message.idempotency_key == f"confirmacao:{booked.pk}"
    reminders.booking_confirmation_send(appointment_id=booked.pk)  # a redelivered event
    assert sent("confirmacao").count() == 1


# --- Birthdays ------------------------------------------------------------------------------
def opted_in_patient(clinic, **fields):
    """A patient who also opted in to marketing on WhatsApp (birthday greetings)."""
    patient = consented_patient(clinic, **fields)
    clinic_services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.MARKETING,
        status=ConsentStatus.GRANTED,
    )
    return patient


@pytest.mark.django_db
def test_birthdays_greet_only_patients_who_opted_in_once_a_year(
    desk, django_capture_on_commit_callbacks
):
    clinic = desk["clinic"]
    opted_in = opted_in_patient(clinic, birth_date=date(1990, 11, 23))
    consented_patient(clinic, birth_date=date(1985, 11, 23))  # service messages only
    consented_patient(clinic, birth_date=date(1985, 11, 24))

    morning = datetime(2026, 11, 23, 8, 0, tzinfo=SAO_PAULO)
    with (
        time_machine.travel(morning, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert birthdays_greet() == 1
        assert birthdays_greet() == 0

    [greeting] = sent("aniversario")
    assert greeting.patient == opted_in
    assert greeting.status == "sent"
    assert greeting.purpose == ConsentPurpose.MARKETING


@pytest.mark.django_db
def test_birthdays_are_greeted_at_eight_in_each_clinics_own_morning(
    django_capture_on_commit_callbacks,
):
    manaus = ClinicFactory(time_zone="America/Manaus")
    patient = opted_in_patient(manaus, birth_date=date(1990, 11, 23))
    eight_in_sao_paulo = datetime(2026, 11, 23, 8, 0, tzinfo=SAO_PAULO)

    for at, greeted in ((eight_in_sao_paulo, 0), (eight_in_sao_paulo + timedelta(hours=1), 1)):
        with (
            time_machine.travel(at, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert birthdays_greet_task(local_hours=[8]) == greeted
    assert sent("aniversario").get().patient == patient
