"""PagBank (Orders API, PIX): the wire format of orders, reads, refunds and the health probe,
and PagBank's token-hashed notifications through the real endpoint, replayed offline from
recorded requests and answers (``responses`` stubs the network; nothing leaves the test)."""

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from responses import matchers

import integrations.payments.pagbank  # noqa: F401  (registers the adapter)
from integrations import registry
from integrations.base import (
    ChargeRequest,
    Customer,
    PaymentUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookMalformed,
    WebhookRequest,
)
from integrations.models import InboundWebhook, ProviderAccount
from integrations.payments.pagbank import authenticity_token
from tests.contract.recordings import recordings

# Every test runs with the network stubbed (tests/contract/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
BASE = "https://sandbox.api.pagseguro.com"
TOKEN = "pagbank-token-9e2f41c7-5a3b-4d8e-b6c1-0f7a2e9d3b58"
ACCOUNT_TOKEN = "7c1e9a3f-2b4d-4e6f-8a0c-1d3e5f7a9b2c"  # the account's webhook_token
PUBLIC_URL = "https://clinica.example"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ORDER_ID = "ORDE_9BBD677F-863E-4D46-BAAF-2EECEE49FF31"
CHARGE_ID = "CHAR_4D7CED5B-026D-47D5-99DE-5424DA30E0C4"
PIX_PAYLOAD = (
    "00020101021226830014br.gov.bcb.pix2561api.pagseguro.com/pix/v2/9E13BFE1-35C3-4DFD-B499-"
    "9B110AC0E1BA5204000053039865406150.905802BR5917CLINICA ALFA LTDA6009SAO PAULO62070503***"
    "63042D63"
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
        provider="pagbank",
        webhook_token=ACCOUNT_TOKEN,
        settings={"environment": "sandbox"},
        credentials={"token": TOKEN},
    )


def pagbank(account):
    return registry.get("payments", "pagbank")(account)


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
def test_a_pix_charge_posts_an_order_with_a_qr_code_in_centavos_and_reads_its_text(account):
    responses.post(
        f"{BASE}/orders",
        status=201,
        json=recorded("order_created_pix.json"),
        match=[
            matchers.json_params_matcher(recorded("order_request_pix.json")),
            matchers.header_matcher(BEARER),
        ],
    )

    result = pagbank(account).charge(consultation())

    assert result.gateway_payment_id == ORDER_ID
    assert result.status == "pending"
    assert result.pix_payload == PIX_PAYLOAD
    assert result.invoice_url == (f"{BASE}/qrcode/QRCO_9E13BFE1-35C3-4DFD-B499-9B110AC0E1BA/png")
    assert result.boleto_url == ""


@pytest.mark.parametrize(
    ("amount", "centavos"),
    [
        (Decimal("150.90"), 15090),
        (Decimal("150.9"), 15090),
        (Decimal("1234.56"), 123456),
        (Decimal("0.1") + Decimal("0.2"), 30),
        (Decimal("99.995"), 10000),  # rounded half up, on the Decimal
        (Decimal("7"), 700),
    ],
)
def test_amounts_go_as_integer_centavos(account, amount, centavos):
    responses.post(f"{BASE}/orders", status=201, json=recorded("order_created_pix.json"))

    pagbank(account).charge(consultation(amount=amount))

    body = sent_json()
    assert body["qr_codes"][0]["amount"] == {"value": centavos}
    assert body["items"][0]["unit_amount"] == centavos
    assert f'"value": {centavos}}}'.encode() in responses.calls[0].request.body


@pytest.mark.parametrize(
    "failure", [{"status": 502}, {"status": 429}, {"body": requests.ConnectTimeout("slow")}]
)
def test_an_order_is_never_posted_twice_inline(account, failure):
    responses.post(f"{BASE}/orders", **failure)

    with pytest.raises(TransientProviderError):
        pagbank(account).charge(consultation())

    assert len(responses.calls) == 1  # PagBank takes no idempotency key


def test_an_undefined_method_is_charged_as_pix(account):
    responses.post(f"{BASE}/orders", status=201, json=recorded("order_created_pix.json"))

    assert pagbank(account).charge(consultation(method="undefined")).pix_payload == PIX_PAYLOAD


@pytest.mark.parametrize("due_date", [date(2026, 5, 3), date(2026, 5, 4), None])
def test_a_due_date_not_after_today_leaves_the_expiry_to_pagbank(account, due_date):
    responses.post(f"{BASE}/orders", status=201, json=recorded("order_created_pix.json"))

    pagbank(account).charge(consultation(due_date=due_date))

    assert sent_json()["qr_codes"] == [{"amount": {"value": 15090}}]


