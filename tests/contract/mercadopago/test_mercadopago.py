"""Mercado Pago (Payments API v1, PIX): the wire format of charges, reads, refunds and the
health probe, and its HMAC-signed webhooks through the real endpoint, replayed offline from
recorded requests and answers (``responses`` stubs the network; nothing leaves the test)."""

import hashlib
import hmac
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from responses import matchers

import integrations.payments.mercadopago  # noqa: F401  (registers the adapter)
from integrations import registry
from integrations.base import (
    ChargeRequest,
    Customer,
    PaymentUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from integrations.models import InboundWebhook, ProviderAccount
from integrations.payments.mercadopago import signature_manifest
from tests.contract.recordings import recordings

# Every test runs with the network stubbed (tests/contract/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
API = "https://api.mercadopago.com"
ACCESS_TOKEN = "TEST-1664124048-cuidar-test-token-5f2e9c"
WEBHOOK_SECRET = "mp-webhook-secret-3c9d1e7a"
ACCOUNT_TOKEN = "4b8f2d6a-1c3e-4f5a-9b7d-0e2f4a6c8e1b"  # the account's webhook_token
PUBLIC_URL = "https://clinica.example"
PAYMENT_ID = "1327410519"
BEARER = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
TS = "1777900468"  # 2026-05-04 13:14:28 UTC, in seconds as the docs' example
PIX_PAYLOAD = (
    "00020101021226820014br.gov.bcb.pix2560pix.mercadopago.com/v2/cobv/3f9a2c7e4b1d48e6a5c0d9e8"
    "f7b6a5c45204000053039865406150.905802BR5917CLINICA ALFA LTDA6009SAO PAULO62070503***6304F152"
)


raw, recorded = recordings(__file__)


@pytest.fixture(autouse=True)
def today(time_machine):
    """The recordings were made on 2026-05-04 (a week before the charge's due date)."""
    time_machine.move_to(datetime(2026, 5, 4, 10, 21, tzinfo=SAO_PAULO), tick=False)


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.CUIDAR_PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="payments",
        provider="mercadopago",
        webhook_token=ACCOUNT_TOKEN,
        settings={},
        credentials={"access_token": ACCESS_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )


def mp(account):
    return registry.get("payments", "mercadopago")(account)


MARIA = Customer(
    name="Maria José Araújo",
    cpf_cnpj="529.982.247-25",
    email="maria.araujo@example.com",
    phone="+55 11 98765-4321",
    external_reference="patient-42",
)


def consultation(**kwargs) -> ChargeRequest:
    fields = {
        "amount": Decimal("150.90"),
        "method": "pix",
        "customer": MARIA,
        "description": "Consulta de fisioterapia",
        "due_date": date(2026, 5, 11),
        "external_reference": "pay-7f3a9c2e",
        "idempotency_key": "pay-7f3a9c2e",
    }
    return ChargeRequest(**{**fields, **kwargs})


def sent_json(index: int = -1) -> dict:
    return json.loads(responses.calls[index].request.body)


# --- Charging -------------------------------------------------------------------------------
def test_a_pix_charge_posts_the_documented_body_with_bearer_and_idempotency_key(account):
    responses.post(
        f"{API}/v1/payments",
        status=201,
        json=recorded("payment_pix_created.json"),
        match=[
            matchers.json_params_matcher(recorded("payment_request_pix.json")),
            matchers.header_matcher({**BEARER, "X-Idempotency-Key": "pay-7f3a9c2e"}),
        ],
    )

    result = mp(account).charge(consultation())

    assert result.gateway_payment_id == PAYMENT_ID  # Mercado Pago's number, as text
    assert result.status == "pending"
    assert result.pix_payload == PIX_PAYLOAD
    assert result.pix_qr_base64.startswith("iVBORw0KGgo")
    assert result.invoice_url.startswith("https://www.mercadopago.com.br/payments/1327410519/")
    assert result.boleto_url == ""


def test_the_notification_url_asks_for_signed_webhooks_only(account):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation())

    assert sent_json()["notification_url"] == (
        f"{PUBLIC_URL}/webhooks/mercadopago/{ACCOUNT_TOKEN}/?source_news=webhooks"
    )


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        (Decimal("150.90"), "150.9"),
        (Decimal("1234.56"), "1234.56"),
        (Decimal("200"), "200.0"),
        (Decimal("99.995"), "100.0"),  # rounded half up to centavos, on the Decimal
    ],
)
def test_the_transaction_amount_is_a_json_number_in_reais(account, amount, wire):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation(amount=amount))

    assert f'"transaction_amount": {wire}'.encode() in responses.calls[0].request.body


