"""Asaas (API v3): the wire format of charges, reads, refunds and the health probe, and
Asaas' token-authenticated webhooks through the real endpoint, replayed offline from
recorded requests and answers (``responses`` stubs the network; nothing leaves the test)."""

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from django.utils import timezone
from responses import matchers

import integrations.payments.asaas  # noqa: F401  (registers the adapter)
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
from integrations.models import ExternalCall, InboundWebhook, ProviderAccount
from tests.contract.recordings import recordings

# Every test runs with the network stubbed (tests/contract/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
API_KEY = "$aact_hmlg_cuidar-test-key-5f2e9c1a"
WEBHOOK_TOKEN = "asaas-hook-token-7d3e1b90"
BASE = "https://api-sandbox.asaas.com/v3"
PAYMENT_ID = "pay_080225913252"
AUTH = {"access_token": API_KEY}
PIX_PAYLOAD = (
    "00020101021226800014br.gov.bcb.pix2558pix.asaas.com/qr/cobv/8b1e4c2a-6f3d-4e7b-9a51-"
    "0c2d3e4f5a6b5204000053039865406150.905802BR5917CLINICA ALFA LTDA6009SAO PAULO62070503***"
    "630441D8"
)


raw, recorded = recordings(__file__)


@pytest.fixture(autouse=True)
def today(time_machine):
    """The recordings were made on 2026-05-04 (a week before the charge's due date)."""
    time_machine.move_to(datetime(2026, 5, 4, 10, 21, tzinfo=SAO_PAULO), tick=False)


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="payments",
        provider="asaas",
        settings={},
        credentials={"api_key": API_KEY, "webhook_token": WEBHOOK_TOKEN},
    )


def asaas(account):
    return registry.get("payments", "asaas")(account)


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


def no_pending_payment():
    responses.get(
        f"{BASE}/payments",
        json=recorded("payments_none.json"),
        match=[matchers.query_param_matcher({"externalReference": "pay-7f3a9c2e"})],
    )


def customer_found():
    responses.get(
        f"{BASE}/customers",
        json=recorded("customers_found.json"),
        match=[matchers.query_param_matcher({"cpfCnpj": "52998224725"})],
    )


def calls() -> list[tuple[str, str]]:
    return [(c.request.method, c.request.url.removeprefix(BASE)) for c in responses.calls]


# --- Charging -------------------------------------------------------------------------------
def test_a_pix_charge_creates_the_customer_then_the_payment_and_reads_its_qr_code(account):
    no_pending_payment()
    responses.get(
        f"{BASE}/customers",
        json=recorded("customers_none.json"),
        match=[
            matchers.query_param_matcher({"cpfCnpj": "52998224725"}),
            matchers.header_matcher(AUTH),
        ],
    )
    responses.post(
        f"{BASE}/customers",
        json=recorded("customer_created.json"),
        match=[
            matchers.json_params_matcher(recorded("customer_request.json")),
            matchers.header_matcher(AUTH),
        ],
    )
    responses.post(
        f"{BASE}/payments",
        json=recorded("payment_pix_created.json"),
        match=[
            matchers.json_params_matcher(recorded("payment_request_pix.json")),
            matchers.header_matcher({**AUTH, "User-Agent": "Cuidar/1.0"}),
        ],
    )
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}/pixQrCode",
        json=recorded("pix_qr_code.json"),
        match=[matchers.header_matcher(AUTH)],
    )

    result = asaas(account).charge(consultation())

    assert result.gateway_payment_id == PAYMENT_ID
    assert result.status == "pending"
    assert result.pix_payload == PIX_PAYLOAD
    assert result.pix_qr_base64 == recorded("pix_qr_code.json")["encodedImage"]
    assert result.invoice_url == "https://sandbox.asaas.com/i/080225913252"
    assert result.boleto_url == ""
    assert calls() == [
        ("GET", "/payments?externalReference=pay-7f3a9c2e"),
        ("GET", "/customers?cpfCnpj=52998224725"),
        ("POST", "/customers"),
        ("POST", "/payments"),
        ("GET", f"/payments/{PAYMENT_ID}/pixQrCode"),
    ]


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        (Decimal("150.90"), "150.9"),
        (Decimal("150.9"), "150.9"),
        (Decimal("1234.56"), "1234.56"),
        (Decimal("99.995"), "100.0"),  # rounded half up to centavos, on the Decimal
        (Decimal("0.1") + Decimal("0.2") + Decimal("80"), "80.3"),
    ],
)
def test_the_value_is_a_json_number_with_two_places_at_most(account, amount, wire):
    no_pending_payment()
    customer_found()
    responses.post(f"{BASE}/payments", json=recorded("payment_boleto_created.json"))

    asaas(account).charge(consultation(amount=amount, method="boleto"))

    body = responses.calls[-1].request.body.decode()
    assert f'"value": {wire}' in body
    assert Decimal(str(json.loads(body)["value"])) == amount.quantize(Decimal("0.01"))


