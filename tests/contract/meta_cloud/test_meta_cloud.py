"""Meta's WhatsApp Cloud API: the wire format of sends, probes and webhooks, replayed offline
from recorded requests and answers (``responses`` stubs the network)."""

import hashlib
import hmac
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
    WebhookUnauthorized,
)
from integrations.models import Event, InboundWebhook, ProviderAccount
from tests.contract.recordings import recordings

pytestmark = pytest.mark.django_db

NUMBER_ID = "106540352242922"
SEND_URL = f"https://graph.facebook.com/v21.0/{NUMBER_ID}/messages"
PROFILE_URL = f"https://graph.facebook.com/v21.0/{NUMBER_ID}"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAKZCz-test-token-5f1e"
APP_SECRET = "meta-app-secret-9d2c7b1a"
VERIFY_TOKEN = "cuidar-verify-token-41f0"
WAMID_OUT = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ5QzBBNkE1RjI0QjE3MEE3MQA="
TEXT = "Olá, Maria! Sua consulta é amanhã, 05/05, às 14h. Responda SIM para confirmar."


raw, recorded = recordings(__file__)


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        settings={"phone_number_id": NUMBER_ID},
        credentials={
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        },
    )


def meta(account):
    return registry.get("whatsapp", "meta_cloud")(account)


def webhook(body: bytes, *, method="POST", query=None, **headers) -> WebhookRequest:
    return WebhookRequest(
        method=method,
        url="https://cuidar.example/webhooks/meta_cloud/token/",
        subpath="",
        headers={k.lower(): v for k, v in headers.items()},
        query=query or {},
        body=body,
        content_type="application/json",
    )


def parse(account, name: str):
    return meta(account).parse_webhook(webhook(raw(name)))


def url_for(account) -> str:
    return f"/webhooks/meta_cloud/{account.webhook_token}/"


def post(client, account, body: bytes, **headers):
    return client.post(
        url_for(account), data=body, content_type="application/json", headers=headers
    )


# --- Sending --------------------------------------------------------------------------------
@responses.activate
def test_it_sends_a_text_with_the_bearer_token_and_returns_the_wamid(account):
    responses.post(
        SEND_URL,
        json=recorded("send_response.json"),
        match=[
            matchers.json_params_matcher(recorded("send_text_request.json")),
            matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"}),
        ],
    )

    result = meta(account).send(MessageRequest(to="+5511987654321", text=TEXT))

    assert result.provider_message_id == WAMID_OUT
    assert result.status == "queued"


@responses.activate
def test_it_sends_an_approved_template_with_its_body_parameters_in_order(account):
    responses.post(
        SEND_URL,
        json=recorded("send_template_response.json"),
        match=[matchers.json_params_matcher(recorded("send_template_request.json"))],
    )

    result = meta(account).send(
        MessageRequest(
            to="+55 11 98765-4321",
            text="ignored when a template is named",
            template="lembrete_consulta",
            template_language="pt_BR",
            template_variables=["Maria", "05/05", "14:00"],
        )
    )

    assert result.provider_message_id.startswith("wamid.")


@responses.activate
def test_the_api_version_comes_from_the_settings(account):
    account.settings["api_version"] = "22.0"
    account.save(update_fields=["settings"])
    responses.post(
        f"https://graph.facebook.com/v22.0/{NUMBER_ID}/messages",
        json=recorded("send_response.json"),
    )

    assert meta(account).send(MessageRequest(to="+5511987654321", text="Oi")).provider_message_id


@pytest.mark.parametrize(
    "fixture",
    ["error_130429_response.json", "error_131056_response.json", "error_131049_response.json"],
)
@responses.activate
def test_throttling_codes_answered_with_400_are_transient(account, fixture):
    responses.post(SEND_URL, status=400, json=recorded(fixture))

    with pytest.raises(TransientProviderError) as caught:
        meta(account).send(MessageRequest(to="+5511987654321", text="Oi"))

    code = recorded(fixture)["error"]["code"]
    assert f"Meta error {code}" in str(caught.value)
    assert caught.value.http_status == 400
    assert len(responses.calls) == 1  # Meta takes no idempotency key: never sent twice inline


