"""Asaas and billing: the hourly reconciliation reads charges still pending past their due
date (``GET /v3/payments/{id}``), and a notification reporting less than the charge leaves
the rest owed — replayed offline from recorded answers (``responses``)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import responses
from django.utils import timezone
from responses import matchers

import integrations.payments.asaas  # noqa: F401  (registers the adapter)
from billing import services
from billing.choices import PaymentDivergence, PaymentStatus
from billing.models import Payment
from integrations.models import ProviderAccount
from tests.billing.factories import income_booked
from tests.clinic.factories import PatientFactory
from tests.contract.recordings import recordings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
API_KEY = "$aact_hmlg_cuidar-test-key-5f2e9c1a"
WEBHOOK_TOKEN = "asaas-hook-token-7d3e1b90"
BASE = "https://api-sandbox.asaas.com/v3"
PAYMENT_ID = "pay_080225913252"
REFERENCE = "pay-7f3a9c2e"

raw, recorded = recordings(__file__)


@pytest.fixture(autouse=True)
def after_the_due_date(time_machine):
    """The charge was due on 2026-05-11; its notification never arrived."""
    time_machine.move_to(datetime(2026, 5, 12, 8, 45, tzinfo=SAO_PAULO), tick=False)


def asaas_account(clinic, key=API_KEY):
    return ProviderAccount.objects.create(
        clinic=clinic,
        kind="payments",
        provider="asaas",
        credentials={"api_key": key, "webhook_token": WEBHOOK_TOKEN},
    )


def pending_charge(account, *, gateway_payment_id=PAYMENT_ID, reference=REFERENCE) -> Payment:
    return Payment.objects.create(
        clinic=account.clinic,
        patient=PatientFactory(clinic=account.clinic),
        reference=reference,
        amount=Decimal("150.90"),
        method="pix",
        gateway="asaas",
        gateway_account=account,
        gateway_payment_id=gateway_payment_id,
        due_date=date(2026, 5, 11),
    )


@pytest.fixture
def account(clinic_a):
    return asaas_account(clinic_a)


def test_reconciliation_reads_the_charge_and_pays_what_asaas_received(account):
    payment = pending_charge(account)
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        json=recorded("payment_received.json"),
        match=[matchers.header_matcher({"access_token": API_KEY})],
    )

    result = services.payments_reconcile()

    assert (result.asked, result.changed, result.errors) == (1, 1, 0)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert income_booked(payment) == [Decimal("150.90")]
    assert timezone.localdate(payment.paid_at) == date(2026, 5, 5)  # Asaas' payment date


def test_reconciliation_asks_again_only_after_its_interval_and_changes_nothing_twice(account):
    pending_charge(account)
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", json=recorded("payment_pix_created.json"))

    assert services.payments_reconcile().asked == 1
    assert services.payments_reconcile().asked == 0  # asked a moment ago
    assert len(responses.calls) == 1
    later = timezone.now() + services.RECONCILE_EVERY + timedelta(minutes=1)
    assert services.payments_reconcile(now=later).asked == 1


def test_a_gateway_that_is_down_leaves_the_charge_pending_to_be_asked_again(account):
    payment = pending_charge(account)
    responses.get(f"{BASE}/payments/{PAYMENT_ID}", status=503, json={})

    result = services.payments_reconcile()

    assert (result.asked, result.changed, result.errors) == (1, 0, 1)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.gateway_checked_at is not None


def test_charges_not_yet_due_paid_or_at_the_desk_are_not_asked_about(account):
    not_due = pending_charge(account, gateway_payment_id="pay_1", reference="r1")
    not_due.due_date = date(2026, 5, 12)
    not_due.save()
    paid = pending_charge(account, gateway_payment_id="pay_2", reference="r2")
    Payment.objects.filter(pk=paid.pk).update(status=PaymentStatus.PAID)
    desk = pending_charge(account, gateway_payment_id="", reference="r3")
    Payment.objects.filter(pk=desk.pk).update(gateway="manual", gateway_account=None)

    assert services.payments_reconcile().asked == 0
    assert len(responses.calls) == 0


def test_each_clinics_charges_are_read_with_that_clinics_own_account(account, clinic_b):
    other_key = "$aact_hmlg_clinic-b-key-0a1b2c3d"
    mine = pending_charge(account)
    theirs = pending_charge(
        asaas_account(clinic_b, key=other_key), gateway_payment_id="pay_b", reference="ref-b"
    )
    responses.get(
        f"{BASE}/payments/{PAYMENT_ID}",
        json=recorded("payment_received.json"),
        match=[matchers.header_matcher({"access_token": API_KEY})],
    )
    responses.get(
        f"{BASE}/payments/pay_b",
        json={**recorded("payment_pix_created.json"), "id": "pay_b", "externalReference": "ref-b"},
        match=[matchers.header_matcher({"access_token": other_key})],
    )

    assert services.payments_reconcile().asked == 2

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (PaymentStatus.PAID, PaymentStatus.PENDING)


def test_a_received_webhook_of_less_than_the_charge_leaves_the_rest_owed(
    client, account, django_capture_on_commit_callbacks
):
    payment = pending_charge(account)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/webhooks/asaas/{account.webhook_token}/",
            data=raw("webhook_payment_received_partial.json"),
            content_type="application/json",
            HTTP_ASAAS_ACCESS_TOKEN=WEBHOOK_TOKEN,
        )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.divergence == PaymentDivergence.UNDERPAID
    assert (payment.amount_received, payment.amount_owed) == (Decimal("1.00"), Decimal("149.90"))
    assert income_booked(payment) == [Decimal("1.00")]


def test_reconciliation_runs_a_constant_number_of_queries_per_charge(
    account, django_assert_max_num_queries
):
    for i in range(5):
        pending_charge(account, gateway_payment_id=f"pay_{i}", reference=f"ref-{i}")
        responses.get(
            f"{BASE}/payments/pay_{i}",
            json={
                **recorded("payment_received.json"),
                "id": f"pay_{i}",
                "externalReference": f"ref-{i}",
            },
        )

    # Two to pick and claim the batch; per charge paid: its call's log, the lock, the
    # income line, the payment, the event and its deliveries (measured: 10).
    with django_assert_max_num_queries(2 + 10 * 5):
        assert services.payments_reconcile().changed == 5
