"""Gateway notifications turned into payment changes, and the periodic reconciliation that
asks the gateways about charges whose notification may have been lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.base import (
    PaymentUpdate,
    ProviderError,
)
from integrations.events import publish

from ..choices import (
    Gateway,
    PaymentDivergence,
)
from ..models import (
    Payment,
)
from ..money import money
from .common import P, _income, _mark_paid, _move, _payload, _receive_part, logger
from .payments import _refund_record


# --- Gateway notifications ------------------------------------------------------------------
def payment_for_update(*, clinic_id: int, update: PaymentUpdate) -> Payment | None:
    """The clinic's payment a gateway notification is about: by our reference, else by the
    gateway's id."""
    payments = Payment.objects.for_clinic(clinic_id).select_for_update()
    if update.external_reference:
        found = payments.filter(reference=update.external_reference).first()
        if found is not None:
            return found
    if update.gateway_payment_id:
        return payments.filter(gateway_payment_id=update.gateway_payment_id).first()
    return None


@transaction.atomic
def payment_apply_update(*, clinic_id: int, update: PaymentUpdate) -> Payment | None:
    """Make our payment agree with what the gateway says, whatever order its events come
    in: paid once (a replay changes nothing), never back from paid to pending, failed or
    overdue; refunds only grow. Unknown payments are ignored (logged)."""
    payment = payment_for_update(clinic_id=clinic_id, update=update)
    if payment is None:
        logger.info("gateway update for an unknown payment: %s", update.gateway_payment_id)
        return None
    return _apply_update(payment, update)


def _apply_update(payment: Payment, update: PaymentUpdate) -> Payment:
    """``payment_apply_update`` on the locked payment the update is about."""
    status = update.status
    # What the gateway says arrived (the charge's amount when it does not say).
    received = money(update.amount) if update.amount is not None else None
    if status == "paid":
        if payment.status in (P.PENDING, P.FAILED):
            if received is not None and received < payment.amount:
                _receive_part(payment, received=received, when=update.paid_at)
            else:
                _mark_paid(payment, paid_at=update.paid_at, received=received)
        elif (
            payment.status == P.PAID
            and received is not None
            and _income(payment, received=received, when=update.paid_at or timezone.now())
        ):
            # More arrived after the payment was paid: booked, and flagged.
            payment.divergence = PaymentDivergence.OVERPAID
            payment.save(update_fields=["amount_received", "divergence", "updated_at"])
    elif status == "refunded":
        if payment.status == P.PENDING:
            if received is not None and received < payment.amount:
                _receive_part(payment, received=received, when=update.paid_at)
                return payment  # a refund of a part: the desk sorts it out (flagged)
            _mark_paid(payment, paid_at=update.paid_at, received=received)  # "paid" got lost
        if payment.status == P.PAID:
            refunded = money(
                update.refunded_amount if update.refunded_amount is not None else payment.amount
            )
            extra = refunded - payment.refunded_amount
            if extra > 0:
                _refund_record(payment, extra, reason="gateway")
    elif status == "failed":
        if payment.status == P.PENDING:
            _move(payment, P.FAILED)
            publish("payment.failed", clinic=payment.clinic_id, payload=_payload(payment))
    elif status == "cancelled":
        if payment.status in (P.PENDING, P.FAILED):
            _move(payment, P.CANCELLED)
            publish(
                "payment.failed",
                clinic=payment.clinic_id,
                payload=_payload(payment, cancelled=True),
            )
    elif status == "overdue" and payment.status == P.PENDING:
        pass  # our dunning job decides what overdue means; nothing to store
    return payment


# --- Reconciliation with the gateways -------------------------------------------------------
#: Charges asked about per run; each one is asked again at most this often.
RECONCILE_BATCH = 100
RECONCILE_EVERY = timedelta(hours=6)
#: Charges overdue for longer than this are left to the desk (dunning hands them to a person).
RECONCILE_WINDOW = timedelta(days=60)


@dataclass(frozen=True)
class ReconcileResult:
    asked: int
    changed: int
    errors: int


def payments_reconcile(
    *, now: datetime | None = None, batch: int = RECONCILE_BATCH
) -> ReconcileResult:
    """Every hour: ask each charge's gateway about the charges still pending past their due
    date, so that a notification that never came (or failed) leaves no money unseen and no
    patient who paid is chased by dunning.

    The least recently asked go first, at most ``batch`` a run, each at most every
    ``RECONCILE_EVERY`` (claimed with one UPDATE before any call, so an overlapping run
    skips them). Each charge is read from the account that created it — the clinic's own
    — with no transaction open; what it says is applied to that clinic's payment in a short
    one, as a notification would be (idempotent: asking twice changes nothing more)."""
    from integrations.inbound import provider_for

    now = now or timezone.now()
    today = timezone.localdate(now)
    candidates = list(
        Payment.objects.filter(
            status=P.PENDING,
            due_date__lt=today,
            due_date__gte=today - RECONCILE_WINDOW,
            gateway_account__isnull=False,
        )
        .exclude(gateway_payment_id="")
        .exclude(gateway=Gateway.MANUAL)
        .filter(
            Q(gateway_checked_at__isnull=True) | Q(gateway_checked_at__lt=now - RECONCILE_EVERY)
        )
        .select_related("gateway_account")
        .order_by(F("gateway_checked_at").asc(nulls_first=True), "due_date", "pk")[:batch]
    )
    Payment.objects.filter(pk__in=[p.pk for p in candidates]).update(gateway_checked_at=now)
    adapters: dict[int, object] = {}
    changed = errors = 0
    for payment in candidates:
        account = payment.gateway_account
        try:
            if account.pk not in adapters:
                adapters[account.pk] = provider_for(account)
            update = adapters[account.pk].get_charge(payment.gateway_payment_id)
        except Exception as exc:  # one gateway's trouble must not stop the others' charges
            errors += 1
            logger.warning(
                "reconcile: payment %s at %s not read: %s", payment.pk, account.provider, exc
            )
            if isinstance(exc, ProviderError) and exc.permanent:
                Payment.objects.filter(pk=payment.pk).update(last_error=str(exc)[:2000])
            continue
        if update.external_reference and update.external_reference != payment.reference:
            errors += 1
            logger.warning("reconcile: payment %s: the gateway names another one", payment.pk)
            continue
        with transaction.atomic():
            locked = (
                Payment.objects.for_clinic(payment.clinic_id).select_for_update().get(pk=payment.pk)
            )
            before = (locked.status, locked.amount_received)
            _apply_update(locked, update)
            changed += (locked.status, locked.amount_received) != before
    if candidates:
        logger.info(
            "reconcile: %s charges asked, %s changed, %s not read",
            len(candidates),
            changed,
            errors,
        )
    return ReconcileResult(asked=len(candidates), changed=changed, errors=errors)
