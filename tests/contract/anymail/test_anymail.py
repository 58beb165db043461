"""E-mail through anymail: the requests two real ESPs' backends make (Postmark, Mailgun),
replayed against recorded answers; a chain of ESPs; the tracking-event mapping."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses
from anymail.signals import AnymailTrackingEvent
from django.utils import translation

from integrations import breakers, registry
from integrations.base import (
    ChainFailed,
    MessageRequest,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
)
from integrations.chains import Outcome, run_chain
from integrations.email.anymail_esp import status_update_from_tracking
from integrations.models import ExternalCall, ProviderAccount

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent
POSTMARK_URL = "https://api.postmarkapp.com/email"
MAILGUN_URL = "https://api.mailgun.net/v3/mg.clinica.example/messages"
POSTMARK_TOKEN = "postmark-server-token-1f4e"
MAILGUN_KEY = "mailgun-api-key-9b7c2a"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def fresh_breakers(settings):
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


@pytest.fixture
def postmark_account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="email",
        provider="anymail",
        priority=1,
        settings={"esp": "postmark", "from_email": "Clínica Alfa <contato@clinica.example>"},
        credentials={"server_token": POSTMARK_TOKEN},
    )


@pytest.fixture
def mailgun_account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="email",
        provider="anymail",
        priority=2,
        settings={
            "esp": "mailgun",
            "from_email": "Clínica Alfa <contato@clinica.example>",
            "sender_domain": "mg.clinica.example",
        },
        credentials={"api_key": MAILGUN_KEY},
    )


def adapter(account):
    return registry.get("email", "anymail")(account)


def reminder(**kwargs) -> MessageRequest:
    return MessageRequest(
        to="maria@example.com",
        subject="Lembrete da sua consulta",
        text="Sua consulta é amanhã às 14h.",
        html="<p>Sua consulta é <strong>amanhã às 14h</strong>.</p>",
        **kwargs,
    )


# --- Postmark -------------------------------------------------------------------------------
@responses.activate
def test_postmark_gets_the_json_message_with_its_server_token_and_answers_the_message_id(
    postmark_account,
):
    responses.post(POSTMARK_URL, json=fixture("postmark_sent.json"))

    result = adapter(postmark_account).send(reminder(idempotency_key="reminder-42"))

    assert result.provider_message_id == "0a129aee-e1cd-480d-b08d-4f48548ff48d"
    assert result.status == "sent"
    (call,) = responses.calls
    assert call.request.headers["X-Postmark-Server-Token"] == POSTMARK_TOKEN
    body = json.loads(call.request.body)
    assert body["From"] == "Clínica Alfa <contato@clinica.example>"
    assert body["To"] == "maria@example.com"
    assert body["Subject"] == "Lembrete da sua consulta"
    assert body["TextBody"] == "Sua consulta é amanhã às 14h."
    assert body["HtmlBody"] == "<p>Sua consulta é <strong>amanhã às 14h</strong>.</p>"
    assert body["Metadata"] == {"idempotency_key": "reminder-42"}


@responses.activate
def test_every_send_writes_one_external_call(postmark_account):
    responses.post(POSTMARK_URL, json=fixture("postmark_sent.json"))

    adapter(postmark_account).send(reminder())

    (logged,) = ExternalCall.objects.all()
    assert logged.provider == "anymail"
    assert logged.operation == "send"
    assert logged.method == "POST"
    assert logged.host == "api.postmarkapp.com"
    assert logged.status_code == 200
    assert logged.succeeded
    assert logged.attempt == 1
    assert logged.account == postmark_account
    assert logged.clinic_id == postmark_account.clinic_id
    assert logged.correlation_id


@responses.activate
def test_a_refused_server_token_is_permanent_and_logged_without_the_token(postmark_account):
    responses.post(POSTMARK_URL, json=fixture("postmark_invalid_server_token.json"), status=401)

    with pytest.raises(PermanentProviderError) as caught:
        adapter(postmark_account).send(reminder())

    assert caught.value.http_status == 401
    assert POSTMARK_TOKEN not in str(caught.value)
    (logged,) = ExternalCall.objects.all()
    assert not logged.succeeded
    assert logged.status_code == 401
    assert logged.error_class == "AnymailRequestsAPIError"
    assert POSTMARK_TOKEN not in logged.error_message


@responses.activate
def test_an_inactive_recipient_is_refused_for_good(postmark_account):
    responses.post(POSTMARK_URL, json=fixture("postmark_inactive_recipient.json"), status=422)

    with pytest.raises(PermanentProviderError, match="recipient refused"):
        adapter(postmark_account).send(reminder())


@responses.activate
@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(postmark_account, status):
    responses.post(POSTMARK_URL, json={"ErrorCode": 0, "Message": "busy"}, status=status)

    with pytest.raises(TransientProviderError) as caught:
        adapter(postmark_account).send(reminder())
    assert caught.value.http_status == status


@responses.activate
def test_a_connection_failure_is_transient(postmark_account):
    responses.post(POSTMARK_URL, body=requests.ConnectionError("connection refused"))

    with pytest.raises(TransientProviderError):
        adapter(postmark_account).send(reminder())
    (logged,) = ExternalCall.objects.all()
    assert logged.status_code is None
    assert not logged.succeeded


# --- Mailgun --------------------------------------------------------------------------------
@responses.activate
def test_mailgun_gets_the_form_at_the_sending_domain_with_basic_auth(mailgun_account):
    responses.post(MAILGUN_URL, json=fixture("mailgun_queued.json"))

    result = adapter(mailgun_account).send(reminder(idempotency_key="reminder-42"))

    assert result.provider_message_id == "<20240520120000.1.5A1E2B9C8D47E6A0@mg.clinica.example>"
    assert result.status == "queued"
    (call,) = responses.calls
    assert call.request.headers["Authorization"].startswith("Basic ")
    # No attachments: anymail posts a plain form.
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(call.request.body)
    assert form["from"] == ["Clínica Alfa <contato@clinica.example>"]
    assert form["to"] == ["maria@example.com"]
    assert form["subject"] == ["Lembrete da sua consulta"]
    assert form["text"] == ["Sua consulta é amanhã às 14h."]
    assert form["html"] == ["<p>Sua consulta é <strong>amanhã às 14h</strong>.</p>"]
    assert form["v:idempotency_key"] == ["reminder-42"]
    assert ExternalCall.objects.get().host == "api.mailgun.net"


@responses.activate
def test_a_mailgun_403_is_permanent(mailgun_account):
    responses.post(MAILGUN_URL, json=fixture("mailgun_forbidden.json"), status=403)

    with pytest.raises(PermanentProviderError) as caught:
        adapter(mailgun_account).send(reminder())
    assert caught.value.http_status == 403
    assert MAILGUN_KEY not in str(caught.value)


# --- Chain ----------------------------------------------------------------------------------
@responses.activate
def test_the_chain_falls_back_to_the_second_esp_when_the_first_answers_500(
    clinic_a, postmark_account, mailgun_account
):
    responses.post(POSTMARK_URL, json={"ErrorCode": 0, "Message": "boom"}, status=500)
    responses.post(MAILGUN_URL, json=fixture("mailgun_queued.json"))

    result = run_chain(clinic_a, "email", "send", reminder())

    assert result.account == mailgun_account
    assert result.value.provider_message_id.endswith("@mg.clinica.example>")
    assert result.tried == [("anymail", Outcome.FAILED), ("anymail", Outcome.SUCCEEDED)]
    calls = ExternalCall.objects.order_by("pk")
    assert [(c.host, c.status_code, c.succeeded) for c in calls] == [
        ("api.postmarkapp.com", 500, False),
        ("api.mailgun.net", 200, True),
    ]


@responses.activate
def test_the_chain_fails_when_every_esp_fails(clinic_a, postmark_account, mailgun_account):
    responses.post(POSTMARK_URL, json={"ErrorCode": 0, "Message": "boom"}, status=500)
    responses.post(MAILGUN_URL, json=fixture("mailgun_forbidden.json"), status=403)

    with pytest.raises(ChainFailed) as caught:
        run_chain(clinic_a, "email", "send", reminder())

    assert [e.permanent for _name, e in caught.value.errors] == [False, True]
    assert not caught.value.permanent


# --- Configuration and health ---------------------------------------------------------------
def test_an_unknown_esp_is_a_permanent_configuration_error(postmark_account):
    postmark_account.settings = {"esp": "carrier_pigeon"}
    with pytest.raises(PermanentProviderError, match="unknown esp"):
        adapter(postmark_account).send(reminder())


def test_missing_credentials_are_a_permanent_configuration_error(postmark_account):
    postmark_account.credentials = {}
    with pytest.raises(PermanentProviderError, match="misconfigured"):
        adapter(postmark_account).send(reminder())


def test_health_says_the_backend_is_configured_but_not_probed(postmark_account):
    with translation.override("en"):
        result = adapter(postmark_account).health()

    assert result.ok
    assert "not probed" in result.detail


def test_health_reports_a_misconfigured_backend_without_raising(postmark_account):
    postmark_account.credentials = {}

    result = adapter(postmark_account).health()

    assert not result.ok
    assert "server_token" in result.detail.lower()


# --- Tracking -------------------------------------------------------------------------------
AT = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


def tracking(event_type: str, **kwargs) -> AnymailTrackingEvent:
    return AnymailTrackingEvent(
        event_type=event_type,
        timestamp=AT,
        message_id="0a129aee-e1cd-480d-b08d-4f48548ff48d",
        recipient="maria@example.com",
        **kwargs,
    )


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("queued", "queued"),
        ("deferred", "queued"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("opened", "read"),
        ("clicked", "read"),
        ("bounced", "failed"),
        ("rejected", "failed"),
        ("failed", "failed"),
        ("complained", "failed"),
    ],
)
def test_tracking_events_map_to_message_statuses(event_type, status):
    update = status_update_from_tracking(tracking(event_type))

    assert update == MessageStatusUpdate(
        provider_message_id="0a129aee-e1cd-480d-b08d-4f48548ff48d",
        status=status,
        at=AT,
        error=update.error,
    )


def test_a_bounce_carries_the_esps_description():
    update = status_update_from_tracking(
        tracking("bounced", description="Mailbox does not exist", reject_reason="bounced")
    )
    assert update.error == "Mailbox does not exist"


def test_a_rejection_without_description_carries_the_reject_reason():
    update = status_update_from_tracking(tracking("rejected", reject_reason="blocked"))
    assert update.error == "blocked"


@pytest.mark.parametrize("event_type", ["unsubscribed", "subscribed", "autoresponded", "unknown"])
def test_events_that_say_nothing_about_delivery_give_no_update(event_type):
    assert status_update_from_tracking(tracking(event_type)) is None


def test_an_event_without_a_message_id_gives_no_update():
    event = AnymailTrackingEvent(event_type="delivered", timestamp=AT, message_id=None)
    assert status_update_from_tracking(event) is None
