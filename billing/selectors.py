"""Shared reads of billing: the dashboard's figures, what the desk sees about a patient, the
static PIX code of the clinic's key, and matching a gateway settlement to our payments.
Report queries live in ``billing.reports``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from .choices import Gateway, PaymentStatus, TransactionKind
from .conf import billing_option
from .models import FinancialTransaction, Payment
from .money import money
from .reports import OPEN, RECEIVED, Period, SettlementLine, clinic_today, clinic_zone

P = PaymentStatus


def billing_dashboard(*, clinic, now: datetime | None = None) -> dict:
    """The admin index's billing card: money received today (in the clinic's time zone)
    and what is still owed. Two queries."""
    if clinic is None:
        return {}
    today = clinic_today(clinic, now)
    day = Period(today, today, clinic_zone(clinic))
    payments = Payment.objects.for_clinic(clinic)
    received = payments.filter(
        status__in=RECEIVED, paid_at__gte=day.start, paid_at__lt=day.end
    ).aggregate(total=Sum("amount"), count=Count("pk"))
    owed = payments.filter(status__in=OPEN).aggregate(
        count=Count("pk"), overdue=Count("pk", filter=Q(due_date__lt=today))
    )
    return {
        "received_today": money(received["total"] or 0),
        "received_today_count": received["count"],
        "open_receivables": owed["count"],
        "overdue_receivables": owed["overdue"],
    }


def patient_open_payments(*, patient, limit: int = 10) -> list[Payment]:
    """The patient's payments still owed, for the desk to see before charging again."""
    return list(
        Payment.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient, status__in=OPEN)
        .order_by("due_date", "pk")[:limit]
    )


def clinic_has_pix_key(*, clinic) -> bool:
    return bool(billing_option(clinic, "pix_key"))


def pix_static_payload(*, clinic, amount: Decimal) -> str:
    """The "copia e cola" code paying ``amount`` to the clinic's own PIX key, the way
    ``services.payment_static_pix`` writes it (no txid: nothing is stored until the desk
    sees the money arrive). ``ValueError`` (with a message for the user) if the key or the
    names are not valid."""
    from integrations.pix import brcode_build

    return brcode_build(
        key=billing_option(clinic, "pix_key"),
        name=billing_option(clinic, "pix_merchant_name") or clinic.legal_name or clinic.name,
        city=billing_option(clinic, "pix_merchant_city") or clinic.city or "BRASIL",
        amount=money(amount),
    )


# --- Reconciliation -------------------------------------------------------------------------
def payments_unreconciled(*, clinic) -> QuerySet[Payment]:
    """Payments a gateway collected that no settlement has confirmed yet: their ledger
    income line is not reconciled."""
    open_line = FinancialTransaction.objects.filter(
        payment=OuterRef("pk"), kind=TransactionKind.INCOME, reconciled=False
    )
    return (
        Payment.objects.for_clinic(clinic)
        .filter(status__in=RECEIVED)
        .exclude(gateway=Gateway.MANUAL)
        .filter(Exists(open_line))
        .select_related("patient")
        .order_by("paid_at", "pk")
    )


class Outcome:
    MATCHED = "matched"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"
    NOT_PAID = "not_paid"
    ALREADY = "already_reconciled"
    NO_LEDGER = "no_ledger"
    DUPLICATE = "duplicate"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class SettlementMatch:
    """What one settlement line is, against our books. Only ``MATCHED`` lines carry the
    ledger line to reconcile; every other outcome is for a person to look at."""

    line: SettlementLine
    outcome: str
    payment: Payment | None = None
    transaction_id: int | None = None

    @property
    def matched(self) -> bool:
        return self.outcome == Outcome.MATCHED


def settlement_match(*, clinic, lines: list[SettlementLine]) -> list[SettlementMatch]:
    """Match each line to the clinic's payment with that gateway id: paid, same amount and
    its income line not yet reconciled → matched. Two queries whatever the file's size."""
    ids = {line.gateway_id for line in lines if not line.error}
    payments: dict[str, Payment] = {}
    for payment in (
        Payment.objects.for_clinic(clinic)
        .filter(gateway_payment_id__in=ids)
        .exclude(gateway_payment_id="")
        .select_related("patient")
        .order_by("pk")
    ):
        # Should two rows share a gateway id, the paid one is the one a settlement pays.
        known = payments.get(payment.gateway_payment_id)
        if known is None or (known.status not in RECEIVED and payment.status in RECEIVED):
            payments[payment.gateway_payment_id] = payment
    income: dict[int, tuple[int, bool]] = {
        row["payment_id"]: (row["pk"], row["reconciled"])
        for row in FinancialTransaction.objects.for_clinic(clinic)
        .filter(kind=TransactionKind.INCOME, payment_id__in=[p.pk for p in payments.values()])
        .order_by("pk")
        .values("pk", "payment_id", "reconciled")
    }

    seen: set[str] = set()
    results = []
    for line in lines:
        if line.error:
            results.append(SettlementMatch(line, Outcome.UNREADABLE))
            continue
        if line.gateway_id in seen:
            results.append(SettlementMatch(line, Outcome.DUPLICATE))
            continue
        seen.add(line.gateway_id)
        payment = payments.get(line.gateway_id)
        if payment is None:
            results.append(SettlementMatch(line, Outcome.UNKNOWN))
        elif payment.status not in RECEIVED:
            results.append(SettlementMatch(line, Outcome.NOT_PAID, payment))
        elif money(line.amount) != payment.amount:
            results.append(SettlementMatch(line, Outcome.MISMATCH, payment))
        elif payment.pk not in income:
            results.append(SettlementMatch(line, Outcome.NO_LEDGER, payment))
        elif income[payment.pk][1]:
            results.append(SettlementMatch(line, Outcome.ALREADY, payment))
        else:
            results.append(SettlementMatch(line, Outcome.MATCHED, payment, income[payment.pk][0]))
    return results
