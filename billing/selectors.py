"""Shared reads of billing: the dashboard's figures, what the desk sees about a patient, the
static PIX code of the clinic's key, matching a gateway settlement to our payments, what a
receipt shows, and the patient's own payments and packages (portal). Report queries live in
``billing.reports``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import pgettext

from clinic.kernel.timezones import clinic_today, clinic_zone

from .choices import Gateway, InvoiceStatus, PackageStatus, PaymentStatus, TransactionKind
from .conf import billing_option
from .models import (
    FinancialTransaction,
    Invoice,
    PackageItem,
    PackageSessionUse,
    PatientPackage,
    Payment,
)
from .money import brl, money
from .reports import OPEN, RECEIVED, Period, SettlementLine

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
        elif money(line.amount) != (payment.amount_received or payment.amount):
            # What arrived is what the gateway settles (more than the charge, when overpaid).
            results.append(SettlementMatch(line, Outcome.MISMATCH, payment))
        elif payment.pk not in income:
            results.append(SettlementMatch(line, Outcome.NO_LEDGER, payment))
        elif income[payment.pk][1]:
            results.append(SettlementMatch(line, Outcome.ALREADY, payment))
        else:
            results.append(SettlementMatch(line, Outcome.MATCHED, payment, income[payment.pk][0]))
    return results


# --- Receipts (the desk's printed one and the portal's) -----------------------------------
def payment_has_receipt(payment: Payment) -> bool:
    """Money received (even if refunded since) has a receipt; nothing else does."""
    return payment.status in RECEIVED and payment.paid_at is not None


def payment_receipt_context(*, payment: Payment) -> dict:
    """What a receipt ("recibo") shows, for ``templates/portal/billing/_receipt_sheet.html``.
    ``payment`` comes with ``clinic``, ``patient`` and ``appointment__professional``
    selected. The time is the clinic's wall clock (naive), whoever prints it."""
    clinic = payment.clinic
    paid_at = timezone.localtime(payment.paid_at, clinic_zone(clinic)).replace(tzinfo=None)
    return {
        "payment": payment,
        "clinic": clinic,
        "patient": payment.patient,
        "amount": brl(payment.amount),
        "refunded": brl(payment.refunded_amount) if payment.refunded_amount else "",
        "method": payment.get_method_display(),
        "paid_at": paid_at,
    }


# --- The patient's own view (portal) --------------------------------------------------------
def payment_patient_state(payment: Payment, *, today: date) -> tuple[str, str, str]:
    """The payment's state in the patient's words, as (key, label, badge look): open,
    overdue, not approved, paid, refunded or cancelled. The label says it all; the look
    only repeats it in colour."""
    if payment.status in OPEN:
        if payment.due_date and payment.due_date < today:
            return "overdue", pgettext("payment status", "Overdue"), "bad"
        if payment.status == P.FAILED:
            return "failed", pgettext("payment status", "Not approved"), "bad"
        return "open", pgettext("payment status", "Open"), "warn"
    if payment.status == P.PAID:
        return "paid", pgettext("payment status", "Paid"), "ok"
    if payment.status == P.REFUNDED:
        return "refunded", pgettext("payment status", "Refunded"), ""
    return "cancelled", pgettext("payment status", "Cancelled"), ""


def patient_payments(*, patient) -> QuerySet[Payment]:
    """Every payment of ``patient`` — the one scope the portal reads payments through."""
    return Payment.objects.for_clinic(patient.clinic_id).filter(patient=patient)


def patient_payments_open(*, patient) -> list[Payment]:
    """Money the patient still owes, the earliest due first. One query."""
    return list(
        patient_payments(patient=patient)
        .filter(status__in=OPEN)
        .order_by(F("due_date").asc(nulls_last=True), "pk")
    )


def patient_payments_closed(*, patient) -> QuerySet[Payment]:
    """Paid, refunded and cancelled payments, the latest first, with their NFS-e."""
    return (
        patient_payments(patient=patient)
        .exclude(status__in=OPEN)
        .select_related("invoice")
        .order_by(F("paid_at").desc(nulls_last=True), "-created_at", "-pk")
    )


def invoice_public(payment: Payment) -> Invoice | None:
    """The payment's NFS-e when it was issued and has its PDF: what a patient may open.
    ``payment`` should come with ``invoice`` selected (else one query)."""
    try:
        invoice = payment.invoice
    except Invoice.DoesNotExist:
        return None
    if invoice.status != InvoiceStatus.AUTHORIZED or not invoice.pdf_url:
        return None
    return invoice


def payment_static_pix_payload(*, payment: Payment) -> str:
    """The "copia e cola" code of the clinic's own PIX key for an open payment no gateway
    charges — exactly the code ``services.payment_static_pix`` would store (its txid is the
    payment's reference, so the desk can match the money), built without writing. Empty
    when the clinic has no key or its PIX settings are not valid."""
    if not clinic_has_pix_key(clinic=payment.clinic):
        return ""
    from integrations.pix import brcode_build

    clinic = payment.clinic
    try:
        return brcode_build(
            key=billing_option(clinic, "pix_key"),
            name=billing_option(clinic, "pix_merchant_name") or clinic.legal_name or clinic.name,
            city=billing_option(clinic, "pix_merchant_city") or clinic.city or "BRASIL",
            amount=payment.amount,
            txid=payment.reference[:25],
        )
    except ValueError:
        return ""


def patient_packages_active(*, patient, now: datetime | None = None) -> list[PatientPackage]:
    """The patient's packages still in use (active, not expired), the one expiring first
    first, each with ``item_rows``: per service, the sessions included, used and left.
    Three queries, however many packages.

    Sessions are pooled per package (a session is debited from the package total), so a
    service's "left" is also capped by what the package has left."""
    now = now or timezone.now()
    packages = list(
        PatientPackage.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient, status=PackageStatus.ACTIVE, expires_at__gt=now)
        .select_related("package")
        .prefetch_related(
            Prefetch(
                "package__items",
                queryset=PackageItem.objects.select_related("service").order_by(
                    "service__name", "pk"
                ),
            )
        )
        .order_by("expires_at", "pk")
    )
    used: dict[tuple[int, int], int] = {
        (row["patient_package_id"], row["appointment__service_id"]): row["n"]
        for row in PackageSessionUse.objects.filter(patient_package__in=[p.pk for p in packages])
        .values("patient_package_id", "appointment__service_id")
        .annotate(n=Count("pk"))
        .order_by()
    }
    for package in packages:
        rows = []
        for item in package.package.items.all():
            spent = used.get((package.pk, item.service_id), 0)
            rows.append(
                {
                    "service": item.service,
                    "quantity": item.quantity,
                    "used": spent,
                    "remaining": max(0, min(item.quantity - spent, package.sessions_remaining)),
                }
            )
        package.item_rows = rows
    return packages