def test_an_existing_customer_is_found_by_cpf_and_not_created_again(account):
    no_pending_payment()
    customer_found()
    responses.post(
        f"{BASE}/payments",
        json=recorded("payment_pix_created.json"),
        match=[matchers.json_params_matcher(recorded("payment_request_pix.json"))],
    )
    responses.get(f"{BASE}/payments/{PAYMENT_ID}/pixQrCode", json=recorded("pix_qr_code.json"))

    result = asaas(account).charge(consultation())

    assert result.gateway_payment_id == PAYMENT_ID
    assert ("POST", "/customers") not in calls()


def test_a_retried_charge_reuses_the_pending_payment_of_its_reference_instead_of_billing_twice(
    account,
):
    responses.get(
        f"{BASE}/payments",
        json=recorded("payments_pending_found.json"),
        match=[matchers.query_param_matcher({"externalReference": "pay-7f3a9c2e"})],
    )
    responses.get(f"{BASE}/payments/{PAYMENT_ID}/pixQrCode", json=recorded("pix_qr_code.json"))

    result = asaas(account).charge(consultation())

    assert result.gateway_payment_id == PAYMENT_ID
    assert result.pix_payload == PIX_PAYLOAD
    assert [method for method, _path in calls()] == ["GET", "GET"]


def test_a_boleto_charge_returns_the_bank_slip_and_no_pix_code(account):
    no_pending_payment()
    customer_found()
    responses.post(
        f"{BASE}/payments",
        json=recorded("payment_boleto_created.json"),
        match=[
            matchers.json_params_matcher(
                {**recorded("payment_request_pix.json"), "billingType": "BOLETO"}
            )
        ],
    )

    result = asaas(account).charge(consultation(method="boleto"))

    assert result.gateway_payment_id == "pay_4hk7t2m9q1xz8w3c"
    assert result.boleto_url == "https://sandbox.asaas.com/b/pdf/4hk7t2m9q1xz8w3c"
    assert result.invoice_url == "https://sandbox.asaas.com/i/4hk7t2m9q1xz8w3c"
    assert (result.pix_payload, result.pix_qr_base64) == ("", "")
    assert all("pixQrCode" not in path for _method, path in calls())


@pytest.mark.parametrize(
    ("method", "billing_type"), [("credit_card", "CREDIT_CARD"), ("undefined", "UNDEFINED")]
)
def test_card_and_undefined_charges_let_the_patient_pay_on_the_invoice_page(
    account, method, billing_type
):
    no_pending_payment()
    customer_found()
    responses.post(
        f"{BASE}/payments",
        json={**recorded("payment_pix_created.json"), "billingType": billing_type},
        match=[
            matchers.json_params_matcher(
                {**recorded("payment_request_pix.json"), "billingType": billing_type}
            )
        ],
    )

    result = asaas(account).charge(consultation(method=method))

    assert result.invoice_url == "https://sandbox.asaas.com/i/080225913252"


