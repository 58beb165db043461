"""Evolution API v2: the wire format of sends, probes and webhooks, replayed offline from
recorded requests and answers (``responses`` stubs the network)."""

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
import requests
import responses
from responses import matchers

from integrations import breakers, registry
from integrations.base import (
    InboundMessage,
    MessageRequest,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookMalformed,
    WebhookRequest,
)
from integrations.chains import Outcome, run_chain
from integrations.models import Event, InboundWebhook, ProviderAccount
from tests.contract.recordings import recordings

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent
BASE_URL = "https://evolution.clinica-alfa.example"
INSTANCE = "clinica-alfa"
SEND_URL = f"{BASE_URL}/message/sendText/{INSTANCE}"
STATE_URL = f"{BASE_URL}/instance/connectionState/{INSTANCE}"
META_SEND_URL = "https://graph.facebook.com/v21.0/106540352242922/messages"
APIKEY = "evo-apikey-7c1e9a2b4d5f"
WEBHOOK_SECRET = "evo-webhook-secret-3f8a1c6d"
JWT_KEY = "evo-jwt-key-0f3c9b7a2e5d8c1f4a6b9e2d7c0a3f5b"
MESSAGE = MessageRequest(
    to="+5511987654321",
    text="Olá, Maria! Sua consulta é amanhã, 05/05, às 14h. Responda SIM para confirmar.",
)


raw, recorded = recordings(__file__)


def make_account(clinic, **credentials) -> ProviderAccount:
    return ProviderAccount.objects.create(
        clinic=clinic,
        kind="whatsapp",
        provider="evolution",
        settings={"base_url": f"{BASE_URL}/", "instance": INSTANCE},
        credentials={"apikey": APIKEY, **credentials},
    )


@pytest.fixture
def account(clinic_a):
    """Authenticated by a secret header (the default header name)."""
    return make_account(clinic_a, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def jwt_account(clinic_a):
    """Authenticated by Evolution's webhook JWT."""
    return make_account(clinic_a, jwt_key=JWT_KEY)


def evolution(account):
    return registry.get("whatsapp", "evolution")(account)


def evolution_jwt(key=JWT_KEY, *, issued=None, lifetime=600, **claims) -> str:
    """A token as Evolution signs it: HS256, {iat, exp = iat + 600, app, action}."""
    iat = int(issued if issued is not None else time.time())
    payload = {"iat": iat, "exp": iat + lifetime, "app": "evolution", "action": "webhook"}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="HS256")


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://cuidar.example/webhooks/evolution/token/",
        subpath="",
        headers={"content-type": "application/json"},
        query={},
        body=body,
        content_type="application/json",
    )


def parse(account, name: str):
    return evolution(account).parse_webhook(webhook(raw(name)))


