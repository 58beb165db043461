"""Twilio SMS: the requests the SDK makes through integrations.http, replayed against
recorded answers, and Twilio's signed webhooks through the real endpoint."""

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from django.urls import reverse
from twilio.request_validator import RequestValidator

from integrations import registry
from integrations.base import (
    InboundMessage,
    MessageRequest,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookRequest,
)
from integrations.models import Event, ExternalCall, InboundWebhook, ProviderAccount

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "twilio-test-auth-token-5f2e9c"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
ACCOUNT_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}.json"
PUBLIC_URL = "https://clinica.example"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.CUIDAR_PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="sms",
        provider="twilio",
        settings={"from_number": "+15005550006"},
        credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    )


@pytest.fixture
def twilio(account):
    return registry.get("sms", "twilio")(account)


def reminder(**kwargs) -> MessageRequest:
    return MessageRequest(
        to="+5511987654321", text="Lembrete: sua consulta é amanhã às 14h.", **kwargs
    )


# --- Sending --------------------------------------------------------------------------------
@responses.activate
def test_it_posts_the_message_form_encoded_with_basic_auth_and_reads_the_sid(twilio, account):
    responses.post(MESSAGES_URL, json=fixture("message_created.json"), status=201)

    result = twilio.send(reminder())

    assert result.provider_message_id == "SM3f5a1e2b9c8d47e6a0b1c2d3e4f5a6b7"
    assert result.status == "queued"
    (call,) = responses.calls
    assert call.request.method == "POST"
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.request.headers["Authorization"].startswith("Basic ")
    form = parse_qs(call.request.body)
    assert form == {
        "To": ["+5511987654321"],
        "From": ["+15005550006"],
        "Body": ["Lembrete: sua consulta é amanhã às 14h."],
        "StatusCallback": [f"{PUBLIC_URL}/webhooks/twilio/{account.webhook_token}/status"],
    }


@responses.activate
def test_it_logs_the_send_as_an_external_call_without_secrets(twilio, account):
    responses.post(MESSAGES_URL, json=fixture("message_created.json"), status=201)

    twilio.send(reminder())

    (logged,) = ExternalCall.objects.all()
    assert (logged.provider, logged.operation, logged.host) == ("twilio", "send", "api.twilio.com")
    assert logged.account == account
    assert logged.status_code == 201
    assert logged.succeeded
    assert AUTH_TOKEN not in json.dumps(
        [logged.error_message, logged.error_class, logged.correlation_id]
    )