@pytest.mark.parametrize(
    ("due_date", "sent"),
    [(date(2026, 5, 1), "2026-05-04"), (None, "2026-05-04"), (date(2026, 5, 4), "2026-05-04")],
)
def test_a_past_or_missing_due_date_is_sent_as_today(account, due_date, sent):
    no_pending_payment()
    customer_found()
    responses.post(
        f"{BASE}/payments",
        json=recorded("payment_boleto_created.json"),
        match=[
            matchers.json_params_matcher(
                {**recorded("payment_request_pix.json"), "billingType": "BOLETO", "dueDate": sent}
            )
        ],
    )

    result = asaas(account).charge(consultation(method="boleto", due_date=due_date))

    # The POST matched only with dueDate == today: the charge went through.
    assert result.gateway_payment_id == recorded("payment_boleto_created.json")["id"]


def test_an_unknown_method_is_refused_without_any_call(account):
    with pytest.raises(PermanentProviderError, match="unknown payment method"):
        asaas(account).charge(consultation(method="cheque"))
    assert len(responses.calls) == 0


def test_a_charge_without_api_key_is_refused_without_any_call(account):
    account.credentials = {"webhook_token": WEBHOOK_TOKEN}
    with pytest.raises(PermanentProviderError, match="missing api_key"):
        asaas(account).charge(consultation())
    assert len(responses.calls) == 0


def test_a_production_key_goes_to_the_production_api(account):
    account.credentials = {"api_key": "$aact_prod_cuidar-test-key-0b1c"}
    responses.get(
        f"https://api.asaas.com/v3/payments/{PAYMENT_ID}", json=recorded("payment_received.json")
    )

    assert asaas(account).get_charge(PAYMENT_ID).status == "paid"


def test_a_pix_code_that_cannot_be_read_still_returns_the_created_charge(account):
    no_pending_payment()
    customer_found()
    responses.post(f"{BASE}/payments", json=recorded("payment_pix_created.json"))
    responses.get(f"{BASE}/payments/{PAYMENT_ID}/pixQrCode", status=503)

    result = asaas(account).charge(consultation())

    # The payment exists at Asaas: failing here would let a chain bill the patient twice.
    assert result.gateway_payment_id == PAYMENT_ID
    assert result.pix_payload == ""
    assert result.invoice_url  # the invoice page shows the QR code


# --- Reading --------------------------------------------------------------------------------
def test_get_charge_reads_a_received_payment_with_decimal_amount_and_payment_day(account):
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        json=recorded("payment_received.json"),
        match=[matchers.header_matcher(AUTH)],
    )

    update = asaas(account).get_charge(PAYMENT_ID)

    assert update == PaymentUpdate(
        gateway_payment_id=PAYMENT_ID,
        status="paid",
        amount=Decimal("150.90"),
        paid_at=timezone.make_aware(datetime(2026, 5, 5)),
        external_reference="pay-7f3a9c2e",
    )
    assert isinstance(update.amount, Decimal)


@pytest.mark.parametrize(
    ("asaas_status", "ours"),
    [
        ("PENDING", "pending"),
        ("AWAITING_RISK_ANALYSIS", "pending"),
        ("RECEIVED", "paid"),
        ("CONFIRMED", "paid"),
        ("RECEIVED_IN_CASH", "paid"),
        ("REFUND_REQUESTED", "paid"),
        ("REFUND_IN_PROGRESS", "paid"),
        ("CHARGEBACK_REQUESTED", "paid"),
        ("OVERDUE", "overdue"),
        ("DUNNING_REQUESTED", "overdue"),
        ("REFUNDED", "refunded"),
        ("DELETED", "cancelled"),
        ("SOMETHING_NEW", "pending"),
    ],
)
def test_every_asaas_status_maps_to_ours(account, asaas_status, ours):
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        json={**recorded("payment_received.json"), "status": asaas_status},
    )

    assert asaas(account).get_charge(PAYMENT_ID).status == ours


def test_a_deleted_payment_reads_as_cancelled_whatever_its_last_status(account):
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        json={**recorded("payment_pix_created.json"), "deleted": True},
    )

    update = asaas(account).get_charge(PAYMENT_ID)

    assert (update.status, update.paid_at) == ("cancelled", None)


