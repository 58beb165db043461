"""Billing: packages of sessions, payments (at the desk and through gateways), service
invoices (NFS-e) and the clinic's ledger. Money is ``Decimal`` with two places everywhere;
rounding is explicit (``billing.money``)."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned

from .choices import (
    Gateway,
    InvoiceStatus,
    PackageStatus,
    PaymentDivergence,
    PaymentMethod,
    PaymentStatus,
    SessionUseReason,
    TransactionCategory,
    TransactionKind,
)

MONEY = {"max_digits": 12, "decimal_places": 2}
POSITIVE = [MinValueValidator(Decimal("0.01"))]


def new_reference() -> str:
    return uuid.uuid4().hex


class Package(ClinicOwned):
    """A package of sessions the clinic sells (e.g. 10 physiotherapy sessions)."""

    name = models.CharField(_("name"), max_length=150)
    services = models.ManyToManyField(
        "scheduling.Service",
        through="PackageItem",
        related_name="packages",
        verbose_name=_("services"),
    )
    total_sessions = models.PositiveSmallIntegerField(_("sessions"), default=0, editable=False)
    regular_price = models.DecimalField(_("regular price (R$)"), **MONEY, default=Decimal("0"))
    price = models.DecimalField(_("package price (R$)"), **MONEY, validators=POSITIVE)
    validity_days = models.PositiveSmallIntegerField(_("valid for (days)"), default=180)
    is_active = models.BooleanField(_("for sale"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("package")
        verbose_name_plural = _("packages")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PackageItem(models.Model):
    """How many sessions of one service a package holds."""

    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="items")
    service = models.ForeignKey(
        "scheduling.Service", on_delete=models.PROTECT, verbose_name=_("service")
    )
    quantity = models.PositiveSmallIntegerField(_("sessions"), default=1)

    class Meta:
        verbose_name = _("package item")
        verbose_name_plural = _("package items")
        constraints = [
            models.UniqueConstraint(fields=["package", "service"], name="package_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.service}"


class PatientPackage(ClinicOwned):
    """A package a patient bought: its sessions, used and left, and until when."""

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="packages",
        verbose_name=_("patient"),
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="sales", verbose_name=_("package")
    )
    sessions_total = models.PositiveSmallIntegerField(_("sessions"))
    sessions_used = models.PositiveSmallIntegerField(_("sessions used"), default=0)
    price = models.DecimalField(_("price (R$)"), **MONEY)
    purchased_at = models.DateTimeField(_("purchased at"))
    expires_at = models.DateTimeField(_("expires at"))
    status = models.CharField(
        _("status"), max_length=12, choices=PackageStatus.choices, default=PackageStatus.ACTIVE
    )
    expiry_warned_at = models.DateTimeField(_("expiry warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("patient package")
        verbose_name_plural = _("patient packages")
        ordering = ["-purchased_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sessions_used__lte=F("sessions_total")),
                name="patient_package_not_overused",
            )
        ]
        indexes = [models.Index(fields=["clinic", "status", "expires_at"], name="ppkg_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.package} — {self.patient}"

    @property
    def sessions_remaining(self) -> int:
        return self.sessions_total - self.sessions_used


class PackageSessionUse(ClinicOwned):
    """One session of a package spent on one appointment. Unique per appointment: a
    redelivered event cannot debit twice."""

    patient_package = models.ForeignKey(
        PatientPackage, on_delete=models.PROTECT, related_name="uses", verbose_name=_("package")
    )
    appointment = models.OneToOneField(
        "scheduling.Appointment",
        on_delete=models.PROTECT,
        related_name="package_use",
        verbose_name=_("appointment"),
    )
    reason = models.CharField(_("reason"), max_length=12, choices=SessionUseReason.choices)
    used_at = models.DateTimeField(_("used at"), auto_now_add=True)

    class Meta:
        verbose_name = _("package session used")
        verbose_name_plural = _("package sessions used")
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"{self.patient_package}: {self.appointment_id}"


class Payment(ClinicOwned):
    """Money a patient owes or paid: at the desk, or charged through a gateway (PIX, boleto,
    card). Every change goes through ``billing.services`` and publishes ``payment.*``."""

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("patient"),
    )
    reference = models.CharField(
        _("reference"), max_length=32, unique=True, default=new_reference, editable=False
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    amount = models.DecimalField(_("amount (R$)"), **MONEY, validators=POSITIVE)
    refunded_amount = models.DecimalField(_("refunded (R$)"), **MONEY, default=Decimal("0"))
    #: What has arrived so far, as the gateway (or the desk) reported it: booked as income
    #: as it arrives. Less than ``amount`` keeps the payment pending, with the rest owed.
    amount_received = models.DecimalField(_("received (R$)"), **MONEY, default=Decimal("0"))
    divergence = models.CharField(
        _("amount divergence"),
        max_length=10,
        choices=PaymentDivergence.choices,
        default=PaymentDivergence.NONE,
        blank=True,
        help_text=_("The gateway reported a different amount than the charge: check it."),
    )
    method = models.CharField(_("method"), max_length=12, choices=PaymentMethod.choices)
    gateway = models.CharField(
        _("collected by"), max_length=12, choices=Gateway.choices, default=Gateway.MANUAL
    )
    status = models.CharField(
        _("status"), max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    due_date = models.DateField(_("due date"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        verbose_name=_("appointment"),
    )
    patient_package = models.ForeignKey(
        PatientPackage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        verbose_name=_("patient package"),
    )
    gateway_account = models.ForeignKey(
        "integrations.ProviderAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("gateway account"),
    )
    gateway_payment_id = models.CharField(_("gateway id"), max_length=100, blank=True)
    pix_payload = models.TextField(_("PIX copy-and-paste code"), blank=True)
    pix_qr_base64 = models.TextField(blank=True, editable=False)
    invoice_url = models.URLField(_("payment page"), max_length=500, blank=True)
    boleto_url = models.URLField(_("boleto"), max_length=500, blank=True)
    last_response = models.JSONField(default=dict, blank=True, editable=False)
    last_error = models.TextField(_("last gateway error"), blank=True)
    #: When the reconciliation last asked the gateway about this charge (still pending past
    #: its due date): the least recently asked go first.
    gateway_checked_at = models.DateTimeField(_("last asked the gateway"), null=True, blank=True)
    dunning_step = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    dunning_flagged_at = models.DateTimeField(
        _("handed to a person"), null=True, blank=True, help_text=_("Reminders exhausted.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registered by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("amount")), name="payment_refund_le_amount"
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "status", "due_date"], name="payment_due_idx"),
            models.Index(fields=["clinic", "paid_at"], name="payment_paid_idx"),
            models.Index(fields=["gateway", "gateway_payment_id"], name="payment_gateway_idx"),
            models.Index(
                fields=["clinic", "divergence"],
                name="payment_divergence_idx",
                condition=~Q(divergence=""),
            ),
        ]

    def __str__(self) -> str:
        return f"R$ {self.amount} — {self.patient} ({self.get_status_display()})"

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.refunded_amount

    @property
    def amount_owed(self) -> Decimal:
        """What the patient still owes: nothing once paid (or cancelled), else the charge
        less what has arrived."""
        if self.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            return Decimal("0")
        return max(self.amount - self.amount_received, Decimal("0"))


class PaymentRefund(ClinicOwned):
    """One refund of a payment (partial refunds add up)."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    amount = models.DecimalField(_("amount (R$)"), **MONEY, validators=POSITIVE)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    gateway_refund_id = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"R$ {self.amount}"