def test_a_timed_out_charge_is_retried_with_the_same_idempotency_key(account):
    responses.post(f"{API}/v1/payments", body=requests.ConnectTimeout("slow"))
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    result = mp(account).charge(consultation())

    assert result.gateway_payment_id == PAYMENT_ID
    keys = [c.request.headers["X-Idempotency-Key"] for c in responses.calls]
    assert keys == ["pay-7f3a9c2e", "pay-7f3a9c2e"]


def test_without_a_key_the_same_charge_derives_the_same_idempotency_key(account):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation(idempotency_key=""))
    mp(account).charge(consultation(idempotency_key=""))

    first, second = (c.request.headers["X-Idempotency-Key"] for c in responses.calls)
    assert first == second
    assert first.startswith("cuidar-")


def test_a_company_payer_is_identified_by_cnpj(account):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))
    company = Customer(name="Empresa Beta", cpf_cnpj="18.765.499/0001-99", email="fin@beta.example")

    mp(account).charge(consultation(customer=company))

    assert sent_json()["payer"] == {
        "email": "fin@beta.example",
        "first_name": "Empresa",
        "last_name": "Beta",
        "identification": {"type": "CNPJ", "number": "18765499000199"},
    }


def test_an_undefined_method_is_charged_as_pix(account):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation(method="undefined"))

    assert sent_json()["payment_method_id"] == "pix"


@pytest.mark.parametrize("due_date", [date(2026, 5, 1), date(2026, 5, 4), None])
def test_a_due_date_not_after_today_leaves_the_expiry_to_mercado_pago(account, due_date):
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation(due_date=due_date))

    assert "date_of_expiration" not in sent_json()


def test_no_notification_url_is_sent_from_a_non_public_address(account, settings):
    settings.CUIDAR_PUBLIC_URL = "http://127.0.0.1:8000"
    responses.post(f"{API}/v1/payments", status=201, json=recorded("payment_pix_created.json"))

    mp(account).charge(consultation())

    assert "notification_url" not in sent_json()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"method": "boleto"}, "only PIX"),
        ({"method": "credit_card"}, "only PIX"),
        ({"customer": Customer(name="Sem E-mail", cpf_cnpj="52998224725")}, "e-mail"),
        ({"amount": Decimal("0")}, "positive"),
    ],
)
def test_a_charge_it_cannot_make_is_refused_without_any_call(account, kwargs, says):
    with pytest.raises(PermanentProviderError, match=says):
        mp(account).charge(consultation(**kwargs))
    assert len(responses.calls) == 0


# --- Reading --------------------------------------------------------------------------------
def test_get_charge_reads_an_approved_payment_with_decimal_amount_and_approval_time(account):
    responses.get(
        f"{API}/v1/payments/{PAYMENT_ID}",
        json=recorded("payment_approved.json"),
        match=[matchers.header_matcher(BEARER)],
    )

    update = mp(account).get_charge(PAYMENT_ID)

    assert update == PaymentUpdate(
        gateway_payment_id=PAYMENT_ID,
        status="paid",
        amount=Decimal("150.90"),
        paid_at=datetime(2026, 5, 5, 13, 14, 27, tzinfo=UTC),
        external_reference="pay-7f3a9c2e",
    )
    assert not update.fetch_required