def test_get_charge_of_a_refunded_payment_says_how_much_went_back(account):
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", json=recorded("payment_refunded.json"))

    update = asaas(account).get_charge(PAYMENT_ID)

    assert update.status == "refunded"
    assert update.refunded_amount == Decimal("150.90")


def test_a_partly_refunded_payment_stays_paid_with_its_refunded_amount(account):
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", json=recorded("payment_partially_refunded.json"))

    update = asaas(account).get_charge(PAYMENT_ID)

    assert (update.status, update.amount, update.refunded_amount) == (
        "paid",
        Decimal("150.90"),
        Decimal("50.90"),
    )


# --- Refunding ------------------------------------------------------------------------------
def test_a_partial_refund_posts_the_value_and_reads_the_refund_done(account):
    responses.post(
        f"{BASE}/payments/{PAYMENT_ID}/refund",
        json=recorded("payment_partially_refunded.json"),
        match=[
            matchers.json_params_matcher(recorded("refund_request_partial.json")),
            matchers.header_matcher(AUTH),
        ],
    )

    result = asaas(account).refund(PAYMENT_ID, Decimal("50.90"))

    assert result.gateway_payment_id == PAYMENT_ID
    assert result.amount == Decimal("50.90")
    assert result.status == "refunded"
    assert b'"value": 50.9' in responses.calls[0].request.body


def test_a_full_refund_posts_no_value_and_stays_pending_while_asaas_processes_it(account):
    responses.post(
        f"{BASE}/payments/{PAYMENT_ID}/refund",
        json=recorded("payment_refund_in_progress.json"),
        match=[matchers.json_params_matcher({})],
    )

    result = asaas(account).refund(PAYMENT_ID)

    assert result.amount == Decimal("150.90")
    assert result.status == "pending"


def test_a_refund_is_never_repeated_inline(account):
    responses.post(f"{BASE}/payments/{PAYMENT_ID}/refund", status=502)

    with pytest.raises(TransientProviderError):
        asaas(account).refund(PAYMENT_ID, Decimal("10.00"))

    assert len(responses.calls) == 1  # no idempotency key at Asaas


def test_a_refund_asaas_cancelled_is_a_permanent_error(account):
    refunded = recorded("payment_partially_refunded.json")
    refunded["refunds"][0]["status"] = "CANCELLED"
    responses.post(f"{BASE}/payments/{PAYMENT_ID}/refund", json=refunded)

    with pytest.raises(PermanentProviderError, match="cancelled the refund"):
        asaas(account).refund(PAYMENT_ID, Decimal("50.90"))


# --- Errors ---------------------------------------------------------------------------------
def test_a_400_is_permanent_and_carries_asaas_own_description(account):
    no_pending_payment()
    customer_found()
    responses.post(f"{BASE}/payments", status=400, json=recorded("error_invalid_value.json"))

    with pytest.raises(PermanentProviderError) as caught:
        asaas(account).charge(consultation(amount=Decimal("3.00"), method="boleto"))

    error = caught.value
    assert error.http_status == 400
    assert "não pode ser menor que R$ 5,00" in str(error)
    assert "(invalid_value)" in str(error)
    assert error.detail == recorded("error_invalid_value.json")
    assert [m for m, p in calls() if p == "/payments"] == ["POST"]


def test_a_bad_api_key_is_permanent_and_never_shows_the_key(account):
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        status=401,
        json=recorded("error_invalid_access_token.json"),
    )

    with pytest.raises(PermanentProviderError) as caught:
        asaas(account).get_charge(PAYMENT_ID)

    assert "invalid API key" in str(caught.value)
    assert "A chave de API fornecida é inválida" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert len(responses.calls) == 1


