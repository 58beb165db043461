"""Patients answer reminders: "1" confirms, "2" gets a link to reschedule, "3" cancels within
the policy (and the freed slot goes to the waitlist), "SAIR" opts out; anything else waits
for reception. Messages arrive through the provider webhook, as in production."""

import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from clinic import services as clinic_services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, ReplyAction
from clinic.messaging.models import OutboundMessage, ReceivedMessage
from clinic.messaging.services import message_send
from clinic.models import Consent
from clinic.selectors import consent_is_granted
from integrations.models import ConsoleRecord, ProviderAccount
from scheduling import services
from scheduling.choices import AppointmentStatus, Channel
from scheduling.models import Appointment, WaitlistOffer
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import ServiceFactory

pytestmark = pytest.mark.django_db

PHONE = "+5511981234567"


def consent_all(patient):
    for channel in (ContactChannel.WHATSAPP, ContactChannel.SMS):
        clinic_services.consent_record(
            patient=patient,
            channel=channel,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )


@pytest.fixture
def whatsapp(clinic_a):
    """The clinic's WhatsApp: the console provider, whose webhook plays the patient."""
    return ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="console")


@pytest.fixture
def agenda(clinic_a, django_capture_on_commit_callbacks):
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Ana Souza")
    service = ServiceFactory(clinic=clinic_a, name="Fisioterapia", professionals=[professional])
    patient = PatientFactory(clinic=clinic_a, full_name="Maria José Araújo", phone=PHONE)
    consent_all(patient)
    return {
        "clinic": clinic_a,
        "professional": professional,
        "service": service,
        "patient": patient,
        "commit": django_capture_on_commit_callbacks,
    }


def book(agenda, *, start, patient=None):
    """Book and commit (the booking confirmation goes out as it would)."""
    with agenda["commit"](execute=True):
        return services.appointment_book(
            clinic=agenda["clinic"],
            patient=patient or agenda["patient"],
            professional=agenda["professional"],
            service=agenda["service"],
            start=start,
        )


