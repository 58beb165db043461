"""Vonage SMS API: the form it is sent, its HTTP-200-with-a-status answers replayed from
recordings, and its signed webhooks through the real endpoint."""

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest
import responses
from django.urls import reverse

from integrations import registry
from integrations.base import (
    InboundMessage,
    MessageRequest,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookRequest,
)
from integrations.models import Event, InboundWebhook, ProviderAccount
from integrations.sms.vonage import is_gsm7, signature

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent
SEND_URL = "https://rest.nexmo.com/sms/json"
BALANCE_URL = "https://rest.nexmo.com/account/get-balance"
API_KEY = "a1b2c3d4"
API_SECRET = "vonage-api-secret-77f1"
SIGNATURE_SECRET = "vonage-signature-secret-3c9a"
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
        provider="vonage",
        settings={"from": "5511300000000"},
        credentials={
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "signature_secret": SIGNATURE_SECRET,
        },
    )


@pytest.fixture
def vonage(account):
    return registry.get("sms", "vonage")(account)


# --- Sending --------------------------------------------------------------------------------
@responses.activate
def test_it_posts_the_form_with_digits_only_and_reads_the_message_id(vonage, account):
    responses.post(SEND_URL, json=fixture("send_accepted.json"))

    result = vonage.send(MessageRequest(to="+5511987654321", text="Lembrete: consulta 14h"))

    assert result.provider_message_id == "0A0000001234ABCD"
    form = parse_qs(responses.calls[0].request.body)
    assert form == {
        "api_key": [API_KEY],
        "api_secret": [API_SECRET],
        "from": ["5511300000000"],
        "to": ["5511987654321"],
        "text": ["Lembrete: consulta 14h"],
        "callback": [f"{PUBLIC_URL}/webhooks/vonage/{account.webhook_token}/status"],
    }


@responses.activate
def test_it_asks_for_unicode_when_the_text_has_portuguese_accents_outside_gsm7(vonage):
    responses.post(SEND_URL, json=fixture("send_accepted.json"))

    vonage.send(
        MessageRequest(
            to="+5511987654321",
            text="Sua consulta é amanhã às 14h, não se esqueça!",
            idempotency_key="reminder-42",
        )
    )

    form = parse_qs(responses.calls[0].request.body)
    assert form["type"] == ["unicode"]
    assert form["text"] == ["Sua consulta é amanhã às 14h, não se esqueça!"]
    assert form["client-ref"] == ["reminder-42"]


@responses.activate
def test_it_leaves_the_receipt_url_to_the_dashboard_when_it_is_too_long_for_vonage(
    vonage, settings
):
    settings.CUIDAR_PUBLIC_URL = "https://agenda.clinica-alfa-especialidades-medicas.example/cuidar"
    responses.post(SEND_URL, json=fixture("send_accepted.json"))

    vonage.send(MessageRequest(to="+5511987654321", text="Oi"))

    assert "callback" not in parse_qs(responses.calls[0].request.body)


@pytest.mark.parametrize(
    ("text", "gsm7"),
    [
        ("Consulta confirmada", True),
        ("Até logo, é à tarde", True),  # é and à are in GSM-7
        ("Amanhã", False),
        ("Não", False),
        ("Avaliação", False),  # ç (only Ç is in GSM-7) and ã
        ("Olá", False),
        ("Total: 100€ {pix}", True),  # € and braces: the extension table
    ],
)
def test_it_knows_which_texts_fit_the_gsm7_alphabet(text, gsm7):
    assert is_gsm7(text) is gsm7


@responses.activate
def test_status_1_throttled_is_transient_with_vonages_text(vonage):
    responses.post(SEND_URL, json=fixture("send_throttled.json"))

    with pytest.raises(TransientProviderError, match="Throughput Rate Exceeded") as caught:
        vonage.send(MessageRequest(to="+5511987654321", text="Oi"))

    assert caught.value.detail["status"] == "1"
    assert len(responses.calls) == 1


