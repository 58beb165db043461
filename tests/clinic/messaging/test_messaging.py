"""Sending messages to patients: the channel by preference and consent, provider chains
with fallback across channels, one message per idempotency key, receipts that only move
forward, and templates a clinic can reword."""

import re
from datetime import timedelta

import pytest
import responses
from django.utils import timezone, translation

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MessageStatus
from clinic.messaging import services as messaging
from clinic.messaging.models import MessageTemplate, OutboundMessage
from integrations import breakers
from integrations.models import ConsoleRecord, ProviderAccount
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db

META_URL = re.compile(r"https://graph\.facebook\.com/v\d+\.0/[^/]+/messages")
META_OK = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "5511981234567", "wa_id": "5511981234567"}],
    "messages": [{"id": "wamid.HBgNNTUxMTk4MTIzNDU2NxUCABEYEjQ2"}],
}


@pytest.fixture
def english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_breakers():
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


def consent(patient, channel, purpose=ConsentPurpose.UTILITY, status=ConsentStatus.GRANTED):
    return services.consent_record(patient=patient, channel=channel, purpose=purpose, status=status)


@pytest.fixture
def maria(clinic_a):
    patient = PatientFactory(
        clinic=clinic_a,
        full_name="Maria José Araújo",
        phone="+5511981234567",
        email="maria@example.com",
        preferred_channel=ContactChannel.WHATSAPP,
    )
    for channel in (ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL):
        consent(patient, channel)
    return patient


@pytest.fixture
def send(clinic_a, django_capture_on_commit_callbacks):
    """message_send, committed: the delivery task runs (eagerly) as it would after commit."""

    def run(patient, template="mensagem_livre", key="k1", **kwargs):
        kwargs.setdefault("context", {"text": "Olá"})
        with django_capture_on_commit_callbacks(execute=True):
            message = messaging.message_send(
                clinic=patient.clinic,
                patient=patient,
                template=template,
                idempotency_key=key,
                **kwargs,
            )
        message.refresh_from_db()
        return message

    return run


def console_sends(kind):
    return ConsoleRecord.objects.filter(kind=kind, operation="send")


def whatsapp_accounts(clinic):
    evolution = ProviderAccount.objects.create(
        clinic=clinic,
        kind="whatsapp",
        provider="evolution",
        priority=1,
        settings={"base_url": "https://evo.clinica.example", "instance": "clinica"},
        credentials={"apikey": "evo-key-123456"},
    )
    meta = ProviderAccount.objects.create(
        clinic=clinic,
        kind="whatsapp",
        provider="meta_cloud",
        priority=2,
        settings={"phone_number_id": "106540352242922"},
        credentials={
            "access_token": "meta-token-123456",
            "app_secret": "s3cret-app",
            "verify_token": "verify-me",
        },
    )
    return evolution, meta


def open_breaker(account):
    breakers.breaker_for(
        clinic_id=account.clinic_id, account_key=breakers.account_key(account)
    ).open()


# --- Channel and consent --------------------------------------------------------------------
def test_it_sends_on_the_preferred_channel_and_records_who_served(maria, send):
    message = send(maria)

    assert message.status == MessageStatus.SENT
    assert message.channel == ContactChannel.WHATSAPP
    assert message.provider == "console"
    assert message.to_address == "+5511981234567"
    [record] = console_sends("whatsapp")
    assert record.payload["text"] == "Olá"
    assert message.provider_message_id == record.response["provider_message_id"]


def test_the_same_idempotency_key_sends_once(maria, send):
    first = send(maria, key="reminder-48h:1")
    second = send(maria, key="reminder-48h:1", context={"text": "outro texto"})

    assert second.pk == first.pk
    assert OutboundMessage.objects.count() == 1
    assert console_sends("whatsapp").count() == 1


@responses.activate
def test_with_evolutions_breaker_open_meta_serves_without_calling_evolution(clinic_a, maria, send):
    evolution, _meta = whatsapp_accounts(clinic_a)
    open_breaker(evolution)
    responses.add(responses.POST, META_URL, json=META_OK, status=200)

    message = send(maria)

    assert message.status == MessageStatus.SENT
    assert message.channel == ContactChannel.WHATSAPP
    assert message.provider == "meta_cloud"
    assert message.provider_message_id == META_OK["messages"][0]["id"]
    assert [c.request.url for c in responses.calls if "evo." in c.request.url] == []
    outcomes = [(a["provider"], a["outcome"]) for a in message.attempts]
    assert outcomes == [("evolution", "circuit_open"), ("meta_cloud", "succeeded")]


def test_with_every_whatsapp_provider_down_sms_serves(clinic_a, maria, send):
    for account in whatsapp_accounts(clinic_a):
        open_breaker(account)

    message = send(maria)

    assert message.channel == ContactChannel.SMS
    assert message.status == MessageStatus.SENT
    assert console_sends("sms").count() == 1
    assert [a["channel"] for a in message.attempts] == ["whatsapp", "whatsapp", "sms"]