@pytest.mark.parametrize(
    ("mp_status", "ours"),
    [
        ("approved", "paid"),
        ("pending", "pending"),
        ("in_process", "pending"),
        ("authorized", "pending"),
        ("rejected", "failed"),
        ("cancelled", "cancelled"),
        ("refunded", "refunded"),
        ("charged_back", "refunded"),
        ("in_mediation", "paid"),
    ],
)
def test_every_mercado_pago_status_maps_to_ours(account, mp_status, ours):
    responses.get(
        f"{API}/v1/payments/{PAYMENT_ID}",
        json={**recorded("payment_approved.json"), "status": mp_status},
    )

    assert mp(account).get_charge(PAYMENT_ID).status == ours


@pytest.mark.parametrize(
    ("fixture", "status", "refunded"),
    [
        ("payment_partially_refunded.json", "paid", Decimal("50.90")),
        ("payment_refunded.json", "refunded", Decimal("150.90")),
        ("payment_approved.json", "paid", None),
    ],
)
def test_get_charge_reports_the_amount_refunded_so_far(account, fixture, status, refunded):
    responses.get(f"{API}/v1/payments/{PAYMENT_ID}", json=recorded(fixture))

    update = mp(account).get_charge(PAYMENT_ID)

    assert (update.status, update.refunded_amount) == (status, refunded)


# --- Refunding ------------------------------------------------------------------------------
def test_a_partial_refund_posts_the_amount_with_an_idempotency_key(account):
    responses.post(
        f"{API}/v1/payments/{PAYMENT_ID}/refunds",
        status=201,
        json=recorded("refund_created.json"),
        match=[
            matchers.json_params_matcher(recorded("refund_request_partial.json")),
            matchers.header_matcher(BEARER),
        ],
    )

    result = mp(account).refund(PAYMENT_ID, Decimal("50.90"))

    assert result.gateway_payment_id == PAYMENT_ID
    assert result.amount == Decimal("50.90")
    assert result.status == "refunded"
    assert responses.calls[0].request.headers["X-Idempotency-Key"]


def test_a_full_refund_posts_no_amount_and_may_be_in_process(account):
    responses.post(
        f"{API}/v1/payments/{PAYMENT_ID}/refunds",
        status=201,
        json=recorded("refund_in_process.json"),
        match=[matchers.json_params_matcher({})],
    )

    result = mp(account).refund(PAYMENT_ID)

    assert (result.amount, result.status) == (Decimal("150.90"), "pending")


def test_a_refund_retried_after_a_5xx_keeps_its_idempotency_key_and_the_next_gets_another(
    account,
):
    url = f"{API}/v1/payments/{PAYMENT_ID}/refunds"
    responses.post(url, status=503)
    responses.post(url, status=201, json=recorded("refund_created.json"))

    mp(account).refund(PAYMENT_ID, Decimal("50.90"))
    mp(account).refund(PAYMENT_ID, Decimal("50.90"))

    keys = [c.request.headers["X-Idempotency-Key"] for c in responses.calls]
    assert len(keys) == 3
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize("state", ["rejected", "cancelled"])
def test_a_refund_mercado_pago_did_not_make_is_a_permanent_error(account, state):
    responses.post(
        f"{API}/v1/payments/{PAYMENT_ID}/refunds",
        status=201,
        json={**recorded("refund_created.json"), "status": state},
    )

    with pytest.raises(PermanentProviderError, match=state):
        mp(account).refund(PAYMENT_ID, Decimal("50.90"))


# --- Errors ---------------------------------------------------------------------------------
def test_a_400_is_permanent_and_carries_mercado_pagos_description_and_code(account):
    responses.post(f"{API}/v1/payments", status=400, json=recorded("error_bad_request.json"))

    with pytest.raises(PermanentProviderError) as caught:
        mp(account).charge(consultation())

    error = caught.value
    assert error.http_status == 400
    assert "Invalid user identification number" in str(error)
    assert "(2067)" in str(error)
    assert len(responses.calls) == 1