@pytest.mark.parametrize(("status", "extra"), [(429, {}), (503, {}), (None, {})])
@responses.activate
def test_429_5xx_and_timeouts_are_transient_and_not_repeated(account, status, extra):
    if status is None:
        responses.post(SEND_URL, body=requests.ConnectTimeout("no route"))
    else:
        responses.post(SEND_URL, status=status, json={"error": {"code": 2, "message": "busy"}})

    with pytest.raises(TransientProviderError):
        meta(account).send(MessageRequest(to="+5511987654321", text="Oi"))

    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("fixture", "http_status", "says"),
    [
        ("error_131047_response.json", 400, "24 hours"),
        ("error_131026_response.json", 400, "undeliverable"),
        ("error_190_response.json", 401, "access token"),
        ("error_100_response.json", 400, "Invalid parameter"),
    ],
)
@responses.activate
def test_other_refusals_are_permanent_and_name_metas_code(account, fixture, http_status, says):
    responses.post(SEND_URL, status=http_status, json=recorded(fixture))

    with pytest.raises(PermanentProviderError) as caught:
        meta(account).send(MessageRequest(to="+5511987654321", text="Oi"))

    assert f"Meta error {recorded(fixture)['error']['code']}" in str(caught.value)
    assert says in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_reads_the_phone_numbers_profile(account):
    responses.get(
        PROFILE_URL,
        json=recorded("phone_number_response.json"),
        match=[
            matchers.query_param_matcher(
                {"fields": "display_phone_number,quality_rating,verified_name"}
            ),
            matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"}),
        ],
    )

    result = meta(account).health()

    assert result.ok
    assert "GREEN" in result.detail
    assert "+55 11 3000-0000" in result.detail


@responses.activate
def test_health_is_not_ok_with_an_expired_token(account):
    responses.get(PROFILE_URL, status=401, json=recorded("error_190_response.json"))

    result = meta(account).health()

    assert not result.ok
    assert "190" in result.detail


# --- Webhook handshake and signature ------------------------------------------------------
def test_the_hmac_check_vector_holds():
    digest = hmac.new(b"secret", b"test", hashlib.sha256).hexdigest()

    assert digest == "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"


def test_the_signature_is_checked_with_the_app_secret_over_the_raw_body(clinic_a):
    account = ProviderAccount(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        credentials={"app_secret": "secret"},
    )
    good = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"

    verdict = meta(account).verify_webhook(webhook(b"test", **{"X-Hub-Signature-256": good}))

    assert verdict is None  # accepted: no WebhookUnauthorized


def test_the_subscription_handshake_echoes_the_challenge(client, account):
    response = client.get(
        url_for(account),
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")
    assert InboundWebhook.objects.count() == 0  # a handshake is never stored


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "guess"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN}, 403),
        ({"hub.mode": "subscribe"}, 401),
    ],
)
def test_a_handshake_without_our_verify_token_is_refused(client, account, query, status):
    response = client.get(url_for(account), {**query, "hub.challenge": "CHALLENGE-77"})

    assert response.status_code == status
    assert b"CHALLENGE-77" not in response.content


def test_a_post_without_signature_gets_401_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_inbound_text.json"))

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


@pytest.mark.parametrize(
    "signature",
    [
        sign(raw("webhook_inbound_text.json"), "not-the-app-secret"),
        sign(raw("webhook_inbound_text.json") + b" "),
        sign(raw("webhook_inbound_text.json")).removeprefix("sha256="),
        "sha256=zzz",
        "sha256=çççç",
    ],
)
def test_a_post_with_a_wrong_signature_gets_403_and_stores_nothing(client, account, signature):
    response = post(
        client, account, raw("webhook_inbound_text.json"), **{"X-Hub-Signature-256": signature}
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_body_re_serialised_after_signing_no_longer_verifies(account):
    body = raw("webhook_inbound_text.json")
    reserialised = json.dumps(json.loads(body)).encode()

    with pytest.raises(WebhookUnauthorized) as caught:
        meta(account).verify_webhook(webhook(reserialised, **{"X-Hub-Signature-256": sign(body)}))

    assert caught.value.status == 403


@pytest.mark.parametrize("encoding", ["escaped", "utf-8"])
def test_a_signed_body_with_accents_and_emoji_verifies_however_it_is_encoded(
    client, account, encoding, django_capture_on_commit_callbacks
):
    body = raw("webhook_inbound_text.json")  # Meta's own form: \u00e1, \ud83d\ude0a, \/
    if encoding == "utf-8":
        body = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
        assert "amanhã".encode() in body

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, account, body, **{"X-Hub-Signature-256": sign(body)})

    assert response.status_code == 200
    assert bytes(InboundWebhook.objects.get().body) == body
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().event_type == "message.inbound"
    )