def test_without_sms_consent_the_fallback_skips_to_email(clinic_a, maria, send):
    consent(maria, ContactChannel.SMS, status=ConsentStatus.REVOKED)
    for account in whatsapp_accounts(clinic_a):
        open_breaker(account)

    message = send(maria, template="lembrete_consulta", context={"date": "24/11/2026"})

    assert message.channel == ContactChannel.EMAIL
    assert message.to_address == "maria@example.com"
    assert console_sends("sms").count() == 0
    [mail] = console_sends("email")
    assert mail.payload["subject"].startswith("Lembrete: sua consulta em 24/11/2026")
    assert "Maria" in mail.payload["html"]
    skipped = [a for a in message.attempts if a["outcome"] == "skipped"]
    assert [a["channel"] for a in skipped] == ["sms"]


def test_with_nothing_consented_nothing_is_sent_and_the_reason_is_kept(clinic_a, send):
    patient = PatientFactory(clinic=clinic_a, email="joao@example.com")

    message = send(patient)

    assert message.status == MessageStatus.NOT_SENT
    assert ConsoleRecord.objects.count() == 0
    assert "WhatsApp" in message.error and "SMS" in message.error and "E-mail" in message.error
    assert "consent" in message.error


def test_marketing_without_an_opt_in_for_the_channel_is_never_sent(maria, send):
    message = send(maria, template="aniversario", purpose=ConsentPurpose.UTILITY)

    assert message.purpose == ConsentPurpose.MARKETING  # a marketing template stays marketing
    assert message.status == MessageStatus.NOT_SENT
    assert ConsoleRecord.objects.count() == 0


def test_marketing_goes_only_on_the_channel_the_patient_opted_in(maria, send):
    consent(maria, ContactChannel.EMAIL, purpose=ConsentPurpose.MARKETING)

    message = send(maria, template="aniversario")

    assert message.channel == ContactChannel.EMAIL
    assert console_sends("whatsapp").count() == 0


def test_a_revoked_channel_receives_nothing_more(maria, send):
    consent(maria, ContactChannel.WHATSAPP, status=ConsentStatus.REVOKED)

    message = send(maria)

    assert message.channel == ContactChannel.SMS
    assert console_sends("whatsapp").count() == 0


def test_a_reply_goes_only_on_the_channel_the_patient_wrote_on(maria, send):
    consent(maria, ContactChannel.SMS, status=ConsentStatus.REVOKED)

    message = send(maria, channel=ContactChannel.SMS)

    assert message.status == MessageStatus.NOT_SENT
    assert console_sends("whatsapp").count() == 0


@responses.activate
def test_when_every_provider_fails_transiently_the_message_waits_and_is_retried(
    clinic_a, maria, send, django_capture_on_commit_callbacks
):
    ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        settings={"phone_number_id": "106540352242922"},
        credentials={"access_token": "meta-token-123456"},
    )
    for channel in (ContactChannel.SMS, ContactChannel.EMAIL):
        consent(maria, channel, status=ConsentStatus.REVOKED)
    responses.add(responses.POST, META_URL, json={"error": {"code": 1}}, status=503)

    message = send(maria)

    assert message.status == MessageStatus.QUEUED
    assert message.next_attempt_at > timezone.now()
    assert message.attempt_count == 1

    responses.replace(responses.POST, META_URL, json=META_OK, status=200)
    later = message.next_attempt_at + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert messaging.messages_retry_due(now=later) == 1
    messaging.message_deliver(message_id=message.pk, now=later)
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider == "meta_cloud"