class Invoice(ClinicOwned):
    """The NFS-e of a payment. One per payment (the database refuses a second), issued
    through the clinic's fiscal chain and followed by webhook or polling."""

    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="invoice", verbose_name=_("payment")
    )
    reference = models.CharField(_("reference"), max_length=50, unique=True)
    status = models.CharField(
        _("status"), max_length=12, choices=InvoiceStatus.choices, default=InvoiceStatus.PROCESSING
    )
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    #: The account that issued it: status, retries and cancellation go back to it, never
    #: to another provider of the chain (that would be a second invoice).
    provider_account = models.ForeignKey(
        "integrations.ProviderAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("provider account"),
    )
    amount = models.DecimalField(_("amount (R$)"), **MONEY)
    description = models.TextField(_("service description"))
    number = models.CharField(_("number"), max_length=50, blank=True)
    verification_code = models.CharField(_("verification code"), max_length=100, blank=True)
    pdf_url = models.URLField(_("PDF"), max_length=500, blank=True)
    xml_url = models.URLField(_("XML"), max_length=500, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    cancel_justification = models.CharField(_("cancellation reason"), max_length=255, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("service invoice (NFS-e)")
        verbose_name_plural = _("service invoices (NFS-e)")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="invoice_status_idx")]

    def __str__(self) -> str:
        return self.number or self.reference


class FinancialTransaction(ClinicOwned):
    """A line of the clinic's ledger: income (from payments, automatically) or expense
    (added by managers), by competence and payment dates."""

    kind = models.CharField(_("kind"), max_length=8, choices=TransactionKind.choices)
    category = models.CharField(_("category"), max_length=20, choices=TransactionCategory.choices)
    cost_center = models.CharField(_("cost centre"), max_length=100, blank=True)
    description = models.CharField(_("description"), max_length=255)
    amount = models.DecimalField(_("amount (R$)"), **MONEY, validators=POSITIVE)
    competence_date = models.DateField(_("competence date"))
    payment_date = models.DateField(_("payment date"), null=True, blank=True)
    reconciled = models.BooleanField(_("reconciled"), default=False)
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transactions",
        verbose_name=_("payment"),
    )
    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("professional"),
    )
    service = models.ForeignKey(
        "scheduling.Service",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("service"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger")
        ordering = ["-competence_date", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "kind", "competence_date"], name="ledger_period_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: R$ {self.amount} — {self.description}"


class PaymentDiscount(ClinicOwned):
    """A discount taken off a payment when it was created (a loyalty voucher, a courtesy):
    the payment's ``amount`` is what is charged after it, so the ledger, the NFS-e and the
    cash report all see the same net amount; ``gross_amount`` keeps what it was before."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="discounts", verbose_name=_("payment")
    )
    gross_amount = models.DecimalField(_("amount before the discount (R$)"), **MONEY)
    amount = models.DecimalField(_("discount (R$)"), **MONEY, validators=POSITIVE)
    #: Who granted it (``loyalty``, ``manual`` …) and its key there (a voucher code).
    source = models.CharField(_("source"), max_length=30)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    label = models.CharField(_("description"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("discount")
        verbose_name_plural = _("discounts")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__lt=F("gross_amount")), name="payment_discount_lt_gross"
            ),
            # One use of a code: a voucher cannot discount two payments.
            models.UniqueConstraint(
                fields=["clinic", "source", "reference"],
                condition=~Q(reference=""),
                name="payment_discount_reference_once",
            ),
        ]

    def __str__(self) -> str:
        return f"− R$ {self.amount} ({self.label or self.source})"