def in_days(days: int):
    return (timezone.now() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def reply(client, whatsapp, django_capture_on_commit_callbacks):
    """The patient writes ``text`` on WhatsApp; everything after commit runs."""
    counter = iter(range(1, 1000))

    def send(text, *, sender=PHONE, message_id=None):
        body = {
            "id": message_id or f"wamid.{next(counter)}",
            "from": sender,
            "to": "+551130000000",
            "text": text,
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/webhooks/console/{whatsapp.webhook_token}/",
                data=json.dumps(body),
                content_type="application/json",
            )
        assert response.status_code == 200
        return ReceivedMessage.objects.order_by("-pk").first()

    return send


def answers(patient):
    return list(
        OutboundMessage.objects.filter(patient=patient, in_reply_to__isnull=False).order_by("pk")
    )


def test_one_confirms_the_next_appointment_via_whatsapp_and_says_thanks(agenda, reply):
    appointment = book(agenda, start=in_days(3))

    received = reply("1")

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert appointment.confirmed_via == Channel.WHATSAPP
    assert received.patient == agenda["patient"]
    assert received.action == ReplyAction.CONFIRMED
    assert received.needs_reply is False
    [answer] = answers(agenda["patient"])
    assert answer.template == "resposta_confirmada"
    assert answer.channel == ContactChannel.WHATSAPP
    assert "confirmada" in answer.body


@pytest.mark.parametrize("text", ["sim", "Sim!", "CONFIRMO", "confirmo "])
def test_the_words_for_yes_confirm_too(agenda, reply, text):
    appointment = book(agenda, start=in_days(3))

    reply(text)

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED


def test_a_reply_from_the_number_without_the_ninth_digit_is_the_same_patient(agenda, reply):
    appointment = book(agenda, start=in_days(3))

    reply("1", sender="+551181234567")

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED


def test_the_same_webhook_delivered_twice_acts_once(agenda, reply):
    book(agenda, start=in_days(3))

    reply("1", message_id="wamid.same")
    reply("1", message_id="wamid.same")

    assert ReceivedMessage.objects.count() == 1
    assert len(answers(agenda["patient"])) == 1


def test_three_cancels_within_policy_frees_the_slot_and_offers_it_to_the_waitlist(agenda, reply):
    appointment = book(agenda, start=in_days(3))
    waiting = PatientFactory(clinic=agenda["clinic"], full_name="João Espera")
    consent_all(waiting)
    services.waitlist_add(
        clinic=agenda["clinic"],
        patient=waiting,
        service=agenda["service"],
        earliest_date=date.today(),
        latest_date=date.today() + timedelta(days=30),
    )

    received = reply("3")

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_via == Channel.WHATSAPP
    assert received.action == ReplyAction.CANCELLED
    assert [a.template for a in answers(agenda["patient"])] == ["resposta_cancelada"]
    # The freed slot is bookable again and was offered to the waitlist with a claim link.
    [offer] = WaitlistOffer.objects.all()
    assert offer.start == appointment.start
    [offered] = OutboundMessage.objects.filter(patient=waiting, template="vaga_disponivel")
    assert f"/agenda/offer/{offer.token}/" in offered.body
    assert offered.channel == ContactChannel.WHATSAPP
    book(agenda, start=appointment.start, patient=waiting)


def test_three_too_close_to_the_appointment_explains_and_alerts_reception(agenda, reply):
    appointment = book(agenda, start=timezone.now() + timedelta(hours=5))

    received = reply("3")

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert received.action == ReplyAction.CANCEL_REFUSED
    assert received.is_unanswered  # in reception's inbox
    [answer] = answers(agenda["patient"])
    assert answer.template == "resposta_fora_prazo"
    assert "24 horas" in answer.body


def test_two_sends_a_link_to_choose_another_time(agenda, reply):
    appointment = book(agenda, start=in_days(3))

    received = reply("2")

    assert received.action == ReplyAction.RESCHEDULE_LINK
    [answer] = answers(agenda["patient"])
    assert "/agenda/l/reschedule/" in answer.body
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED


def test_a_reply_with_no_upcoming_appointment_gets_a_polite_answer(agenda, reply):
    received = reply("1")

    assert received.action == ReplyAction.NO_APPOINTMENT
    assert received.is_unanswered is False
    [answer] = answers(agenda["patient"])
    assert answer.template == "resposta_sem_consulta"
    assert "Não encontramos consulta futura" in answer.body


def test_free_text_is_stored_for_reception_and_acts_on_nothing(agenda, reply):
    appointment = book(agenda, start=in_days(3))

    received = reply("Posso levar meu filho junto?")

    assert received.action == ReplyAction.NONE
    assert received.is_unanswered
    assert answers(agenda["patient"]) == []
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED


def test_an_unknown_number_is_kept_for_reception(agenda, reply):
    received = reply("Quero marcar uma consulta", sender="+5521999990000")

    assert received.patient is None
    assert received.action == ReplyAction.UNKNOWN_SENDER
    assert received.is_unanswered
    assert OutboundMessage.objects.count() == 0


def test_sair_opts_out_of_that_channel_and_further_messages_go_elsewhere(
    agenda, reply, django_capture_on_commit_callbacks
):
    patient = agenda["patient"]

    received = reply("SAIR")

    assert received.action == ReplyAction.OPTED_OUT
    assert not consent_is_granted(
        patient=patient, channel=ContactChannel.WHATSAPP, purpose=ConsentPurpose.UTILITY
    )
    [revoked] = Consent.objects.filter(
        patient=patient, channel="whatsapp", purpose="marketing", status="revoked"
    )
    assert revoked.source == "whatsapp"
    assert OutboundMessage.objects.filter(patient=patient).count() == 0  # no answer either

    before = ConsoleRecord.objects.filter(kind="whatsapp").count()
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            clinic=agenda["clinic"],
            patient=patient,
            template="mensagem_livre",
            context={"text": "Olá"},
            idempotency_key="after-opt-out",
        )
    message.refresh_from_db()
    assert message.channel == ContactChannel.SMS
    assert ConsoleRecord.objects.filter(kind="whatsapp").count() == before


def test_a_reply_acts_on_the_next_appointment_only(agenda, reply):
    first = book(agenda, start=in_days(3))
    second = book(agenda, start=in_days(10))

    reply("1")

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == AppointmentStatus.CONFIRMED
    assert second.status == AppointmentStatus.SCHEDULED


def test_a_patients_reply_never_touches_another_clinics_appointment(agenda, reply, clinic_b):
    other = PatientFactory(clinic=clinic_b, phone=PHONE)
    professional = ProfessionalFactory(clinic=clinic_b)
    service = ServiceFactory(clinic=clinic_b, professionals=[professional])
    theirs = services.appointment_book(
        clinic=clinic_b, patient=other, professional=professional, service=service, start=in_days(2)
    )

    reply("3")

    theirs.refresh_from_db()
    assert theirs.status == AppointmentStatus.SCHEDULED
    assert Appointment.objects.filter(clinic=clinic_b, status="cancelled").count() == 0
