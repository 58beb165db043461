"""Z-API: the wire format of sends, probes and webhooks, replayed offline from recorded
requests and answers (``responses`` stubs the network)."""

import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from responses import matchers

from integrations import registry
from integrations.base import (
    InboundMessage,
    MessageRequest,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookMalformed,
    WebhookRequest,
)
from integrations.models import Event, ExternalCall, InboundWebhook, ProviderAccount
from tests.contract.recordings import recordings

pytestmark = pytest.mark.django_db

INSTANCE_ID = "3C67AB641C8AA0412F6A2242B4E23AC7"
INSTANCE_TOKEN = "F3B1C2D4E5A6978812AB34CD"
CLIENT_TOKEN = "Fa1b2c3d4e5f60718293a4b5c6d7e8f9S"
BASE = f"https://api.z-api.io/instances/{INSTANCE_ID}/token/{INSTANCE_TOKEN}"
SEND_URL = f"{BASE}/send-text"
STATUS_URL = f"{BASE}/status"
MESSAGE = MessageRequest(
    to="+5511987654321",
    text="Olá, Maria! Sua consulta é amanhã, 05/05, às 14h. Responda SIM para confirmar.",
)


raw, recorded = recordings(__file__)


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="zapi",
        settings={"instance_id": INSTANCE_ID},
        credentials={"instance_token": INSTANCE_TOKEN, "client_token": CLIENT_TOKEN},
    )


def zapi(account):
    return registry.get("whatsapp", "zapi")(account)


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://cuidar.example/webhooks/zapi/token/",
        subpath="",
        headers={"content-type": "application/json"},
        query={},
        body=body,
        content_type="application/json",
    )


def parse(account, name: str):
    return zapi(account).parse_webhook(webhook(raw(name)))


def post(client, account, body: bytes, *, token=None, subpath=""):
    token = token or account.webhook_token
    return client.post(
        f"/webhooks/zapi/{token}/{subpath}", data=body, content_type="application/json"
    )


# --- Sending --------------------------------------------------------------------------------
@responses.activate
def test_it_sends_a_text_with_the_client_token_and_returns_the_message_id(account):
    responses.post(
        SEND_URL,
        json=recorded("send_text_response.json"),
        match=[
            matchers.json_params_matcher(recorded("send_text_request.json")),
            matchers.header_matcher({"Client-Token": CLIENT_TOKEN}),
        ],
    )

    result = zapi(account).send(MESSAGE)

    assert result.provider_message_id == "D241A8B7C6E5F4A3B2C1"
    assert result.status == "queued"


@pytest.mark.parametrize(
    ("fixture", "says"),
    [
        ("missing_client_token_response.json", "Client-Token missing or not accepted"),
        ("wrong_client_token_response.json", "not allowed"),
    ],
)
@responses.activate
def test_a_refused_client_token_is_a_permanent_error(account, fixture, says):
    responses.post(SEND_URL, status=400, json=recorded(fixture))

    with pytest.raises(PermanentProviderError, match=says):
        zapi(account).send(MESSAGE)


@pytest.mark.parametrize("failure", [{"status": 500}, {"body": requests.ReadTimeout("slow")}])
@responses.activate
def test_a_server_error_or_timeout_is_transient_and_the_send_is_not_repeated(account, failure):
    responses.post(SEND_URL, **failure)

    with pytest.raises(TransientProviderError):
        zapi(account).send(MESSAGE)

    assert len(responses.calls) == 1  # no idempotency key at Z-API: never sent twice inline


def test_the_instance_token_in_the_url_is_a_secret_to_redact(account):
    assert INSTANCE_TOKEN in zapi(account).secrets()


@responses.activate
def test_the_instance_token_never_reaches_errors_or_the_call_log(account):
    # Nothing registered: `responses` refuses the connection with the full URL in its message.
    with pytest.raises(TransientProviderError) as caught:
        zapi(account).send(MESSAGE)

    assert INSTANCE_TOKEN not in str(caught.value)
    call = ExternalCall.objects.get()
    assert (call.provider, call.operation, call.host) == ("zapi", "send", "api.z-api.io")
    logged = json.dumps([call.error_class, call.error_message, call.host])
    assert INSTANCE_TOKEN not in logged
    assert CLIENT_TOKEN not in logged


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_is_ok_when_the_number_is_connected(account):
    responses.get(
        STATUS_URL,
        json=recorded("status_connected_response.json"),
        match=[matchers.header_matcher({"Client-Token": CLIENT_TOKEN})],
    )

    assert zapi(account).health().ok


@responses.activate
def test_health_is_not_ok_when_the_session_must_be_restored(account):
    responses.get(STATUS_URL, json=recorded("status_disconnected_response.json"))

    result = zapi(account).health()

    assert not result.ok
    assert "restore the session" in result.detail


