"""Choices of the billing app, and the payment status machine."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentMethod(models.TextChoices):
    PIX = "pix", _("PIX")
    BOLETO = "boleto", _("Boleto")
    CREDIT_CARD = "credit_card", _("Credit card")
    DEBIT_CARD = "debit_card", _("Debit card")
    CASH = "cash", _("Cash")
    TRANSFER = "transfer", _("Bank transfer")


class Gateway(models.TextChoices):
    """Who collects the money: a payment gateway, or the clinic itself ("manual")."""

    MANUAL = "manual", _("At the desk / by hand")
    ASAAS = "asaas", "Asaas"
    MERCADOPAGO = "mercadopago", "Mercado Pago"
    PAGBANK = "pagbank", "PagBank"
    CONSOLE = "console", _("Console (sandbox)")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class PaymentDivergence(models.TextChoices):
    """What the gateway said arrived, against the charge: flagged for the desk."""

    NONE = "", _("None")
    UNDERPAID = "underpaid", _("Paid less than charged")
    OVERPAID = "overpaid", _("Paid more than charged")


P = PaymentStatus

#: pending → paid | failed | cancelled; paid → refunded (partial refunds keep it paid until
#: the whole amount is back). A failed charge may be paid later (a new attempt at the
#: gateway); nothing leaves cancelled or refunded.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.PAID, P.FAILED, P.CANCELLED}),
    P.FAILED: frozenset({P.PAID, P.CANCELLED}),
    P.PAID: frozenset({P.REFUNDED}),
    P.CANCELLED: frozenset(),
    P.REFUNDED: frozenset(),
}


class PackageStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class SessionUseReason(models.TextChoices):
    COMPLETED = "completed", _("Appointment completed")
    NO_SHOW = "no_show", _("No-show (clinic policy)")
    LATE_CANCEL = "late_cancel", _("Late cancellation (clinic policy)")


class InvoiceStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    AUTHORIZED = "authorized", _("Issued")
    ERROR = "error", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


class TransactionKind(models.TextChoices):
    INCOME = "income", _("Income")
    EXPENSE = "expense", _("Expense")


class TransactionCategory(models.TextChoices):
    APPOINTMENTS = "appointments", _("Appointments")
    PACKAGES = "packages", _("Packages of sessions")
    REFUNDS = "refunds", _("Refunds")
    RENT = "rent", _("Rent")
    PAYROLL = "payroll", _("Payroll and professionals")
    SUPPLIES = "supplies", _("Supplies")
    TAXES = "taxes", _("Taxes")
    FEES = "fees", _("Gateway and bank fees")
    MARKETING = "marketing", _("Marketing")
    OTHER = "other", _("Other")