@responses.activate
def test_status_4_bad_credentials_is_permanent_with_vonages_text(vonage):
    responses.post(SEND_URL, json=fixture("send_bad_credentials.json"))

    with pytest.raises(PermanentProviderError, match="Bad Credentials") as caught:
        vonage.send(MessageRequest(to="+5511987654321", text="Oi"))

    assert caught.value.detail == {"status": "4", "error-text": "Bad Credentials"}
    assert API_SECRET not in str(caught.value)


@responses.activate
def test_a_server_error_is_transient_and_the_send_is_not_retried(vonage, monkeypatch):
    responses.post(SEND_URL, status=503)

    with pytest.raises(TransientProviderError):
        vonage.send(MessageRequest(to="+5511987654321", text="Oi"))
    assert len(responses.calls) == 1


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_reads_the_balance(vonage):
    responses.get(BALANCE_URL, json=fixture("balance.json"))

    result = vonage.health()

    assert result.ok
    assert "10.28" in result.detail
    query = parse_qs(responses.calls[0].request.url.split("?", 1)[1])
    assert query == {"api_key": [API_KEY], "api_secret": [API_SECRET]}


@responses.activate
def test_health_reports_bad_credentials_without_raising_or_leaking_them(vonage):
    responses.get(BALANCE_URL, json={"error-code": "401"}, status=401)

    result = vonage.health()

    assert not result.ok
    assert API_SECRET not in result.detail


# --- Signatures -----------------------------------------------------------------------------
def documented_signature(params: dict, secret: str, method: str = "md5hash") -> str:
    """Vonage's scheme, written out: sorted ``&name=value`` (``&`` and ``=`` in values
    become ``_``), then md5(string + secret) or HMAC(secret, string)."""
    joined = "".join(
        "&{}={}".format(k, v.replace("&", "_").replace("=", "_"))
        for k, v in sorted(params.items())
        if k != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((joined + secret).encode()).hexdigest()  # noqa: S324
    return hmac.new(secret.encode(), joined.encode(), method).hexdigest().upper()


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # Vectors from Vonage's own SDK tests (vonage-python-sdk, secret "secret").
        ("md5hash", "6af838ef94998832dbfc29020b564830"),
        ("sha1", "3e19a4e6880fdc2c1426bfd0587c98b9532f0210"),
        ("sha256", "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24"),
    ],
)
def test_the_signature_matches_vonages_sdk_vectors(method, expected):
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert signature(params, "secret", method) == expected


def signed(params: dict, *, secret=SIGNATURE_SECRET, method="md5hash", at=None) -> dict:
    params = {**params, "timestamp": str(int(at if at is not None else time.time()))}
    params["nonce"] = "6f3c0c5e-5e0b-4a0e-9d8b-0c7f3b2e1a90"
    params["sig"] = documented_signature(params, secret, method)
    return params


def webhook_path(account, subpath=""):
    if subpath:
        return reverse("webhooks:receive-subpath", args=["vonage", account.webhook_token, subpath])
    return reverse("webhooks:receive", args=["vonage", account.webhook_token])


def post_form(client, account, params, subpath=""):
    return client.post(
        webhook_path(account, subpath),
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
    )


# --- Webhooks -------------------------------------------------------------------------------
def test_it_accepts_a_signed_inbound_sms_and_publishes_message_inbound(
    client, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_form(client, account, signed(fixture("inbound_sms.json")))

    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.dedupe_key == f"vonage:{account.pk}:0A0000001234ABCE"
    assert webhook.status == "processed"
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.inbound"
    assert event.payload["provider_message_id"] == "0A0000001234ABCE"


def test_an_inbound_sms_delivered_by_get_is_stored_and_processed_too(
    client, account, django_capture_on_commit_callbacks
):
    # Vonage's Dashboard may be set to deliver by GET: the query is the event.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(webhook_path(account), data=signed(fixture("inbound_sms.json")))

    assert response.status_code == 200
    assert InboundWebhook.objects.get().status == "processed"
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().event_type == "message.inbound"
    )


