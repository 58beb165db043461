"""PagBank and billing: the hourly reconciliation reads orders still pending past their due
date (``GET /orders/{id}``), and an order notification whose paid charge is less than the
charge leaves the rest owed — replayed offline from recorded answers (``responses``)."""

import hashlib
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import responses
from responses import matchers

import integrations.payments.pagbank  # noqa: F401  (registers the adapter)
from billing import services
from billing.choices import PaymentDivergence, PaymentStatus
from billing.models import Payment
from integrations.models import ProviderAccount
from tests.billing.factories import income_booked
from tests.clinic.factories import PatientFactory
from tests.contract.recordings import recordings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
BASE = "https://sandbox.api.pagseguro.com"
TOKEN = "pagbank-token-9e2f41c7-5a3b-4d8e-b6c1-0f7a2e9d3b58"
ACCOUNT_TOKEN = "7c1e9a3f-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
ORDER_ID = "ORDE_9BBD677F-863E-4D46-BAAF-2EECEE49FF31"
REFERENCE = "pay-7f3a9c2e"

raw, recorded = recordings(__file__)


@pytest.fixture(autouse=True)
def after_the_due_date(time_machine):
    time_machine.move_to(datetime(2026, 5, 12, 8, 45, tzinfo=SAO_PAULO), tick=False)


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


@pytest.fixture
def payment(account) -> Payment:
    return Payment.objects.create(
        clinic=account.clinic,
        patient=PatientFactory(clinic=account.clinic),
        reference=REFERENCE,
        amount=Decimal("150.90"),
        method="pix",
        gateway="pagbank",
        gateway_account=account,
        gateway_payment_id=ORDER_ID,
        due_date=date(2026, 5, 11),
    )


def test_reconciliation_reads_the_order_and_pays_its_paid_charge(payment):
    responses.get(
        f"{BASE}/orders/{ORDER_ID}",
        json=recorded("order_paid.json"),
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )

    result = services.payments_reconcile()

    assert (result.asked, result.changed, result.errors) == (1, 1, 0)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert income_booked(payment) == [Decimal("150.90")]


def test_an_order_still_waiting_stays_pending(payment):
    responses.get(f"{BASE}/orders/{ORDER_ID}", json=recorded("order_created_pix.json"))

    assert services.payments_reconcile().changed == 0
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_an_unknown_order_is_noted_on_the_payment_and_not_retried_in_a_loop(payment):
    responses.get(
        f"{BASE}/orders/{ORDER_ID}", status=404, json={"error_messages": [{"code": "NOT_FOUND"}]}
    )

    assert services.payments_reconcile().errors == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert "404" in payment.last_error
    assert services.payments_reconcile().asked == 0


def test_a_notification_whose_paid_charge_is_less_leaves_the_rest_owed(
    client, account, payment, django_capture_on_commit_callbacks
):
    body = raw("webhook_order_paid_partial.json")
    signature = hashlib.sha256(f"{TOKEN}-".encode() + body).hexdigest()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/webhooks/pagbank/{account.webhook_token}/",
            data=body,
            content_type="application/json",
            HTTP_X_AUTHENTICITY_TOKEN=signature,
        )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.divergence == PaymentDivergence.UNDERPAID
    assert (payment.amount_received, payment.amount_owed) == (Decimal("1.00"), Decimal("149.90"))
    assert income_booked(payment) == [Decimal("1.00")]
