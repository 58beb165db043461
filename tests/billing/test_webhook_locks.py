"""No lock and no transaction is held while a gateway is waited on: a Mercado Pago lookup
that hangs until its timeout holds nothing that another webhook, the desk or an operator
needs (PostgreSQL, real transactions and threads)."""

import threading
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, connections

import integrations.payments.mercadopago  # noqa: F401  (registers the adapter)
from billing.choices import PaymentStatus, TransactionKind
from billing.models import FinancialTransaction, Payment
from integrations import inbound
from integrations.base import PaymentUpdate
from integrations.choices import InboundWebhookStatus
from integrations.models import Event, InboundWebhook, ProviderAccount
from integrations.payments.mercadopago import MercadoPagoPayments
from tests.clinic.factories import PatientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PAYMENT_ID = "1327410519"


def stored_notification(account, number: int) -> InboundWebhook:
    body = (
        f'{{"id": {number}, "type": "payment", "action": "payment.updated",'
        f' "data": {{"id": "{PAYMENT_ID}"}}}}'
    ).encode()
    return InboundWebhook.objects.create(
        clinic=account.clinic,
        account=account,
        provider="mercadopago",
        headers={inbound.QUERY_KEY: {"data.id": PAYMENT_ID, "type": "payment"}},
        body=body,
        content_type="application/json",
        dedupe_key=f"mercadopago:{account.pk}:payment:{PAYMENT_ID}:{number}",
    )


def in_thread(func, *args):
    """Run ``func`` on its own database connection; its outcome (or error) in ``box``."""
    box = {}

    def run():
        try:
            box["result"] = func(*args)
        except BaseException as exc:  # handed back to the test
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def idle_in_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_hanging_gateway_lookup_holds_no_lock_while_another_webhook_is_processed(clinic_a):
    account = ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="payments",
        provider="mercadopago",
        credentials={"access_token": "TEST-x", "webhook_secret": "s"},
    )
    payment = Payment.objects.create(
        clinic=clinic_a,
        patient=PatientFactory(clinic=clinic_a),
        amount=Decimal("150.90"),
        method="pix",
        gateway="mercadopago",
        gateway_account=account,
        gateway_payment_id=PAYMENT_ID,
    )
    slow, fast = stored_notification(account, 1), stored_notification(account, 2)
    approved = PaymentUpdate(
        gateway_payment_id=PAYMENT_ID,
        status="paid",
        amount=Decimal("150.90"),
        external_reference=payment.reference,
    )
    entered, release = threading.Event(), threading.Event()
    hung = []

    def get_charge(self, gateway_payment_id):
        if not hung:  # the first lookup hangs (a gateway slow until our read timeout)
            hung.append(connection.in_atomic_block)
            entered.set()
            release.wait(timeout=30)
        return approved

    with mock.patch.object(MercadoPagoPayments, "get_charge", get_charge):
        waiting, waiting_box = in_thread(
            lambda: inbound.inbound_webhook_process(webhook_id=slow.pk)
        )
        try:
            assert entered.wait(timeout=10)
            assert hung == [False]  # no transaction open in the hanging worker
            assert idle_in_transaction() == 0  # nor any connection left idle in one

            # The other notification of the same payment goes through meanwhile …
            other, other_box = in_thread(
                lambda: inbound.inbound_webhook_process(webhook_id=fast.pk)
            )
            other.join(timeout=10)
            assert not other.is_alive(), "processing waited on the hanging lookup"
            assert "error" not in other_box
            fast.refresh_from_db()
            payment.refresh_from_db()
            assert fast.status == InboundWebhookStatus.PROCESSED
            assert payment.status == PaymentStatus.PAID

            # … and the waiting webhook's own row is free (admin, sweeper, a redelivery).
            def lock_it():
                from django.db import transaction

                with transaction.atomic():
                    InboundWebhook.objects.select_for_update(nowait=True).get(pk=slow.pk)

            locker, locker_box = in_thread(lock_it)
            locker.join(timeout=10)
            assert "error" not in locker_box, locker_box.get("error")
        finally:
            release.set()
            waiting.join(timeout=30)

    assert "error" not in waiting_box
    slow.refresh_from_db()
    assert slow.status == InboundWebhookStatus.PROCESSED
    assert Event.objects.filter(event_type="payment.received").count() == 1
    income = FinancialTransaction.objects.filter(payment=payment, kind=TransactionKind.INCOME)
    assert [line.amount for line in income] == [Decimal("150.90")]