def test_no_notification_url_is_sent_from_a_non_public_address(account, settings):
    settings.CUIDAR_PUBLIC_URL = "http://127.0.0.1:8000"
    responses.post(f"{BASE}/orders", status=201, json=recorded("order_created_pix.json"))

    pagbank(account).charge(consultation())

    assert "notification_urls" not in sent_json()


def test_production_is_the_default_environment(account):
    account.settings = {}
    responses.get(f"https://api.pagseguro.com/orders/{ORDER_ID}", json=recorded("order_paid.json"))

    assert pagbank(account).get_charge(ORDER_ID).status == "paid"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"method": "boleto"}, "only PIX"),
        ({"method": "credit_card"}, "only PIX"),
        ({"amount": Decimal("0.004")}, "positive"),
    ],
)
def test_a_charge_it_cannot_make_is_refused_without_any_call(account, kwargs, says):
    with pytest.raises(PermanentProviderError, match=says):
        pagbank(account).charge(consultation(**kwargs))
    assert len(responses.calls) == 0


# --- Reading --------------------------------------------------------------------------------
def test_get_charge_reads_a_paid_order_with_decimal_amount_and_paid_time(account):
    responses.get(
        f"{BASE}/orders/{ORDER_ID}",
        json=recorded("order_paid.json"),
        match=[matchers.header_matcher(BEARER)],
    )

    update = pagbank(account).get_charge(ORDER_ID)

    assert update == PaymentUpdate(
        gateway_payment_id=ORDER_ID,
        status="paid",
        amount=Decimal("150.90"),
        paid_at=datetime(2026, 5, 5, 13, 14, 27, 966000, tzinfo=UTC),
        external_reference="pay-7f3a9c2e",
    )


def test_an_order_not_paid_yet_is_pending_for_the_qr_codes_amount(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_created_pix.json"))

    update = pagbank(account).get_charge(ORDER_ID)

    assert (update.status, update.amount, update.paid_at) == ("pending", Decimal("150.90"), None)


@pytest.mark.parametrize(
    ("charge_status", "paid", "ours"),
    [
        ("PAID", 15090, "paid"),
        ("WAITING", 0, "pending"),
        ("IN_ANALYSIS", 0, "pending"),
        ("AUTHORIZED", 0, "pending"),
        ("DECLINED", 0, "failed"),
        ("CANCELED", 0, "cancelled"),
        ("CANCELED", 15090, "refunded"),  # cancelling a paid charge gives the money back
    ],
)
def test_every_charge_status_maps_to_ours(account, charge_status, paid, ours):
    order = recorded("order_paid.json")
    charge = order["charges"][0]
    charge["status"] = charge_status
    charge["amount"]["summary"] = {"total": 15090, "paid": paid, "refunded": 0}
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=order)

    assert pagbank(account).get_charge(ORDER_ID).status == ours


@pytest.mark.parametrize(
    ("fixture", "status", "refunded"),
    [
        ("order_partially_refunded.json", "paid", Decimal("50.90")),
        ("order_refunded.json", "refunded", Decimal("150.90")),
    ],
)
def test_get_charge_reports_the_amount_refunded_so_far(account, fixture, status, refunded):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded(fixture))

    update = pagbank(account).get_charge(ORDER_ID)

    assert (update.status, update.amount, update.refunded_amount) == (
        status,
        Decimal("150.90"),
        refunded,
    )


# --- Refunding ------------------------------------------------------------------------------
def test_a_partial_refund_cancels_part_of_the_orders_paid_charge_in_centavos(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_paid.json"))
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel",
        json=recorded("charge_partially_refunded.json"),
        match=[
            matchers.json_params_matcher(recorded("cancel_request_partial.json")),
            matchers.header_matcher(BEARER),
        ],
    )

    result = pagbank(account).refund(ORDER_ID, Decimal("50.90"))

    assert result.gateway_payment_id == ORDER_ID
    assert result.amount == Decimal("50.90")
    assert result.status == "refunded"


def test_a_full_refund_cancels_what_is_left_of_the_charge(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_paid.json"))
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel",
        json=recorded("charge_cancelled.json"),
        match=[matchers.json_params_matcher(recorded("cancel_request_full.json"))],
    )

    result = pagbank(account).refund(ORDER_ID)

    assert (result.amount, result.status) == (Decimal("150.90"), "refunded")