def test_a_bad_access_token_is_permanent_and_never_shown(account):
    responses.get(
        f"{API}/v1/payments/{PAYMENT_ID}", status=401, json=recorded("error_unauthorized.json")
    )

    with pytest.raises(PermanentProviderError) as caught:
        mp(account).get_charge(PAYMENT_ID)

    assert "invalid access token" in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)


def test_an_unknown_payment_is_permanent(account):
    responses.get(f"{API}/v1/payments/999", status=404, json=recorded("error_not_found.json"))

    with pytest.raises(PermanentProviderError, match="Payment not found"):
        mp(account).get_charge("999")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_transient_and_retried_with_the_same_key(account, status):
    responses.post(
        f"{API}/v1/payments", status=status, json=recorded("error_too_many_requests.json")
    )

    with pytest.raises(TransientProviderError) as caught:
        mp(account).charge(consultation())

    assert caught.value.http_status == status
    keys = {c.request.headers["X-Idempotency-Key"] for c in responses.calls}
    assert len(responses.calls) == 3  # safe: the key makes a repeat return the same payment
    assert keys == {"pay-7f3a9c2e"}


# --- Health ---------------------------------------------------------------------------------
def test_health_reads_the_tokens_own_user(account):
    responses.get(
        f"{API}/users/me", json=recorded("users_me.json"), match=[matchers.header_matcher(BEARER)]
    )

    result = mp(account).health()

    assert result.ok
    assert "sandbox" in result.detail  # a TEST- token


def test_health_reports_a_bad_token_without_raising(account):
    responses.get(f"{API}/users/me", status=401, json=recorded("error_unauthorized.json"))

    result = mp(account).health()

    assert not result.ok
    assert "invalid access token" in result.detail
    assert ACCESS_TOKEN not in result.detail


def test_health_reports_a_server_error_without_raising(account):
    responses.get(f"{API}/users/me", status=502)

    result = mp(account).health()

    assert not result.ok
    assert len(responses.calls) == 1


def test_health_without_a_token_makes_no_call(account):
    account.credentials = {}

    result = mp(account).health()

    assert not result.ok
    assert "access_token" in result.detail
    assert len(responses.calls) == 0


# --- The x-signature ------------------------------------------------------------------------
def documented_v1(data_id: str, request_id: str, ts: str, secret: str = WEBHOOK_SECRET) -> str:
    """The docs' formula, written out here independently of the adapter."""
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()


def signature(data_id=PAYMENT_ID, request_id=REQUEST_ID, ts=TS, secret=WEBHOOK_SECRET) -> str:
    return f"ts={ts},v1={documented_v1(data_id, request_id, ts, secret)}"


def webhook(body: bytes, query: dict | None = None, **headers) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="",
        subpath="",
        headers={k.lower().replace("_", "-"): v for k, v in headers.items()},
        query={"data.id": PAYMENT_ID, "type": "payment"} if query is None else query,
        body=body,
        content_type="application/json",
    )


def test_the_manifest_follows_the_documented_template():
    assert signature_manifest(data_id="1327410519", request_id=REQUEST_ID, ts=TS) == (
        f"id:1327410519;request-id:{REQUEST_ID};ts:{TS};"
    )
    # Parts absent from the notification are left out, and an alphanumeric id is lower-cased.
    assert signature_manifest(data_id="ORD01JQ4S4KY8H", request_id="", ts=TS) == (
        f"id:ord01jq4s4ky8h;ts:{TS};"
    )


def test_a_signature_made_with_the_documented_formula_verifies(account):
    expected = hmac.new(
        WEBHOOK_SECRET.encode(),
        f"id:{PAYMENT_ID};request-id:{REQUEST_ID};ts:{TS};".encode(),
        hashlib.sha256,
    ).hexdigest()

    verdict = mp(account).verify_webhook(
        webhook(
            raw("webhook_payment_updated.json"),
            x_signature=f"ts={TS},v1={expected}",
            x_request_id=REQUEST_ID,
        )
    )

    assert verdict is None  # accepted: no WebhookUnauthorized