def post(client, account, body: bytes, **headers):
    return client.post(
        f"/webhooks/evolution/{account.webhook_token}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


# --- Sending --------------------------------------------------------------------------------
@responses.activate
def test_it_sends_a_text_with_the_apikey_header_and_returns_the_whatsapp_message_id(account):
    responses.post(
        SEND_URL,
        status=201,
        json=recorded("send_text_response.json"),
        match=[
            matchers.json_params_matcher(recorded("send_text_request.json")),
            matchers.header_matcher({"apikey": APIKEY}),
        ],
    )

    result = evolution(account).send(MESSAGE)

    assert result.provider_message_id == "3EB0C5A2F1D4B7E9A8C6"
    assert result.status == "queued"


@responses.activate
def test_a_number_that_is_not_on_whatsapp_is_a_permanent_error_that_says_so(account):
    responses.post(SEND_URL, status=400, json=recorded("send_not_on_whatsapp_response.json"))

    with pytest.raises(PermanentProviderError) as caught:
        evolution(account).send(MessageRequest(to="+5511900000000", text="Oi"))

    assert "number is not on WhatsApp" in str(caught.value)
    assert caught.value.http_status == 400
    assert "5511900000000" not in str(caught.value)  # the number stays out of logs


@responses.activate
def test_a_refused_apikey_is_a_permanent_error(account):
    responses.post(SEND_URL, status=401, json=recorded("unauthorized_response.json"))

    with pytest.raises(PermanentProviderError, match="refused the apikey"):
        evolution(account).send(MESSAGE)


@responses.activate
def test_an_unknown_instance_is_a_permanent_error_with_evolutions_words(account):
    responses.post(SEND_URL, status=404, json=recorded("instance_not_found_response.json"))

    with pytest.raises(PermanentProviderError, match="instance does not exist"):
        evolution(account).send(MESSAGE)


@pytest.mark.parametrize("failure", [{"status": 500}, {"body": requests.ReadTimeout("slow")}])
@responses.activate
def test_a_server_error_or_timeout_is_transient_and_the_send_is_not_repeated(account, failure):
    responses.post(SEND_URL, **failure)

    with pytest.raises(TransientProviderError):
        evolution(account).send(MESSAGE)

    assert len(responses.calls) == 1  # no idempotency key at Evolution: never sent twice inline


@responses.activate
def test_an_account_without_apikey_refuses_to_send_without_calling_anyone(clinic_a):
    account = ProviderAccount.objects.create(
        clinic=clinic_a, kind="whatsapp", provider="evolution", settings={"base_url": BASE_URL}
    )

    with pytest.raises(PermanentProviderError, match="instance, apikey"):
        evolution(account).send(MESSAGE)

    assert len(responses.calls) == 0


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_is_ok_when_the_instance_is_open(account):
    responses.get(
        STATE_URL,
        json=recorded("connection_state_open_response.json"),
        match=[matchers.header_matcher({"apikey": APIKEY})],
    )

    result = evolution(account).health()

    assert result.ok
    assert result.latency_ms is not None


@responses.activate
def test_health_is_not_ok_when_the_phone_is_disconnected(account):
    responses.get(STATE_URL, json=recorded("connection_state_close_response.json"))

    result = evolution(account).health()

    assert not result.ok
    assert "close" in result.detail


@pytest.mark.parametrize("answer", [{"status": 401}, {"status": 502}])
@responses.activate
def test_health_reports_a_failed_probe_instead_of_raising(account, answer):
    responses.get(STATE_URL, **answer)

    result = evolution(account).health()

    assert not result.ok
    assert str(answer["status"]) in result.detail
    assert len(responses.calls) == 1


# --- Webhook authentication through the endpoint -------------------------------------------
def test_a_webhook_without_the_secret_header_gets_401_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_messages_upsert_text.json"))

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_webhook_with_a_wrong_secret_gets_403_and_stores_nothing(client, account):
    response = post(
        client,
        account,
        raw("webhook_messages_upsert_text.json"),
        **{"X-Cuidar-Webhook-Secret": "not-the-secret"},
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_webhook_with_the_secret_is_stored_once_and_published_and_a_replay_adds_nothing(
    client, account, django_capture_on_commit_callbacks
):
    body = raw("webhook_messages_upsert_text.json")
    headers = {"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET}

    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, account, body, **headers)
    with django_capture_on_commit_callbacks(execute=True):
        replay = post(client, account, body, **headers)

    assert (first.status_code, replay.status_code) == (200, 200)
    stored = InboundWebhook.objects.get()
    assert stored.dedupe_key == f"evolution:{account.pk}:messages.upsert:3A8F2B6C1D9E4A7B5C30"
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.inbound"
    assert event.payload["provider_message_id"] == "3A8F2B6C1D9E4A7B5C30"
    assert "x-cuidar-webhook-secret" not in stored.headers  # the secret is not kept


def test_an_apikey_echoed_in_the_body_is_not_stored_and_the_event_still_parses(
    client, account, django_capture_on_commit_callbacks
):
    data = json.loads(raw("webhook_messages_upsert_text.json"))
    data["apikey"] = APIKEY
    body = json.dumps(data, ensure_ascii=False).encode()

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, account, body, **{"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET})

    assert response.status_code == 200
    stored = InboundWebhook.objects.get()
    assert APIKEY.encode() not in bytes(stored.body)
    assert stored.status == "processed"
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().event_type == "message.inbound"
    )


def test_the_secret_header_name_comes_from_the_account_settings(client, account):
    account.settings["webhook_header"] = "X-Evolution-Token"
    account.save(update_fields=["settings"])
    body = raw("webhook_connection_update.json")

    assert (
        post(client, account, body, **{"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET}).status_code
        == 401
    )
    assert post(client, account, body, **{"X-Evolution-Token": WEBHOOK_SECRET}).status_code == 200


def test_a_valid_evolution_jwt_is_accepted_and_a_status_is_published(
    client, jwt_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            jwt_account,
            raw("webhook_messages_update_read.json"),
            Authorization=f"Bearer {evolution_jwt()}",
        )

    assert response.status_code == 200
    assert InboundWebhook.objects.count() == 1
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.status"
    assert event.payload["status"] == "read"
    assert event.payload["provider_message_id"] == "3EB0C5A2F1D4B7E9A8C6"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: evolution_jwt(issued=time.time() - 3600), id="expired"),
        pytest.param(
            lambda: evolution_jwt("another-key-0f3c9b7a2e5d8c1f4a6b9e2d7c0a3f5b"), id="wrong key"
        ),
        pytest.param(lambda: evolution_jwt(app="someone-else"), id="wrong app claim"),
        pytest.param(lambda: evolution_jwt(action="login"), id="wrong action claim"),
        pytest.param(lambda: evolution_jwt(iat=None), id="no iat"),
        pytest.param(lambda: evolution_jwt(exp=None), id="no exp"),
        pytest.param(
            lambda: jwt.encode({"app": "evolution", "action": "webhook"}, None, algorithm="none"),
            id="unsigned",
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_a_bad_jwt_gets_403_and_stores_nothing(client, jwt_account, token):
    response = post(
        client,
        jwt_account,
        raw("webhook_messages_upsert_text.json"),
        Authorization=f"Bearer {token()}",
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_jwt_account_wants_the_bearer_token_not_a_secret_header(client, jwt_account):
    body = raw("webhook_messages_upsert_text.json")

    assert post(client, jwt_account, body).status_code == 401
    assert (
        post(client, jwt_account, body, **{"X-Cuidar-Webhook-Secret": JWT_KEY}).status_code == 401
    )
    assert InboundWebhook.objects.count() == 0


def test_an_account_with_neither_secret_nor_jwt_key_refuses_every_webhook(client, clinic_a):
    account = make_account(clinic_a)

    response = post(
        client,
        account,
        raw("webhook_messages_upsert_text.json"),
        Authorization=f"Bearer {evolution_jwt()}",
        **{"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET},
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_authentic_webhook_of_another_instance_is_refused(client, account):
    response = post(
        client,
        account,
        raw("webhook_messages_upsert_other_instance.json"),
        **{"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET},
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


# --- Parsing recorded webhooks --------------------------------------------------------------
def test_an_inbound_text_becomes_a_message_from_the_patient(account):
    event = parse(account, "webhook_messages_upsert_text.json")

    (item,) = event.items
    assert item == InboundMessage(
        provider_message_id="3A8F2B6C1D9E4A7B5C30",
        from_address="+5511987654321",
        to_address="+5511300000000",
        text="Sim, confirmo! Até amanhã 😊",
        received_at=datetime(2026, 5, 4, 12, 3, 10, tzinfo=UTC),
        sender_name="Maria José",
    )
    assert event.dedupe_key == "messages.upsert:3A8F2B6C1D9E4A7B5C30"


@pytest.mark.parametrize(
    ("fixture", "text"),
    [
        ("webhook_messages_upsert_button_reply.json", "Confirmar"),
        ("webhook_messages_upsert_list_reply.json", "Remarcar"),
    ],
)
def test_a_button_or_list_reply_reads_as_the_option_chosen(account, fixture, text):
    (item,) = parse(account, fixture).items

    assert item.text == text
    assert item.from_address == "+5511987654321"


def test_a_privacy_id_sender_is_read_from_the_alternative_jid(account):
    (item,) = parse(account, "webhook_messages_upsert_lid.json").items

    assert item.from_address == "+5511987654321"
    assert item.text == "Posso ir às 15h?"


@pytest.mark.parametrize(
    "fixture",
    [
        "webhook_messages_upsert_from_me.json",
        "webhook_messages_upsert_group.json",
        "webhook_messages_update_read_by_clinic.json",
        "webhook_connection_update.json",
    ],
)
def test_echoes_of_our_own_messages_groups_and_other_events_are_ignored(account, fixture):
    event = parse(account, fixture)

    assert event.items == []


@pytest.mark.parametrize(
    ("fixture", "status", "at"),
    [
        (
            "webhook_messages_update_delivered.json",
            "delivered",
            datetime(2026, 5, 4, 12, 0, 4, 120000, tzinfo=UTC),
        ),
        (
            "webhook_messages_update_read.json",
            "read",
            datetime(2026, 5, 4, 12, 2, 47, 903000, tzinfo=UTC),
        ),
        (
            "webhook_messages_update_error.json",
            "failed",
            datetime(2026, 5, 4, 12, 0, 5, 1000, tzinfo=UTC),
        ),
    ],
)
def test_message_updates_become_statuses_of_our_message(account, fixture, status, at):
    (item,) = parse(account, fixture).items

    assert isinstance(item, MessageStatusUpdate)
    assert (item.provider_message_id, item.status, item.at) == ("3EB0C5A2F1D4B7E9A8C6", status, at)


def test_replays_share_a_dedupe_key_and_different_events_do_not(account):
    keys = [
        parse(account, name).dedupe_key
        for name in (
            "webhook_messages_update_delivered.json",
            "webhook_messages_update_delivered.json",
            "webhook_messages_update_read.json",
            "webhook_messages_upsert_from_me.json",
        )
    ]

    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3]}) == 3


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b'["messages.upsert"]',
        b'{"instance": "clinica-alfa", "data": {}}',
        b'{"event": "messages.upsert", "data": {"message": {"conversation": "Oi"}}}',
        b'{"event": "messages.update", "data": {"remoteJid": "5511987654321@s.whatsapp.net"}}',
    ],
)
def test_a_body_it_cannot_understand_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        evolution(account).parse_webhook(webhook(body))


# --- Chains ---------------------------------------------------------------------------------
@pytest.fixture
def fresh_breakers(settings):
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


@pytest.fixture
def evolution_then_meta(clinic_a, fresh_breakers):
    evolution_account = make_account(clinic_a, webhook_secret=WEBHOOK_SECRET)
    evolution_account.priority = 1
    evolution_account.save(update_fields=["priority"])
    meta_account = ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        priority=2,
        settings={"phone_number_id": "106540352242922"},
        credentials={"access_token": "EAAG-meta-token-for-tests"},
    )
    return evolution_account, meta_account


def meta_answer():
    return json.loads((FIXTURES.parent / "meta_cloud" / "send_response.json").read_bytes())


@responses.activate
def test_a_chain_falls_back_to_meta_when_evolution_answers_500(clinic_a, evolution_then_meta):
    responses.post(SEND_URL, status=500)
    responses.post(META_SEND_URL, json=meta_answer())

    result = run_chain(clinic_a, "whatsapp", "send", MESSAGE)

    assert result.provider == "meta_cloud"
    assert result.account == evolution_then_meta[1]
    assert result.value.provider_message_id.startswith("wamid.")
    assert result.tried == [("evolution", Outcome.FAILED), ("meta_cloud", Outcome.SUCCEEDED)]


@responses.activate
def test_while_evolutions_breaker_is_open_meta_serves_without_calling_evolution(
    clinic_a, evolution_then_meta
):
    failing = responses.post(SEND_URL, status=503)
    responses.post(META_SEND_URL, json=meta_answer())
    for _ in range(5):  # CUIDAR_BREAKER_FAIL_MAX transient failures open it
        run_chain(clinic_a, "whatsapp", "send", MESSAGE)
    assert failing.call_count == 5

    result = run_chain(clinic_a, "whatsapp", "send", MESSAGE)

    assert failing.call_count == 5  # the open breaker kept Evolution off the network
    assert result.provider == "meta_cloud"
    assert result.tried == [("evolution", Outcome.CIRCUIT_OPEN), ("meta_cloud", Outcome.SUCCEEDED)]