def test_an_unknown_payment_is_permanent(account):
    responses.get(f"{BASE}/payments/pay_nope", status=404, json=recorded("error_not_found.json"))

    with pytest.raises(PermanentProviderError, match="Cobrança não encontrada"):
        asaas(account).get_charge("pay_nope")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_429_and_5xx_on_a_charge_are_transient_and_the_post_is_not_repeated(account, status):
    no_pending_payment()
    customer_found()
    responses.post(f"{BASE}/payments", status=status, json={"errors": []})

    with pytest.raises(TransientProviderError) as caught:
        asaas(account).charge(consultation())

    assert caught.value.http_status == status
    assert [m for m, p in calls() if p == "/payments"] == ["POST"]


def test_a_read_is_retried_after_a_5xx(account):
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", status=503)
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", json=recorded("payment_received.json"))

    assert asaas(account).get_charge(PAYMENT_ID).status == "paid"
    assert len(responses.calls) == 2


def test_calls_are_logged_without_the_key(account):
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", json=recorded("payment_received.json"))

    asaas(account).get_charge(PAYMENT_ID)

    (logged,) = ExternalCall.objects.all()
    assert (logged.provider, logged.operation, logged.host) == (
        "asaas",
        "get_charge",
        "api-sandbox.asaas.com",
    )
    assert API_KEY not in json.dumps([logged.error_message, logged.error_class])


# --- Health ---------------------------------------------------------------------------------
def test_health_reads_the_balance_with_the_key(account):
    responses.get(
        f"{BASE}/finance/balance",
        json=recorded("balance.json"),
        match=[matchers.header_matcher(AUTH)],
    )

    result = asaas(account).health()

    assert result.ok
    assert "sandbox" in result.detail
    assert "12873" not in result.detail  # the balance is not shown


def test_health_reports_a_bad_key_without_raising(account):
    responses.get(
        f"{BASE}/finance/balance", status=401, json=recorded("error_invalid_access_token.json")
    )

    result = asaas(account).health()

    assert not result.ok
    assert "invalid API key" in result.detail
    assert API_KEY not in result.detail


def test_health_reports_a_timeout_without_raising(account):
    responses.get(f"{BASE}/finance/balance", body=requests.ConnectTimeout("no route"))

    result = asaas(account).health()

    assert not result.ok
    assert len(responses.calls) == 1  # a probe is not retried


def test_health_without_a_key_makes_no_call(account):
    account.credentials = {}

    result = asaas(account).health()

    assert not result.ok
    assert "api_key" in result.detail
    assert len(responses.calls) == 0


def test_health_reports_a_bad_environment_setting_without_raising(account):
    account.settings = {"environment": "homologacao"}

    result = asaas(account).health()

    assert not result.ok
    assert "homologacao" in result.detail


# --- Webhooks through the endpoint ----------------------------------------------------------
def url_for(account) -> str:
    return f"/webhooks/asaas/{account.webhook_token}/"


def post(client, account, body: bytes, token: str | None = WEBHOOK_TOKEN):
    headers = {} if token is None else {"HTTP_ASAAS_ACCESS_TOKEN": token}
    return client.post(url_for(account), data=body, content_type="application/json", **headers)


def test_a_webhook_without_the_token_gets_401_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_payment_received.json"), token=None)

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize(
    "token", ["not-the-token", WEBHOOK_TOKEN + "x", WEBHOOK_TOKEN.upper(), API_KEY, "çççç"]
)
def test_a_webhook_with_a_wrong_token_gets_403_and_stores_nothing(client, account, token):
    response = post(client, account, raw("webhook_payment_received.json"), token=token)

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_account_without_a_webhook_token_refuses_every_webhook(client, account):
    account.credentials = {"api_key": API_KEY}
    account.save(update_fields=["credentials"])

    response = post(client, account, raw("webhook_payment_received.json"), token="anything")

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_authentic_webhook_is_stored_once_keyed_by_the_event_id(client, account):
    body = raw("webhook_payment_received.json")

    response = post(client, account, body)

    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.account == account
    assert webhook.provider == "asaas"
    assert webhook.dedupe_key == (
        f"asaas:{account.pk}:evt_6e1f3b2a9c8d47f0b5a4e3d2c1b0a998&368604921"
    )
    assert bytes(webhook.body) == body
    assert "asaas-access-token" not in webhook.headers  # a credential is never stored
    assert WEBHOOK_TOKEN not in json.dumps(webhook.headers)