@responses.activate
def test_health_reports_a_failed_probe_instead_of_raising(account):
    responses.get(STATUS_URL, status=400, json=recorded("missing_client_token_response.json"))

    result = zapi(account).health()

    assert not result.ok
    assert INSTANCE_TOKEN not in result.detail


# --- Webhooks through the endpoint ---------------------------------------------------------
def test_a_webhook_with_our_url_token_is_stored_once_published_and_a_replay_adds_nothing(
    client, account, django_capture_on_commit_callbacks
):
    body = raw("webhook_received_text.json")

    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, account, body, subpath="received")
    with django_capture_on_commit_callbacks(execute=True):
        replay = post(client, account, body, subpath="received")

    assert (first.status_code, replay.status_code) == (200, 200)
    stored = InboundWebhook.objects.get()
    assert stored.dedupe_key == f"zapi:{account.pk}:ReceivedCallback:3EB0A1B2C3D4E5F6A7B8"
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().event_type == "message.inbound"
    )


def test_a_status_callback_publishes_a_status_per_message_id(
    client, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, account, raw("webhook_status_read.json"), subpath="status")

    assert response.status_code == 200
    events = Event.objects.filter(event_type="message.status")
    assert sorted(e.payload["provider_message_id"] for e in events) == [
        "D241A8B7C6E5F4A3B2C1",
        "D241A8B7C6E5F4A3B2C2",
    ]
    assert {e.payload["status"] for e in events} == {"read"}


def test_a_wrong_url_token_gets_404_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_received_text.json"), token="not-our-token")

    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_body_of_another_instance_gets_403_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_received_other_instance.json"))

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_an_account_without_instance_id_refuses_every_webhook(client, account):
    account.settings = {}
    account.save(update_fields=["settings"])

    response = post(client, account, raw("webhook_received_text.json"))

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


# --- Parsing recorded webhooks --------------------------------------------------------------
def test_an_inbound_text_becomes_a_message_from_the_patient(account):
    event = parse(account, "webhook_received_text.json")

    (item,) = event.items
    assert item == InboundMessage(
        provider_message_id="3EB0A1B2C3D4E5F6A7B8",
        from_address="+5511987654321",
        to_address="+551130000000",
        text="Sim, confirmo! Até amanhã 😊",
        received_at=datetime(2026, 5, 4, 12, 3, 10, tzinfo=UTC),
        sender_name="Maria José",
    )


@pytest.mark.parametrize(
    ("fixture", "text"),
    [
        ("webhook_received_button_reply.json", "Confirmar"),
        ("webhook_received_list_reply.json", "Remarcar"),
    ],
)
def test_a_button_or_list_reply_reads_as_the_option_chosen(account, fixture, text):
    (item,) = parse(account, fixture).items

    assert item.text == text


@pytest.mark.parametrize(
    "fixture",
    [
        "webhook_received_from_me.json",
        "webhook_received_group.json",
        "webhook_status_read_by_me.json",
        "webhook_disconnected.json",
    ],
)
def test_echoes_of_our_own_messages_groups_and_other_callbacks_are_ignored(account, fixture):
    assert parse(account, fixture).items == []


@pytest.mark.parametrize(
    ("fixture", "status", "at"),
    [
        ("webhook_status_sent.json", "sent", datetime(2026, 5, 4, 12, 0, 1, tzinfo=UTC)),
        ("webhook_status_received.json", "delivered", datetime(2026, 5, 4, 12, 0, 4, tzinfo=UTC)),
        ("webhook_status_played.json", "read", datetime(2026, 5, 4, 12, 2, 50, tzinfo=UTC)),
        ("webhook_delivery.json", "sent", None),
    ],
)
def test_status_callbacks_become_statuses_of_our_message(account, fixture, status, at):
    (item,) = parse(account, fixture).items

    assert isinstance(item, MessageStatusUpdate)
    assert (item.provider_message_id, item.status) == ("D241A8B7C6E5F4A3B2C1", status)
    if at:
        assert item.at == at


def test_a_delivery_callback_with_an_error_is_a_failure_with_z_apis_words(account):
    (item,) = parse(account, "webhook_delivery_error.json").items

    assert (item.status, item.error) == ("failed", "Phone number does not exist")


def test_replays_share_a_dedupe_key_and_different_events_do_not(account):
    keys = [
        parse(account, name).dedupe_key
        for name in (
            "webhook_status_sent.json",
            "webhook_status_sent.json",
            "webhook_status_received.json",
            "webhook_delivery.json",
            "webhook_received_text.json",
        )
    ]

    assert keys[0] == keys[1] == "MessageStatusCallback:D241A8B7C6E5F4A3B2C1:SENT"
    assert len(set(keys[1:])) == 4


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"phone": "5511987654321", "text": {"message": "Oi"}}',
        b'{"type": "ReceivedCallback", "phone": "5511987654321"}',
        b'{"type": "MessageStatusCallback", "status": "READ"}',
    ],
)
def test_a_body_it_cannot_understand_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        zapi(account).parse_webhook(webhook(body))