def test_it_accepts_a_signed_json_post_with_an_hmac_method(
    client, account, django_capture_on_commit_callbacks
):
    account.settings = {**account.settings, "signature_method": "sha256"}
    account.save(update_fields=["settings"])
    body = signed(fixture("inbound_sms.json"), method="sha256")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(webhook_path(account), data=body, content_type="application/json")

    assert response.status_code == 200
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().event_type == "message.inbound"
    )


def test_it_rejects_a_bad_signature_with_403_and_stores_nothing(client, account):
    params = signed(fixture("inbound_sms.json"), secret="not-the-signature-secret")

    response = post_form(client, account, params)

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_it_rejects_a_tampered_text_with_403(client, account):
    params = {**signed(fixture("inbound_sms.json")), "text": "Cancelo"}
    assert post_form(client, account, params).status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_it_rejects_a_missing_signature_with_401(client, account):
    response = post_form(client, account, fixture("inbound_sms.json"))

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


def test_it_rejects_a_stale_timestamp_even_when_the_signature_is_right(client, account):
    params = signed(fixture("inbound_sms.json"), at=time.time() - 600)

    response = post_form(client, account, params)

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_it_turns_a_delivery_receipt_into_message_status(
    client, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_form(
            client, account, signed(fixture("receipt_delivered.json")), subpath="status"
        )

    assert response.status_code == 200
    assert InboundWebhook.objects.get().dedupe_key == (
        f"vonage:{account.pk}:0A0000001234ABCD:delivered"
    )
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.status"
    assert event.payload["status"] == "delivered"


def test_a_replayed_webhook_stores_nothing_new(client, account, django_capture_on_commit_callbacks):
    params = signed(fixture("inbound_sms.json"))
    with django_capture_on_commit_callbacks(execute=True):
        post_form(client, account, params)
    with django_capture_on_commit_callbacks(execute=True):
        again = post_form(client, account, params)

    assert again.status_code == 200
    assert InboundWebhook.objects.count() == 1
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 1


# --- Parsing --------------------------------------------------------------------------------
def form_request(params: dict, *, method="POST") -> WebhookRequest:
    if method == "GET":
        return WebhookRequest(method="GET", url="", subpath="", headers={}, query=params, body=b"")
    return WebhookRequest(
        method="POST",
        url="",
        subpath="",
        headers={},
        query={},
        body=urlencode(params).encode(),
        content_type="application/x-www-form-urlencoded",
    )


def test_it_parses_an_inbound_sms_with_an_e164_sender(vonage):
    (item,) = vonage.parse_webhook(form_request(fixture("inbound_sms.json"))).items

    assert isinstance(item, InboundMessage)
    assert item.from_address == "+5511987654321"
    assert item.to_address == "+5511300000000"
    assert item.text == "Confirmo a consulta de amanhã"
    assert item.received_at.isoformat() == "2024-05-20T12:00:00+00:00"


def test_it_verifies_and_parses_a_get_query_too(vonage):
    request = form_request(signed(fixture("receipt_failed.json")), method="GET")

    vonage.verify_webhook(request)
    (item,) = vonage.parse_webhook(request).items

    assert item == MessageStatusUpdate(
        provider_message_id="0A0000001234ABCD",
        status="failed",
        at=item.at,
        error="6",
    )


@pytest.mark.parametrize(
    ("vonage_status", "ours"),
    [
        ("delivered", "delivered"),
        ("accepted", "sent"),
        ("buffered", "sent"),
        ("expired", "failed"),
        ("failed", "failed"),
        ("rejected", "failed"),
    ],
)
def test_it_maps_receipt_statuses(vonage, vonage_status, ours):
    params = {**fixture("receipt_delivered.json"), "status": vonage_status}
    (item,) = vonage.parse_webhook(form_request(params)).items
    assert item.status == ours


def test_an_unknown_receipt_status_gives_no_item(vonage):
    params = {**fixture("receipt_delivered.json"), "status": "unknown"}
    assert vonage.parse_webhook(form_request(params)).items == []