def test_a_full_refund_after_a_partial_one_gives_back_the_rest(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_partially_refunded.json"))
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel",
        json=recorded("charge_cancelled.json"),
        match=[matchers.json_params_matcher({"amount": {"value": 10000}})],
    )

    assert pagbank(account).refund(ORDER_ID).amount == Decimal("100.00")


def test_a_refund_not_processed_yet_is_pending(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_paid.json"))
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel", json=recorded("order_paid.json")["charges"][0]
    )

    assert pagbank(account).refund(ORDER_ID, Decimal("50.90")).status == "pending"


def test_a_second_partial_refund_not_processed_yet_is_pending_despite_the_first(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_partially_refunded.json"))
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel",
        json=recorded("charge_partially_refunded.json"),  # still only the first 50.90
        match=[matchers.json_params_matcher({"amount": {"value": 2000}})],
    )

    result = pagbank(account).refund(ORDER_ID, Decimal("20.00"))

    assert (result.amount, result.status) == (Decimal("20.00"), "pending")


def test_a_charge_id_is_refunded_without_reading_the_order(account):
    responses.post(
        f"{BASE}/charges/{CHARGE_ID}/cancel",
        json=recorded("charge_partially_refunded.json"),
        match=[matchers.json_params_matcher(recorded("cancel_request_partial.json"))],
    )

    result = pagbank(account).refund(CHARGE_ID, Decimal("50.90"))

    assert result.amount == Decimal("50.90")
    assert len(responses.calls) == 1


def test_an_order_without_a_paid_charge_has_nothing_to_refund(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_created_pix.json"))

    with pytest.raises(PermanentProviderError, match="no paid charge"):
        pagbank(account).refund(ORDER_ID)

    assert [c.request.method for c in responses.calls] == ["GET"]


def test_a_refund_is_never_repeated_inline(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_paid.json"))
    responses.post(f"{BASE}/charges/{CHARGE_ID}/cancel", status=503)

    with pytest.raises(TransientProviderError):
        pagbank(account).refund(ORDER_ID, Decimal("50.90"))

    assert [c.request.method for c in responses.calls] == ["GET", "POST"]


# --- Errors ---------------------------------------------------------------------------------
def test_a_400_is_permanent_and_names_pagbanks_code_and_parameter(account):
    responses.post(f"{BASE}/orders", status=400, json=recorded("error_invalid_parameter.json"))

    with pytest.raises(PermanentProviderError) as caught:
        pagbank(account).charge(consultation())

    error = caught.value
    assert error.http_status == 400
    assert "invalid_parameter (customer.tax_id)" in str(error)
    assert "(40002)" in str(error)


def test_a_bad_token_is_permanent_and_never_shown(account):
    responses.get(f"{BASE}/orders/{ORDER_ID}", status=401, json=recorded("error_unauthorized.json"))

    with pytest.raises(PermanentProviderError) as caught:
        pagbank(account).get_charge(ORDER_ID)

    assert "Invalid credential" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_an_account_not_allowed_into_the_orders_api_is_permanent(account):
    responses.post(f"{BASE}/orders", status=403, json=recorded("error_access_denied.json"))

    with pytest.raises(PermanentProviderError, match="whitelist access required"):
        pagbank(account).charge(consultation())


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_on_a_read_are_transient_after_retries(account, status):
    responses.get(f"{BASE}/orders/{ORDER_ID}", status=status)

    with pytest.raises(TransientProviderError) as caught:
        pagbank(account).get_charge(ORDER_ID)

    assert caught.value.http_status == status
    assert len(responses.calls) == 3


# --- Health ---------------------------------------------------------------------------------
def test_health_reads_the_card_public_key_with_the_token(account):
    responses.get(
        f"{BASE}/public-keys/card",
        json=recorded("public_key.json"),
        match=[matchers.header_matcher(BEARER)],
    )

    result = pagbank(account).health()

    assert result.ok
    assert "sandbox" in result.detail


def test_health_is_ok_for_an_account_that_never_created_a_public_key(account):
    responses.get(f"{BASE}/public-keys/card", status=404, json={"error_messages": []})

    assert pagbank(account).health().ok


def test_health_reports_a_bad_token_without_raising(account):
    responses.get(f"{BASE}/public-keys/card", status=401, json=recorded("error_unauthorized.json"))

    result = pagbank(account).health()

    assert not result.ok
    assert "Invalid credential" in result.detail
    assert TOKEN not in result.detail


def test_health_without_a_token_makes_no_call(account):
    account.credentials = {}

    result = pagbank(account).health()

    assert not result.ok
    assert "token" in result.detail
    assert len(responses.calls) == 0


# --- The authenticity token -----------------------------------------------------------------
def documented_token(body: bytes, token: str = TOKEN) -> str:
    """The docs' formula, written out here independently of the adapter."""
    return hashlib.sha256(f"{token}-".encode() + body).hexdigest()


def test_the_authenticity_token_is_the_sha256_of_token_hyphen_raw_body():
    body = raw("webhook_order_paid.json")

    assert authenticity_token(TOKEN, body) == documented_token(body)
    assert authenticity_token("abc", b"{}") == hashlib.sha256(b"abc-{}").hexdigest()


# --- Notifications through the endpoint -----------------------------------------------------
def url_for(account) -> str:
    return f"/webhooks/pagbank/{account.webhook_token}/"


def post(client, account, body: bytes, signature: str | None = None):
    headers = {} if signature is None else {"HTTP_X_AUTHENTICITY_TOKEN": signature}
    return client.post(url_for(account), data=body, content_type="application/json", **headers)


def test_a_notification_without_the_authenticity_token_gets_401_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_order_paid.json"))

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: documented_token(body, token="not-the-token"),
        lambda body: documented_token(body + b" "),
        lambda body: documented_token(json.dumps(json.loads(body)).encode()),  # re-serialised
        lambda body: hashlib.sha256(TOKEN.encode() + body).hexdigest(),  # no hyphen
        lambda body: TOKEN,
        lambda body: "zz",
    ],
)
def test_a_notification_with_a_wrong_authenticity_token_gets_403_and_stores_nothing(
    client, account, forge
):
    body = raw("webhook_order_paid.json")

    response = post(client, account, body, forge(body))

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_authentic_notification_is_stored_once(client, account):
    body = raw("webhook_order_paid.json")

    response = post(client, account, body, documented_token(body))

    assert response.status_code == 200
    webhook_row = InboundWebhook.objects.get()
    assert webhook_row.account == account
    assert webhook_row.dedupe_key == f"pagbank:{account.pk}:{ORDER_ID}:{CHARGE_ID}:PAID:0"
    assert bytes(webhook_row.body) == body
    assert "x-authenticity-token" not in webhook_row.headers


