"""Mercado Pago and billing: a notification only names the payment, which is read
(``GET /v1/payments/{id}``) outside any transaction; a 503 on that read is retried, not
fatal; the hourly reconciliation reads charges still pending past their due date; and an
approved payment of less than the charge leaves the rest owed — replayed offline from
recorded answers (``responses``)."""

import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import responses
from django.db import connection
from responses import matchers

import integrations.payments.mercadopago  # noqa: F401  (registers the adapter)
from billing import services
from billing.choices import PaymentDivergence, PaymentStatus
from billing.models import Payment
from integrations import inbound
from integrations.choices import InboundWebhookStatus
from integrations.models import Event, InboundWebhook, ProviderAccount
from tests.billing.factories import income_booked
from tests.clinic.factories import PatientFactory
from tests.contract.recordings import recordings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
API = "https://api.mercadopago.com"
ACCESS_TOKEN = "TEST-1664124048-cuidar-test-token-5f2e9c"
WEBHOOK_SECRET = "mp-webhook-secret-3c9d1e7a"
ACCOUNT_TOKEN = "4b8f2d6a-1c3e-4f5a-9b7d-0e2f4a6c8e1b"
PAYMENT_ID = "1327410519"
REFERENCE = "pay-7f3a9c2e"
BEARER = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
TS = "1777900468"

raw, recorded = recordings(__file__)


@pytest.fixture(autouse=True)
def after_the_due_date(time_machine):
    time_machine.move_to(datetime(2026, 5, 12, 8, 45, tzinfo=SAO_PAULO), tick=False)


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="payments",
        provider="mercadopago",
        webhook_token=ACCOUNT_TOKEN,
        credentials={"access_token": ACCESS_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )


@pytest.fixture
def payment(account) -> Payment:
    return Payment.objects.create(
        clinic=account.clinic,
        patient=PatientFactory(clinic=account.clinic),
        reference=REFERENCE,
        amount=Decimal("150.90"),
        method="pix",
        gateway="mercadopago",
        gateway_account=account,
        gateway_payment_id=PAYMENT_ID,
        due_date=date(2026, 5, 11),
    )


def notify(client, account):
    """Mercado Pago's notification of the payment, signed as the docs say."""
    manifest = f"id:{PAYMENT_ID};request-id:{REQUEST_ID};ts:{TS};"
    v1 = hmac.new(WEBHOOK_SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return client.post(
        f"/webhooks/mercadopago/{account.webhook_token}/"
        f"?source_news=webhooks&data.id={PAYMENT_ID}&type=payment",
        data=raw("webhook_payment_updated.json"),
        content_type="application/json",
        HTTP_X_SIGNATURE=f"ts={TS},v1={v1}",
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )


def payment_read(status=200, name="payment_approved.json", seen=None):
    def callback(request):
        if seen is not None:
            seen.append(connection.in_atomic_block)
        return (status, {}, raw(name) if status == 200 else b'{"message": "unavailable"}')

    responses.add_callback(
        responses.GET,
        f"{API}/v1/payments/{PAYMENT_ID}",
        callback=callback,
        content_type="application/json",
        match=[matchers.header_matcher(BEARER)],
    )


def test_a_503_on_the_payment_read_is_retried_and_the_payment_is_paid_then(
    client, account, payment, django_capture_on_commit_callbacks
):
    """The issue's case: the read met a 503, the webhook failed for good, and dunning chased
    a patient who had paid."""
    payment_read(status=503)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(client, account).status_code == 200

    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.RECEIVED
    assert (webhook.attempts, "HTTP 503" in webhook.error) == (1, True)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING

    responses.reset()
    payment_read()
    webhook.next_attempt_at = webhook.received_at  # its retry is due
    webhook.save(update_fields=["next_attempt_at"])
    inbound.inbound_webhook_process(webhook_id=webhook.pk)

    webhook.refresh_from_db()
    payment.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert payment.status == PaymentStatus.PAID
    assert Event.objects.filter(event_type="payment.received").count() == 1


def test_an_approved_payment_of_less_than_the_charge_leaves_the_rest_owed(
    client, account, payment, django_capture_on_commit_callbacks
):
    payment_read(name="payment_approved_partial.json")
    with django_capture_on_commit_callbacks(execute=True):
        notify(client, account)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.divergence == PaymentDivergence.UNDERPAID
    assert (payment.amount_received, payment.amount_owed) == (Decimal("1.00"), Decimal("149.90"))
    assert income_booked(payment) == [Decimal("1.00")]


def test_reconciliation_pays_an_approved_payment_whose_notification_was_lost(payment):
    payment_read()

    result = services.payments_reconcile()

    assert (result.asked, result.changed) == (1, 1)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert income_booked(payment) == [Decimal("150.90")]
    assert services.payments_reconcile().asked == 0


@pytest.mark.django_db(transaction=True)
def test_the_payment_is_read_with_no_transaction_open(
    client, account, payment, django_capture_on_commit_callbacks
):
    seen = []
    payment_read(seen=seen)
    notify(client, account)  # real commits: the task runs after them (eager)

    assert seen == [False]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID

    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.PENDING, gateway_checked_at=None
    )
    services.payments_reconcile()
    assert seen == [False, False]