def test_a_replayed_webhook_stores_nothing_new(client, account):
    body = raw("webhook_payment_received.json")

    first = post(client, account, body)
    replay = post(client, account, body)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert InboundWebhook.objects.count() == 1


def test_each_event_of_a_payment_is_stored(client, account):
    for name in ("webhook_payment_created.json", "webhook_payment_received.json"):
        assert post(client, account, raw(name)).status_code == 200

    assert InboundWebhook.objects.count() == 2


def test_a_webhook_to_another_providers_url_is_not_found(client, account):
    response = client.post(
        f"/webhooks/mercadopago/{account.webhook_token}/",
        data=raw("webhook_payment_received.json"),
        content_type="application/json",
        HTTP_ASAAS_ACCESS_TOKEN=WEBHOOK_TOKEN,
    )

    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0


# --- Parsing recorded webhooks --------------------------------------------------------------
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


def parse(account, name: str):
    return asaas(account).parse_webhook(webhook(raw(name)))


def midnight(day: int) -> datetime:
    return timezone.make_aware(datetime(2026, 5, day))


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "webhook_payment_created.json",
            PaymentUpdate(PAYMENT_ID, "pending", Decimal("150.90"), None, "pay-7f3a9c2e"),
        ),
        (
            "webhook_payment_received.json",
            PaymentUpdate(PAYMENT_ID, "paid", Decimal("150.90"), midnight(5), "pay-7f3a9c2e"),
        ),
        (
            "webhook_payment_confirmed.json",
            PaymentUpdate(
                "pay_cc7t5n2k8r4m1q9z", "paid", Decimal("150.90"), midnight(5), "pay-7f3a9c2e"
            ),
        ),
        (
            "webhook_payment_overdue.json",
            PaymentUpdate(
                "pay_4hk7t2m9q1xz8w3c", "overdue", Decimal("150.90"), None, "pay-7f3a9c2e"
            ),
        ),
        (
            "webhook_payment_deleted.json",
            PaymentUpdate(
                "pay_4hk7t2m9q1xz8w3c", "cancelled", Decimal("150.90"), None, "pay-7f3a9c2e"
            ),
        ),
        (
            "webhook_payment_refunded.json",
            PaymentUpdate(
                PAYMENT_ID,
                "refunded",
                Decimal("150.90"),
                midnight(5),
                "pay-7f3a9c2e",
                refunded_amount=Decimal("150.90"),
            ),
        ),
    ],
)
def test_each_recorded_payment_event_becomes_one_payment_update(account, fixture, expected):
    event = parse(account, fixture)

    assert event.items == [expected]
    assert event.dedupe_key == recorded(fixture)["id"]
    assert not event.items[0].fetch_required  # Asaas sends the whole payment


def test_a_deleted_event_is_cancelled_even_if_the_payment_still_reads_pending(account):
    body = recorded("webhook_payment_deleted.json")
    body["payment"]["deleted"] = False  # older payloads: only the event says it

    (item,) = asaas(account).parse_webhook(webhook(json.dumps(body).encode())).items

    assert item.status == "cancelled"


def test_events_about_other_things_carry_no_payment(account):
    event = parse(account, "webhook_transfer_done.json")

    assert event.items == []
    assert event.dedupe_key == "evt_1e6f7a8b9c0d41e2f3a4b5c6d7e8f9a0&368604926"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "evt_1", "payment": {"id": "pay_1"}}',
        b'{"id": "evt_1", "event": "PAYMENT_RECEIVED"}',
        b'{"id": "evt_1", "event": "PAYMENT_RECEIVED", "payment": {"status": "RECEIVED"}}',
    ],
)
def test_a_body_it_cannot_understand_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        asaas(account).parse_webhook(webhook(body))