@responses.activate
def test_it_sends_through_the_messaging_service_when_one_is_set(twilio, account):
    account.settings = {"messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}
    account.save(update_fields=["settings"])
    responses.post(MESSAGES_URL, json=fixture("message_created.json"), status=201)

    twilio.send(reminder())

    form = parse_qs(responses.calls[0].request.body)
    assert form["MessagingServiceSid"] == ["MG0123456789abcdef0123456789abcdef"]
    assert "From" not in form


def test_it_refuses_to_send_without_a_sender(twilio, account):
    account.settings = {}
    with pytest.raises(PermanentProviderError, match="from_number"):
        twilio.send(reminder())


@responses.activate
def test_it_turns_error_21211_into_a_permanent_error_with_twilios_code(twilio):
    responses.post(MESSAGES_URL, json=fixture("error_21211_invalid_to.json"), status=400)

    with pytest.raises(PermanentProviderError) as caught:
        twilio.send(reminder())

    assert caught.value.http_status == 400
    assert caught.value.detail["code"] == 21211
    assert "Twilio error 21211" in str(caught.value)
    assert "Invalid 'To' Phone Number" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_it_treats_bad_credentials_as_permanent(twilio):
    responses.post(MESSAGES_URL, json=fixture("error_20003_authenticate.json"), status=401)

    with pytest.raises(PermanentProviderError, match="20003"):
        twilio.send(reminder())


@responses.activate
def test_it_treats_too_many_requests_as_transient_and_does_not_retry_a_send(twilio):
    responses.post(MESSAGES_URL, json=fixture("error_20429_too_many_requests.json"), status=429)

    with pytest.raises(TransientProviderError) as caught:
        twilio.send(reminder())

    assert caught.value.http_status == 429
    # No idempotency key at Twilio: a second attempt could send the SMS twice.
    assert len(responses.calls) == 1


@responses.activate
def test_it_treats_a_server_error_as_transient(twilio):
    responses.post(MESSAGES_URL, body="<html>Bad gateway</html>", status=502)

    with pytest.raises(TransientProviderError):
        twilio.send(reminder())
    assert len(responses.calls) == 1


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_is_ok_when_the_account_is_active(twilio):
    responses.get(ACCOUNT_URL, json=fixture("account_active.json"))

    result = twilio.health()

    assert result.ok
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_health_reports_a_suspended_account(twilio):
    responses.get(ACCOUNT_URL, json={**fixture("account_active.json"), "status": "suspended"})

    result = twilio.health()

    assert not result.ok
    assert "suspended" in result.detail


@responses.activate
def test_health_reports_bad_credentials_without_raising(twilio):
    responses.get(ACCOUNT_URL, json=fixture("error_20003_authenticate.json"), status=401)

    result = twilio.health()

    assert not result.ok
    assert "20003" in result.detail
    assert AUTH_TOKEN not in result.detail


# --- Webhooks -------------------------------------------------------------------------------
def webhook_path(account, subpath=""):
    if subpath:
        return reverse("webhooks:receive-subpath", args=["twilio", account.webhook_token, subpath])
    return reverse("webhooks:receive", args=["twilio", account.webhook_token])


def twilio_post(client, account, form, *, subpath="", signature=None, signed_url=None):
    """POST like Twilio: form-encoded, signed over the URL it called and the form."""
    path = webhook_path(account, subpath)
    if signature is None:
        url = signed_url or f"http://testserver{path}"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return client.post(
        path,
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )


def test_it_accepts_a_signed_inbound_sms_stores_it_and_publishes_message_inbound(
    client, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio_post(client, account, fixture("inbound_sms.json"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    webhook = InboundWebhook.objects.get()
    assert webhook.account == account
    assert webhook.dedupe_key == f"twilio:{account.pk}:SM9a8b7c6d5e4f30211f0e0d0c0b0a0908"
    assert webhook.status == "processed"
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.inbound"
    assert event.clinic_id == account.clinic_id
    assert event.payload["provider_message_id"] == "SM9a8b7c6d5e4f30211f0e0d0c0b0a0908"


def test_it_accepts_the_signature_of_the_public_url_behind_a_proxy(client, account):
    path = webhook_path(account)
    response = twilio_post(
        client, account, fixture("inbound_sms.json"), signed_url=f"{PUBLIC_URL}{path}"
    )
    assert response.status_code == 200
    assert InboundWebhook.objects.count() == 1


def test_it_rejects_a_wrong_signature_with_403_and_stores_nothing(client, account):
    form = fixture("inbound_sms.json")
    forged = RequestValidator("not-the-auth-token").compute_signature(
        f"http://testserver{webhook_path(account)}", form
    )
    response = twilio_post(client, account, form, signature=forged)

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_it_rejects_a_tampered_body_with_403(client, account):
    form = fixture("inbound_sms.json")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"http://testserver{webhook_path(account)}", form
    )
    response = twilio_post(client, account, {**form, "Body": "Cancelo tudo"}, signature=signature)
    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_it_rejects_a_missing_signature_with_401_and_stores_nothing(client, account):
    response = twilio_post(client, account, fixture("inbound_sms.json"), signature="")

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_it_turns_a_status_callback_into_message_status(
    client, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio_post(client, account, fixture("status_delivered.json"), subpath="status")

    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.dedupe_key == f"twilio:{account.pk}:SM3f5a1e2b9c8d47e6a0b1c2d3e4f5a6b7:delivered"
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.status"
    assert event.payload["status"] == "delivered"
    assert event.payload["provider_message_id"] == "SM3f5a1e2b9c8d47e6a0b1c2d3e4f5a6b7"


def test_a_replayed_webhook_stores_nothing_new(client, account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = twilio_post(client, account, fixture("inbound_sms.json"))
    with django_capture_on_commit_callbacks(execute=True):
        again = twilio_post(client, account, fixture("inbound_sms.json"))

    assert first.status_code == again.status_code == 200
    assert InboundWebhook.objects.count() == 1
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 1


# --- Parsing --------------------------------------------------------------------------------
def form_request(form: dict, subpath: str = "") -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="",
        subpath=subpath,
        headers={"content-type": "application/x-www-form-urlencoded"},
        query={},
        body=urlencode(form).encode(),
        content_type="application/x-www-form-urlencoded",
    )


def test_it_parses_an_inbound_sms_with_e164_addresses(twilio):
    event = twilio.parse_webhook(form_request(fixture("inbound_sms.json")))

    (item,) = event.items
    assert isinstance(item, InboundMessage)
    assert item.provider_message_id == "SM9a8b7c6d5e4f30211f0e0d0c0b0a0908"
    assert item.from_address == "+5511987654321"
    assert item.to_address == "+5511300000000"
    assert item.text == "Confirmo a consulta de amanhã, obrigada!"


def test_it_reports_an_undelivered_message_as_failed_with_the_error_code(twilio):
    event = twilio.parse_webhook(form_request(fixture("status_undelivered.json"), "status"))

    assert event.dedupe_key == "SM3f5a1e2b9c8d47e6a0b1c2d3e4f5a6b7:undelivered"
    assert event.items == [
        MessageStatusUpdate(
            provider_message_id="SM3f5a1e2b9c8d47e6a0b1c2d3e4f5a6b7",
            status="failed",
            error="30003",
        )
    ]


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("queued", "queued"),
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_it_maps_every_twilio_status(twilio, twilio_status, ours):
    form = {**fixture("status_delivered.json"), "MessageStatus": twilio_status}
    (item,) = twilio.parse_webhook(form_request(form, "status")).items
    assert item.status == ours


def test_it_ignores_a_status_it_does_not_know(twilio):
    form = {**fixture("status_delivered.json"), "MessageStatus": "partially_delivered"}
    assert twilio.parse_webhook(form_request(form, "status")).items == []


# --- Lookup of a send whose answer was lost -------------------------------------------------
@responses.activate
def test_it_finds_a_message_whose_send_answer_was_lost_by_recipient_text_and_time(twilio):
    responses.get(MESSAGES_URL, json=fixture("messages_to_number.json"))

    found = twilio.find_sent(reminder(), since=datetime(2024, 5, 21, 11, 58, tzinfo=UTC))

    assert found.provider_message_id == "SM9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
    assert found.status == "sent"
    (call,) = responses.calls
    assert call.request.method == "GET"
    query = parse_qs(urlsplit(call.request.url).query)
    assert query["To"] == ["+5511987654321"]
    assert query["PageSize"] == ["20"]
    assert call.request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_it_finds_nothing_when_twilio_holds_only_older_or_other_messages(twilio):
    responses.get(MESSAGES_URL, json=fixture("messages_to_number.json"))

    assert twilio.find_sent(reminder(), since=datetime(2024, 5, 21, 12, 1, tzinfo=UTC)) is None
    other = MessageRequest(to="+5511987654321", text="Texto que nunca foi enviado.")
    assert twilio.find_sent(other, since=datetime(2024, 5, 20, tzinfo=UTC)) is None


@responses.activate
def test_a_lookup_that_twilio_refuses_is_a_provider_error(twilio):
    responses.get(MESSAGES_URL, json=fixture("error_20003_authenticate.json"), status=401)

    with pytest.raises(PermanentProviderError):
        twilio.find_sent(reminder(), since=datetime(2024, 5, 21, tzinfo=UTC))