def test_a_signed_post_is_stored_once_published_per_item_and_a_replay_adds_nothing(
    client, account, django_capture_on_commit_callbacks
):
    body = raw("webhook_batch.json")

    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, account, body, **{"X-Hub-Signature-256": sign(body)})
    with django_capture_on_commit_callbacks(execute=True):
        replay = post(client, account, body, **{"X-Hub-Signature-256": sign(body)})

    assert (first.status_code, replay.status_code) == (200, 200)
    assert InboundWebhook.objects.count() == 1
    published = sorted(
        Event.objects.exclude(event_type__startswith="lead.").values_list("event_type", flat=True)
    )
    assert published == ["message.inbound"] * 2 + ["message.status"] * 2


# --- Parsing recorded webhooks --------------------------------------------------------------
def test_an_inbound_text_becomes_a_message_from_the_patient(account):
    event = parse(account, "webhook_inbound_text.json")

    (item,) = event.items
    assert item == InboundMessage(
        provider_message_id="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBBMUIyQzNENEU1RjZBN0I4QzkA",
        from_address="+5511987654321",
        to_address="+551130000000",
        text="Sim, confirmo! Até amanhã às 14h 😊 https://maps.example/clinica",
        received_at=datetime(2026, 5, 4, 12, 3, 10, tzinfo=UTC),
        sender_name="Maria José",
    )


@pytest.mark.parametrize(
    ("fixture", "text"),
    [
        ("webhook_button_reply.json", "Confirmar"),
        ("webhook_interactive_list_reply.json", "Remarcar"),
    ],
)
def test_a_template_button_or_list_reply_reads_as_the_option_chosen(account, fixture, text):
    (item,) = parse(account, fixture).items

    assert item.text == text


def test_a_post_with_several_messages_and_statuses_yields_them_all_but_reactions(account):
    event = parse(account, "webhook_batch.json")

    assert [type(i).__name__ for i in event.items] == [
        "InboundMessage",
        "InboundMessage",
        "MessageStatusUpdate",
        "MessageStatusUpdate",
    ]
    button, text, sent, read = event.items
    assert (button.text, button.sender_name) == ("Confirmar", "Maria José")
    assert (text.from_address, text.sender_name) == ("+5521955554444", "João Pedro")
    assert [(s.provider_message_id, s.status) for s in (sent, read)] == [
        (WAMID_OUT, "sent"),
        (WAMID_OUT, "read"),
    ]


def test_a_delivered_status_comes_with_its_time(account):
    (item,) = parse(account, "webhook_status_delivered.json").items

    assert item == MessageStatusUpdate(
        provider_message_id=WAMID_OUT,
        status="delivered",
        at=datetime(2026, 5, 4, 12, 0, 4, tzinfo=UTC),
    )


def test_a_failed_status_carries_metas_error_title_and_code(account):
    (item,) = parse(account, "webhook_status_failed.json").items

    assert item.status == "failed"
    assert item.error == "Re-engagement message (131047)"


@pytest.mark.parametrize(
    "fixture", ["webhook_other_number.json", "webhook_template_status_update.json"]
)
def test_other_numbers_and_other_fields_are_ignored(account, fixture):
    assert parse(account, fixture).items == []


def test_replays_share_a_dedupe_key_and_different_events_do_not(account):
    keys = [
        parse(account, name).dedupe_key
        for name in (
            "webhook_batch.json",
            "webhook_batch.json",
            "webhook_status_delivered.json",
            "webhook_inbound_text.json",
        )
    ]

    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3]}) == 3
    assert keys[2] == f"status:{WAMID_OUT}:delivered"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
        b' "value": {"messages": [{"type": "text"}]}}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
        b' "value": {"statuses": "delivered"}}]}]}',
    ],
)
def test_a_body_it_cannot_understand_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        meta(account).parse_webhook(webhook(body))