def test_the_hex_digest_is_accepted_in_upper_case(client, account):
    body = raw("webhook_order_paid.json")

    assert post(client, account, body, documented_token(body).upper()).status_code == 200


def test_a_replayed_notification_stores_nothing_new(client, account):
    body = raw("webhook_order_paid.json")

    first = post(client, account, body, documented_token(body))
    replay = post(client, account, body, documented_token(body))

    assert (first.status_code, replay.status_code) == (200, 200)
    assert InboundWebhook.objects.count() == 1


def test_the_payment_and_the_refund_of_an_order_are_two_notifications(client, account):
    for name in ("webhook_order_paid.json", "webhook_order_refunded.json"):
        body = raw(name)
        assert post(client, account, body, documented_token(body)).status_code == 200

    assert InboundWebhook.objects.count() == 2


# --- Parsing --------------------------------------------------------------------------------
def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="",
        subpath="",
        headers={"content-type": "application/json"},
        query={},
        body=body,
        content_type="application/json",
    )


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "webhook_order_paid.json",
            PaymentUpdate(
                ORDER_ID,
                "paid",
                Decimal("150.90"),
                datetime(2026, 5, 5, 13, 14, 27, 966000, tzinfo=UTC),
                "pay-7f3a9c2e",
            ),
        ),
        (
            "webhook_order_refunded.json",
            PaymentUpdate(
                ORDER_ID,
                "refunded",
                Decimal("150.90"),
                datetime(2026, 5, 5, 13, 14, 27, 966000, tzinfo=UTC),
                "pay-7f3a9c2e",
                refunded_amount=Decimal("150.90"),
            ),
        ),
    ],
)
def test_each_recorded_notification_becomes_one_payment_update(account, fixture, expected):
    event = pagbank(account).parse_webhook(webhook(raw(fixture)))

    assert event.items == [expected]
    assert not event.items[0].fetch_required  # PagBank sends the whole order


def test_a_bare_charge_notification_names_no_order_of_ours(account):
    body = json.dumps(recorded("charge_cancelled.json")).encode()

    event = pagbank(account).parse_webhook(webhook(body))

    assert event.items == []
    assert event.dedupe_key == f"{CHARGE_ID}:CANCELED"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "something-else"}', b"{}"])
def test_a_notification_it_cannot_understand_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        pagbank(account).parse_webhook(webhook(body))