@responses.activate
def test_a_permanent_refusal_fails_the_message_with_the_providers_reason(clinic_a, maria, send):
    ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        settings={"phone_number_id": "106540352242922"},
        credentials={"access_token": "meta-token-123456"},
    )
    for channel in (ContactChannel.SMS, ContactChannel.EMAIL):
        consent(maria, channel, status=ConsentStatus.REVOKED)
    error = {
        "error": {
            "message": "(#131026) Message undeliverable",
            "type": "OAuthException",
            "code": 131026,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    responses.add(responses.POST, META_URL, json=error, status=400)

    message = send(maria)

    assert message.status == MessageStatus.FAILED
    assert "131026" in message.error


# --- Receipts -------------------------------------------------------------------------------
def apply(message, status):
    return messaging.message_status_apply(
        clinic=message.clinic_id,
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        status=status,
    )


def test_receipts_move_a_message_forward_and_never_back(maria, send):
    message = send(maria)

    apply(message, "read")
    apply(message, "delivered")  # late
    apply(message, "failed")  # too late to matter
    message.refresh_from_db()

    assert message.status == MessageStatus.READ
    assert message.read_at is not None
    assert message.delivered_at is not None  # the late receipt still fills its time
    assert message.failed_at is None


def test_a_failure_receipt_before_delivery_fails_the_message(maria, send):
    message = send(maria)

    apply(message, "failed")
    message.refresh_from_db()

    assert message.status == MessageStatus.FAILED


def test_a_receipt_of_another_clinic_changes_nothing(maria, send, clinic_b):
    message = send(maria)

    messaging.message_status_apply(
        clinic=clinic_b,
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        status="read",
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


# --- Templates ------------------------------------------------------------------------------
def test_a_clinics_own_text_replaces_the_default(clinic_a, maria, send):
    MessageTemplate.objects.create(
        clinic=clinic_a,
        name="lembrete_consulta",
        body="Oi {{ first_name }}, até {{ date }}! ({{ clinic }})",
    )

    message = send(maria, template="lembrete_consulta", context={"date": "24/11"})

    assert message.body == "Oi Maria, até 24/11! (Clínica Alfa)"


def test_meta_gets_the_approved_template_with_its_parameters_in_order(clinic_a, maria, send):
    message = send(
        maria,
        template="lembrete_consulta",
        context={"date": "24/11/2026", "time": "14:30", "professional": "Dra. Ana"},
    )

    assert message.meta_template_name == "lembrete_consulta_v2"
    assert message.template_variables[:4] == ["Maria", "24/11/2026", "14:30", "Dra. Ana"]
    [record] = console_sends("whatsapp")
    assert record.payload["template"] == "lembrete_consulta_v2"


@pytest.mark.usefixtures("english")
def test_a_template_naming_an_unknown_variable_is_refused():
    from clinic.messaging.catalogue import CATALOGUE, template_errors

    spec = CATALOGUE["lembrete_consulta"]
    assert template_errors("Olá {{ first_name }}", allowed=spec.allowed_variables) == []
    [error] = template_errors("Olá {{ cpf }}", allowed=spec.allowed_variables)
    assert "{{ cpf }}" in error
    [error] = template_errors("{% if %}", allowed=spec.allowed_variables)
    assert "template error" in error


def test_every_default_text_uses_only_its_own_variables():
    from clinic.messaging.catalogue import CATALOGUE, template_errors

    for spec in CATALOGUE.values():
        assert template_errors(spec.body, allowed=spec.allowed_variables) == [], spec.name
        assert template_errors(spec.subject, allowed=spec.allowed_variables) == [], spec.name


# --- Matching numbers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stored", "incoming"),
    [
        ("+5511981234567", "+5511981234567"),
        ("+5511981234567", "+551181234567"),  # WhatsApp without the 9th digit
        ("+551133334444", "+551133334444"),  # a landline has no 9th digit to add
    ],
)
def test_patients_are_found_by_phone_with_or_without_the_ninth_digit(clinic_a, stored, incoming):
    patient = PatientFactory(clinic=clinic_a, phone=stored)

    assert messaging.patient_match(clinic=clinic_a, channel="whatsapp", address=incoming) == patient


def test_a_number_of_another_clinic_matches_no_patient(clinic_a, clinic_b):
    PatientFactory(clinic=clinic_b, phone="+5511981234567")

    assert (
        messaging.patient_match(clinic=clinic_a, channel="whatsapp", address="+5511981234567")
        is None
    )


# --- Which account served or failed (issue 17) ----------------------------------------------
def two_meta_numbers(clinic):
    def number(label, phone_number_id, priority):
        return ProviderAccount.objects.create(
            clinic=clinic,
            kind="whatsapp",
            provider="meta_cloud",
            label=label,
            priority=priority,
            settings={"phone_number_id": phone_number_id},
            credentials={
                "access_token": "meta-token-123456",
                "app_secret": "s",
                "verify_token": "v",
            },
        )

    return number("Número antigo", "111", 1), number("Número novo", "222", 2)


@responses.activate
def test_attempts_name_the_account_that_failed_and_the_one_that_served(clinic_a, maria, send):
    old, new = two_meta_numbers(clinic_a)
    open_breaker(old)
    responses.add(responses.POST, META_URL, json=META_OK, status=200)

    message = send(maria)

    named = [(a["provider"], a["account_id"], a["account"], a["outcome"]) for a in message.attempts]
    assert named == [
        ("meta_cloud", old.pk, "Número antigo", "circuit_open"),
        ("meta_cloud", new.pk, "Número novo", "succeeded"),
    ]


def test_when_every_account_fails_each_failure_names_its_account(clinic_a, maria, send):
    old, new = two_meta_numbers(clinic_a)
    open_breaker(old)
    open_breaker(new)

    message = send(maria)

    whatsapp = [a for a in message.attempts if a["channel"] == "whatsapp"]
    assert [(a["account_id"], a["account"]) for a in whatsapp] == [
        (old.pk, "Número antigo"),
        (new.pk, "Número novo"),
    ]
    [sms] = [a for a in message.attempts if a["channel"] == "sms"]
    assert (sms["provider"], sms["account_id"]) == ("console", None)  # the default account