@pytest.mark.parametrize(
    "data_id", ["ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", "ord01jq4s4ky8hwq6na5pxb65b3d3"]
)
def test_an_alphanumeric_id_verifies_lower_cased_as_documented(account, data_id):
    v1 = documented_v1(data_id.lower(), REQUEST_ID, TS)

    verdict = mp(account).verify_webhook(
        webhook(
            b"{}",
            query={"data.id": data_id, "type": "order"},
            x_signature=f"ts={TS},v1={v1}",
            x_request_id=REQUEST_ID,
        )
    )

    assert verdict is None  # accepted: no WebhookUnauthorized


def test_an_alphanumeric_id_signed_as_received_verifies_too(account):
    data_id = "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"
    v1 = documented_v1(data_id, REQUEST_ID, TS)  # as Mercado Pago's own SDK validators do

    verdict = mp(account).verify_webhook(
        webhook(
            b"{}",
            query={"data.id": data_id},
            x_signature=f"ts={TS},v1={v1}",
            x_request_id=REQUEST_ID,
        )
    )

    assert verdict is None  # accepted: no WebhookUnauthorized


def test_a_notification_without_request_id_is_signed_without_it(account):
    manifest = f"id:{PAYMENT_ID};ts:{TS};"
    v1 = hmac.new(WEBHOOK_SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()

    verdict = mp(account).verify_webhook(
        webhook(raw("webhook_payment_updated.json"), x_signature=f"ts={TS},v1={v1}")
    )

    assert verdict is None  # accepted: no WebhookUnauthorized


def test_an_old_signature_is_refused_when_the_account_sets_a_maximum_age(account, time_machine):
    account.settings = {"webhook_max_age_seconds": 300}
    time_machine.move_to(datetime(2026, 5, 4, 13, 30, tzinfo=UTC), tick=False)  # 15 min later
    request = webhook(
        raw("webhook_payment_updated.json"), x_signature=signature(), x_request_id=REQUEST_ID
    )

    with pytest.raises(WebhookUnauthorized) as caught:
        mp(account).verify_webhook(request)
    assert caught.value.status == 403

    time_machine.move_to(datetime(2026, 5, 4, 13, 16, tzinfo=UTC), tick=False)
    mp(account).verify_webhook(request)  # within 5 minutes


# --- Webhooks through the endpoint ----------------------------------------------------------
def url_for(account, data_id=PAYMENT_ID) -> str:
    # Mercado Pago appends its parameters to the notification_url we gave it.
    return (
        f"/webhooks/mercadopago/{account.webhook_token}/"
        f"?source_news=webhooks&data.id={data_id}&type=payment"
    )


def post(client, account, body: bytes, *, data_id=PAYMENT_ID, **headers):
    return client.post(
        url_for(account, data_id), data=body, content_type="application/json", **headers
    )


def signed(sig=None, request_id=REQUEST_ID) -> dict:
    return {"HTTP_X_SIGNATURE": sig or signature(), "HTTP_X_REQUEST_ID": request_id}


def test_a_webhook_without_signature_gets_401_and_stores_nothing(client, account):
    response = post(
        client, account, raw("webhook_payment_updated.json"), HTTP_X_REQUEST_ID=REQUEST_ID
    )

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize(
    "sig",
    [
        signature(secret="not-the-secret"),
        signature(data_id="1327410520"),  # signed for another payment
        signature(request_id="another-request"),
        f"ts=1777900469,v1={documented_v1(PAYMENT_ID, REQUEST_ID, TS)}",  # ts changed
        f"ts={TS}",
        f"v1={documented_v1(PAYMENT_ID, REQUEST_ID, TS)}",
        "ts=abc,v1=zzz",
        "garbage",
    ],
)
def test_a_webhook_with_a_wrong_signature_gets_403_and_stores_nothing(client, account, sig):
    response = post(client, account, raw("webhook_payment_updated.json"), **signed(sig))

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_a_signature_for_one_payment_does_not_verify_another(client, account):
    response = post(
        client, account, raw("webhook_payment_updated.json"), data_id="1327410520", **signed()
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_account_without_a_webhook_secret_refuses_every_webhook(client, account):
    account.credentials = {"access_token": ACCESS_TOKEN}
    account.save(update_fields=["credentials"])

    response = post(client, account, raw("webhook_payment_updated.json"), **signed())

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_a_signed_webhook_is_stored_once_with_the_query_that_names_the_payment(client, account):
    body = raw("webhook_payment_updated.json")

    response = post(client, account, body, **signed())

    assert response.status_code == 200
    webhook_row = InboundWebhook.objects.get()
    assert webhook_row.account == account
    assert webhook_row.dedupe_key == (
        f"mercadopago:{account.pk}:payment:{PAYMENT_ID}:payment.updated:117396228744"
    )
    assert bytes(webhook_row.body) == body
    assert webhook_row.headers[":query"]["data.id"] == PAYMENT_ID
    assert webhook_row.headers["x-request-id"] == REQUEST_ID


def test_a_replayed_webhook_stores_nothing_new(client, account):
    body = raw("webhook_payment_updated.json")

    first = post(client, account, body, **signed())
    replay = post(client, account, body, **signed())

    assert (first.status_code, replay.status_code) == (200, 200)
    assert InboundWebhook.objects.count() == 1


def test_the_creation_and_the_update_of_a_payment_are_two_notifications(client, account):
    for name in ("webhook_payment_created.json", "webhook_payment_updated.json"):
        assert post(client, account, raw(name), **signed()).status_code == 200

    assert InboundWebhook.objects.count() == 2


# --- Parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fixture", ["webhook_payment_created.json", "webhook_payment_updated.json"]
)
def test_a_payment_notification_only_names_the_payment_to_fetch(account, fixture):
    event = mp(account).parse_webhook(webhook(raw(fixture)))

    assert event.items == [
        PaymentUpdate(gateway_payment_id=PAYMENT_ID, status="pending", fetch_required=True)
    ]
    body = recorded(fixture)
    assert event.dedupe_key == f"payment:{PAYMENT_ID}:{body['action']}:{body['id']}"


def test_the_payment_id_comes_from_the_signed_query_string_not_the_body(account):
    body = recorded("webhook_payment_updated.json")
    body["data"]["id"] = "666"

    (item,) = mp(account).parse_webhook(webhook(json.dumps(body).encode())).items

    assert item.gateway_payment_id == PAYMENT_ID


def test_a_notification_with_only_the_query_string_still_names_the_payment(account):
    (item,) = mp(account).parse_webhook(webhook(b"")).items

    assert (item.gateway_payment_id, item.fetch_required) == (PAYMENT_ID, True)


def test_other_topics_carry_no_payment(account):
    body = {
        "action": "update",
        "api_version": "v1",
        "data": {"id": "27812312312"},
        "date_created": "2026-05-05T13:14:28Z",
        "id": 117396228799,
        "live_mode": False,
        "type": "merchant_order",
        "user_id": "1664124048",
    }
    request = webhook(
        json.dumps(body).encode(), query={"data.id": "27812312312", "type": "merchant_order"}
    )

    assert mp(account).parse_webhook(request).items == []


@pytest.mark.parametrize(
    ("body", "query"),
    [(b"not json", None), (b"[]", None), (b'{"action": "payment.updated"}', {})],
)
def test_a_notification_it_cannot_understand_is_malformed(account, body, query):
    with pytest.raises(WebhookMalformed):
        mp(account).parse_webhook(webhook(body, query=query))
