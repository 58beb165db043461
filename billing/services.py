"""Every write of billing: payments at the desk and through gateways, refunds, packages and
their sessions, NFS-e, the ledger. Each runs in a transaction and publishes its event.

Payment status machine (``choices.PAYMENT_TRANSITIONS``): pending → paid | failed |
cancelled; paid → refunded. Gateway notifications converge: a replayed or late event never
pays twice, and never takes a paid payment back to pending, failed or overdue. The ledger
books what arrived (``amount_received``), not what was charged: a gateway reporting less
leaves the payment pending with the rest owed, and flags the divergence for the desk (more
than charged is booked and flagged too).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Clinic, Patient
from clinic.selectors import clinics_at_local_hours
from integrations.base import (
    ChainFailed,
    ChargeRequest,
    Customer,
    InvoiceRequest,
    InvoiceUpdate,
    PaymentUpdate,
    ProviderError,
)
from integrations.chains import run_chain
from integrations.events import publish

from .choices import (
    PAYMENT_TRANSITIONS,
    Gateway,
    InvoiceStatus,
    PackageStatus,
    PaymentDivergence,
    PaymentMethod,
    PaymentStatus,
    TransactionCategory,
    TransactionKind,
)
from .conf import billing_option
from .exceptions import (
    GatewayUnavailable,
    InvalidPaymentTransition,
    InvoiceError,
    PackageUnavailable,
    RefundTooLarge,
)
from .models import (
    FinancialTransaction,
    Invoice,
    Package,
    PackageSessionUse,
    PatientPackage,
    Payment,
    PaymentRefund,
)
from .money import money

logger = logging.getLogger(__name__)
P = PaymentStatus
#: Methods a gateway charges (the others are received at the desk).
GATEWAY_METHODS = {PaymentMethod.PIX, PaymentMethod.BOLETO, PaymentMethod.CREDIT_CARD}


def _payload(payment: Payment, **extra) -> dict:
    return {
        "payment_id": payment.pk,
        "reference": payment.reference,
        "patient_id": payment.patient_id,
        "appointment_id": payment.appointment_id,
        "patient_package_id": payment.patient_package_id,
        "amount": str(payment.amount),
        "method": payment.method,
        "gateway": payment.gateway,
        "status": payment.status,
        **extra,
    }


def _locked(payment: Payment) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment.pk)


def _move(payment: Payment, to: str, **fields) -> Payment:
    """Move a locked payment to ``to`` if the machine allows it."""
    if to not in PAYMENT_TRANSITIONS[payment.status]:
        raise InvalidPaymentTransition(
            _("A %(current)s payment cannot become %(wanted)s.")
            % {"current": P(payment.status).label.lower(), "wanted": P(to).label.lower()}
        )
    payment.status = to
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save(update_fields=["status", *fields, "updated_at"])
    return payment


def _income(payment: Payment, *, received, when: datetime) -> Decimal:
    """Book in the ledger what arrived beyond what was booked already: ``received`` is the
    total this payment has received (as the gateway or the desk reports it), so a replayed
    or stale notification books nothing. Sets ``payment.amount_received`` (the caller
    saves it) and returns the amount booked now."""
    received = money(received)
    new = received - payment.amount_received
    if new <= 0:
        return Decimal("0")
    payment.amount_received = received
    appointment = payment.appointment
    FinancialTransaction.objects.create(
        clinic_id=payment.clinic_id,
        kind=TransactionKind.INCOME,
        category=TransactionCategory.PACKAGES
        if payment.patient_package_id
        else TransactionCategory.APPOINTMENTS,
        description=payment.description or str(payment.patient),
        amount=new,
        competence_date=(appointment.start if appointment else when).date(),
        payment_date=timezone.localdate(when),
        payment=payment,
        professional_id=appointment.professional_id if appointment else None,
        service_id=appointment.service_id if appointment else None,
        # Money received at the desk is in hand: nothing to match against a settlement.
        reconciled=payment.gateway == Gateway.MANUAL,
    )
    return new


def _mark_paid(payment: Payment, *, paid_at: datetime | None = None, received=None) -> Payment:
    """Pay a locked payment in full: ``received`` is what arrived in total (the charge
    when not said; never less). More than charged is booked and flagged for the desk."""
    paid_at = paid_at or timezone.now()
    received = max(money(received) if received is not None else payment.amount, payment.amount)
    _income(payment, received=received, when=paid_at)
    divergence = PaymentDivergence.OVERPAID if received > payment.amount else PaymentDivergence.NONE
    _move(
        payment,
        P.PAID,
        paid_at=paid_at,
        last_error="",
        amount_received=payment.amount_received,
        divergence=divergence,
    )
    publish(
        "payment.received",
        clinic=payment.clinic_id,
        payload=_payload(payment, amount_received=str(payment.amount_received)),
    )
    return payment


def _receive_part(payment: Payment, *, received, when: datetime | None) -> Payment:
    """The gateway reports less than the charge (R$ 1,00 of R$ 150,90): book what arrived,
    keep the payment pending with the rest owed, and flag it for the desk."""
    _income(payment, received=received, when=when or timezone.now())
    payment.divergence = PaymentDivergence.UNDERPAID
    payment.save(update_fields=["amount_received", "divergence", "updated_at"])
    logger.warning(
        "payment %s: the gateway reports R$ %s of R$ %s",
        payment.pk,
        payment.amount_received,
        payment.amount,
    )
    return payment


def _same_clinic(clinic: Clinic, *objects) -> None:
    for obj in objects:
        if obj is not None and obj.clinic_id != clinic.pk:
            raise ValueError(f"{obj!r} belongs to another clinic")


# --- At the desk ----------------------------------------------------------------------------
@transaction.atomic
def payment_register(
    *,
    clinic: Clinic,
    patient: Patient,
    amount,
    method: str,
    appointment=None,
    patient_package: PatientPackage | None = None,
    description: str = "",
    by=None,
) -> Payment:
    """Money received at the desk (cash, card machine, PIX to the clinic's key): paid at
    once, with its ledger line."""
    _same_clinic(clinic, patient, appointment, patient_package)
    payment = Payment(
        clinic=clinic,
        patient=patient,
        amount=money(amount),
        method=method,
        gateway=Gateway.MANUAL,
        appointment=appointment,
        patient_package=patient_package,
        description=description[:255],
        due_date=timezone.localdate(),
        created_by=by,
    )
    payment.full_clean()
    payment.save()
    publish("payment.created", clinic=clinic, payload=_payload(payment))
    return _mark_paid(payment)


# --- Charges --------------------------------------------------------------------------------
def payment_charge_create(
    *,
    clinic: Clinic,
    patient: Patient,
    amount,
    method: str,
    due_date: date | None = None,
    appointment=None,
    patient_package: PatientPackage | None = None,
    description: str = "",
    by=None,
) -> Payment:
    """A charge the patient pays later by PIX, boleto or card: recorded pending (and
    committed, when called outside a transaction), then created at the clinic's gateway
    (the chain; the console in development). Without a gateway answer the payment stays
    pending with the error, ``GatewayUnavailable`` is raised, and it can be charged again
    (``payment_charge_send``)."""
    _same_clinic(clinic, patient, appointment, patient_package)
    with transaction.atomic():
        payment = Payment(
            clinic=clinic,
            patient=patient,
            amount=money(amount),
            method=method,
            appointment=appointment,
            patient_package=patient_package,
            description=description[:255],
            due_date=due_date or timezone.localdate(),
            created_by=by,
        )
        payment.full_clean()
        payment.save()
        publish("payment.created", clinic=clinic, payload=_payload(payment))
    payment_charge_send(payment=payment)
    return payment


def payment_charge_send(*, payment: Payment) -> Payment:
    """(Re)create the payment's charge at the gateway. The payment's reference is the
    idempotency key, so a repeat never charges twice where the gateway honours it."""
    patient = payment.patient
    request = ChargeRequest(
        amount=payment.amount,
        method=payment.method if payment.method in GATEWAY_METHODS else "undefined",
        customer=Customer(
            name=patient.full_name,
            cpf_cnpj=patient.cpf,
            email=patient.email,
            phone=patient.phone,
            external_reference=f"patient-{patient.pk}",
        ),
        description=payment.description or _("Health services"),
        due_date=payment.due_date,
        external_reference=payment.reference,
        idempotency_key=payment.reference,
    )
    try:
        result = run_chain(payment.clinic_id, "payments", "charge", request)
    except ChainFailed as exc:
        payment.last_error = str(exc)[:2000]
        payment.save(update_fields=["last_error", "updated_at"])
        raise GatewayUnavailable(
            _("No payment gateway could create the charge: %(error)s") % {"error": exc}
        ) from exc
    charge = result.value
    payment.gateway = result.provider if result.provider in Gateway.values else Gateway.MANUAL
    payment.gateway_account = result.account if result.account.pk else None
    payment.gateway_payment_id = charge.gateway_payment_id
    payment.pix_payload = charge.pix_payload
    payment.pix_qr_base64 = charge.pix_qr_base64
    payment.invoice_url = charge.invoice_url
    payment.boleto_url = charge.boleto_url
    payment.last_response = {
        "status": charge.status,
        "gateway_payment_id": charge.gateway_payment_id,
    }
    payment.last_error = ""
    payment.save()
    if charge.status == "paid":
        with transaction.atomic():
            _mark_paid(_locked(payment))
    return payment


@transaction.atomic
def payment_static_pix(*, payment: Payment) -> Payment:
    """A static PIX code for the clinic's own key (no gateway): the patient pays, the
    clinic confirms by hand (``payment_confirm``). The txid is the payment's reference."""
    from integrations.pix import brcode_build

    clinic = payment.clinic
    key = billing_option(clinic, "pix_key")
    if not key:
        raise GatewayUnavailable(_("The clinic has no PIX key configured."))
    payment.pix_payload = brcode_build(
        key=key,
        name=billing_option(clinic, "pix_merchant_name") or clinic.legal_name or clinic.name,
        city=billing_option(clinic, "pix_merchant_city") or clinic.city or "BRASIL",
        amount=payment.amount,
        txid=payment.reference[:25],
    )
    payment.method = PaymentMethod.PIX
    payment.gateway = Gateway.MANUAL
    payment.save(update_fields=["pix_payload", "method", "gateway", "updated_at"])
    return payment


@transaction.atomic
def payment_confirm(*, payment: Payment, paid_at: datetime | None = None, by=None) -> Payment:
    """Reception saw the money arrive (a static PIX, a transfer): the payment is paid."""
    return _mark_paid(_locked(payment), paid_at=paid_at)


@transaction.atomic
def payment_cancel(*, payment: Payment, by=None) -> Payment:
    payment = _move(_locked(payment), P.CANCELLED)
    publish("payment.failed", clinic=payment.clinic_id, payload=_payload(payment, cancelled=True))
    return payment


@transaction.atomic
def payment_refund(*, payment: Payment, amount=None, reason: str = "", by=None) -> PaymentRefund:
    """Give money back, all or part. The gateway refunds first (a gateway payment); the
    ledger gets a refund expense; a payment fully refunded is ``refunded``."""
    payment = _locked(payment)
    if payment.status != P.PAID:
        raise InvalidPaymentTransition(_("Only a paid payment can be refunded."))
    left = payment.amount - payment.refunded_amount
    amount = money(amount) if amount is not None else left
    if amount <= 0 or amount > left:
        raise RefundTooLarge(
            _("At most R$ %(left)s can still be refunded.") % {"left": left},
            fields={"amount": [_("At most R$ %(left)s.") % {"left": left}]},
        )
    gateway_refund_id = ""
    if payment.gateway != Gateway.MANUAL and payment.gateway_payment_id:
        from integrations.inbound import provider_for

        account = payment.gateway_account
        try:
            if account is not None:
                result = provider_for(account).refund(payment.gateway_payment_id, amount)
            else:
                result = run_chain(
                    payment.clinic_id, "payments", "refund", payment.gateway_payment_id, amount
                ).value
        except (ProviderError, ChainFailed) as exc:
            raise GatewayUnavailable(
                _("The gateway did not refund: %(error)s") % {"error": exc}
            ) from exc
        gateway_refund_id = str(result.raw.get("id", "")) if result.raw else ""
    return _refund_record(
        payment, amount, reason=reason, gateway_refund_id=gateway_refund_id, by=by
    )


def _refund_record(payment: Payment, amount, *, reason="", gateway_refund_id="", by=None):
    """Book a refund of a locked, paid payment: the refund row, the running total, the
    ledger's refund expense, ``refunded`` once the whole amount is back, and the event."""
    refund = PaymentRefund.objects.create(
        clinic_id=payment.clinic_id,
        payment=payment,
        amount=amount,
        reason=reason[:255],
        gateway_refund_id=gateway_refund_id[:100],
        created_by=by,
    )
    payment.refunded_amount = payment.refunded_amount + amount
    payment.save(update_fields=["refunded_amount", "updated_at"])
    FinancialTransaction.objects.create(
        clinic_id=payment.clinic_id,
        kind=TransactionKind.EXPENSE,
        category=TransactionCategory.REFUNDS,
        description=_("Refund: %(description)s")
        % {"description": payment.description or payment.patient},
        amount=amount,
        competence_date=timezone.localdate(),
        payment_date=timezone.localdate(),
        payment=payment,
        created_by=by,
        reconciled=payment.gateway == Gateway.MANUAL,
    )
    if payment.refunded_amount >= payment.amount:
        _move(payment, P.REFUNDED)
    publish(
        "payment.refunded",
        clinic=payment.clinic_id,
        payload=_payload(
            payment, refunded=str(amount), refunded_total=str(payment.refunded_amount)
        ),
    )
    return refund


def payment_receipt_send(*, payment: Payment, by=None):
    """Send the patient the receipt of a paid payment (``recibo``), on their channel —
    once per payment: a second click finds the message already sent."""
    from clinic.messaging import message_send

    from .money import brl

    if payment.status not in (P.PAID, P.REFUNDED) or payment.paid_at is None:
        raise InvalidPaymentTransition(_("Only a paid payment has a receipt."))
    return message_send(
        clinic=payment.clinic,
        patient=payment.patient,
        template="recibo",
        context={
            "amount": brl(payment.amount),
            "date": timezone.localtime(payment.paid_at).strftime("%d/%m/%Y"),
            "description": payment.description,
            "method": payment.get_method_display(),
        },
        idempotency_key=f"receipt:{payment.pk}",
        sent_by=by,
    )


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


# --- Packages -------------------------------------------------------------------------------
@transaction.atomic
def package_save_items(*, package: Package, items: list[tuple]) -> Package:
    """Set a package's services and quantities; its total of sessions follows."""
    package.items.all().delete()
    for service, quantity in items:
        package.items.create(service=service, quantity=quantity)
    package.total_sessions = sum(quantity for _service, quantity in items)
    package.save(update_fields=["total_sessions"])
    return package


@transaction.atomic
def package_sell(
    *,
    clinic: Clinic,
    patient: Patient,
    package: Package,
    method: str = PaymentMethod.CASH,
    paid: bool = True,
    by=None,
    now: datetime | None = None,
) -> tuple[PatientPackage, Payment]:
    """Sell a package: the patient's sessions start now and expire after the package's
    validity; the payment is received at the desk (``paid``) or charged."""
    _same_clinic(clinic, patient, package)
    if not package.is_active or package.total_sessions == 0:
        raise PackageUnavailable(_("This package is not for sale."))
    now = now or timezone.now()
    sold = PatientPackage.objects.create(
        clinic=clinic,
        patient=patient,
        package=package,
        sessions_total=package.total_sessions,
        price=package.price,
        purchased_at=now,
        expires_at=now + timedelta(days=package.validity_days),
    )
    publish(
        "package.purchased",
        clinic=clinic,
        payload={"patient_package_id": sold.pk, "patient_id": patient.pk, "package_id": package.pk},
    )
    kwargs = {
        "clinic": clinic,
        "patient": patient,
        "amount": package.price,
        "method": method,
        "patient_package": sold,
        "description": str(package),
        "by": by,
    }
    payment = payment_register(**kwargs) if paid else payment_charge_create(**kwargs)
    return sold, payment


def _covering_package(appointment) -> PatientPackage | None:
    """The patient's active package that covers the appointment's service, the one
    expiring first (it would be lost first)."""
    return (
        PatientPackage.objects.for_clinic(appointment.clinic_id)
        .select_for_update(of=("self",))
        .filter(
            patient_id=appointment.patient_id,
            status=PackageStatus.ACTIVE,
            package__items__service_id=appointment.service_id,
            expires_at__gt=appointment.start,
            sessions_used__lt=F("sessions_total"),
        )
        .order_by("expires_at", "pk")
        .first()
    )


@transaction.atomic
def package_session_debit(*, appointment, reason: str) -> PackageSessionUse | None:
    """Spend one session of the patient's package on ``appointment``. Idempotent: the
    appointment can be debited once (unique), so a redelivered event changes nothing."""
    if PackageSessionUse.objects.filter(appointment=appointment).exists():
        return None
    package = _covering_package(appointment)
    if package is None:
        return None
    try:
        with transaction.atomic():
            use = PackageSessionUse.objects.create(
                clinic_id=appointment.clinic_id,
                patient_package=package,
                appointment=appointment,
                reason=reason,
            )
    except IntegrityError:
        return None  # a concurrent delivery debited it
    package.sessions_used += 1
    fields = ["sessions_used"]
    if package.sessions_used >= package.sessions_total:
        package.status = PackageStatus.COMPLETED
        fields.append("status")
    package.save(update_fields=fields)
    return use


def packages_expiry_run(
    *,
    now: datetime | None = None,
    warn_days: int = 15,
    local_hours: Collection[int] | None = None,
) -> tuple[int, int]:
    """09:00 of each clinic's time (``local_hours``; without them every clinic now): warn
    patients whose active packages expire within ``warn_days`` (once, ``pacote_vencendo``)
    and expire the ones past their date. Returns (warned, expired)."""
    from clinic.messaging import message_send

    now = now or timezone.now()
    warned = expired = 0
    packages = PatientPackage.objects.filter(
        clinic__in=clinics_at_local_hours(hours=local_hours, now=now)
    )
    due = packages.filter(
        status=PackageStatus.ACTIVE,
        expires_at__lte=now + timedelta(days=warn_days),
        expires_at__gt=now,
        expiry_warned_at__isnull=True,
    ).select_related("patient", "patient__clinic", "package", "clinic")
    for package in due[:1000]:
        with transaction.atomic():
            message_send(
                clinic=package.clinic,
                patient=package.patient,
                template="pacote_vencendo",
                context={
                    "package": str(package.package),
                    "remaining": str(package.sessions_remaining),
                    "due_date": timezone.localtime(package.expires_at).strftime("%d/%m/%Y"),
                },
                idempotency_key=f"package-expiring:{package.pk}",
            )
            PatientPackage.objects.filter(pk=package.pk).update(expiry_warned_at=now)
            publish(
                "package.expiring",
                clinic=package.clinic_id,
                payload={"patient_package_id": package.pk, "patient_id": package.patient_id},
            )
        warned += 1
    expired = packages.filter(status=PackageStatus.ACTIVE, expires_at__lte=now).update(
        status=PackageStatus.EXPIRED
    )
    return warned, expired


# --- NFS-e ----------------------------------------------------------------------------------
def _invoice_request(invoice: Invoice) -> InvoiceRequest:
    payment = invoice.payment
    patient = payment.patient
    clinic = payment.clinic
    return InvoiceRequest(
        reference=invoice.reference,
        amount=invoice.amount,
        description=invoice.description,
        customer=Customer(
            name=patient.full_name,
            cpf_cnpj=patient.cpf,
            email=patient.email,
            phone=patient.phone,
            external_reference=f"patient-{patient.pk}",
        ),
        service_code=billing_option(clinic, "nfse_service_code"),
        municipal_tax_code=billing_option(clinic, "nfse_municipal_tax_code"),
        iss_rate=Decimal(str(rate)) if (rate := billing_option(clinic, "nfse_iss_rate")) else None,
        issued_on=timezone.localdate(),
        extra={
            "address": {
                "street": patient.street,
                "number": patient.number,
                "complement": patient.complement,
                "district": patient.district,
                "city": patient.city,
                "state": patient.state,
                "postal_code": patient.postal_code,
            }
        },
    )


def _apply_invoice(invoice: Invoice, update: InvoiceUpdate, *, provider: str = "") -> Invoice:
    """Store what the fiscal provider says; publish issued/failed/cancelled on change."""
    before = invoice.status
    invoice.status = update.status if update.status in InvoiceStatus.values else before
    invoice.provider = provider or invoice.provider
    invoice.number = update.number or invoice.number
    invoice.verification_code = update.verification_code or invoice.verification_code
    invoice.pdf_url = update.pdf_url or invoice.pdf_url
    invoice.xml_url = update.xml_url or invoice.xml_url
    # A refused cancellation comes back "authorized" with its reasons: keep them too.
    invoice.errors = list(update.errors) if update.errors else []
    if invoice.status == InvoiceStatus.AUTHORIZED and invoice.issued_at is None:
        invoice.issued_at = timezone.now()
    if invoice.status == InvoiceStatus.CANCELLED and invoice.cancelled_at is None:
        invoice.cancelled_at = timezone.now()
    invoice.save()
    if invoice.status != before:
        event = {
            InvoiceStatus.AUTHORIZED: "invoice.issued",
            InvoiceStatus.ERROR: "invoice.failed",
            InvoiceStatus.CANCELLED: "invoice.cancelled",
        }.get(invoice.status)
        if event:
            publish(
                event,
                clinic=invoice.clinic_id,
                payload={"invoice_id": invoice.pk, "payment_id": invoice.payment_id},
            )
    return invoice


def invoice_issue(*, payment: Payment) -> Invoice | None:
    """Issue the NFS-e of a received payment, once: the invoice row is unique per payment,
    so a redelivered ``payment.received`` finds it and issues nothing more."""
    clinic = payment.clinic
    with transaction.atomic():
        invoice, created = Invoice.objects.get_or_create(
            payment=payment,
            defaults={
                "clinic_id": payment.clinic_id,
                "reference": f"cuidar-{payment.reference[:24]}",
                "amount": payment.amount,
                "description": payment.description or billing_option(clinic, "nfse_description"),
            },
        )
    if not created:
        return invoice
    return _invoice_send(invoice)


def _fiscal_adapter(invoice: Invoice):
    """The fiscal provider of an invoice: the one that issued it, or the first of the
    clinic's chain for a new one. Issuing never falls back to the next provider: a provider
    that timed out may have accepted the invoice, and a second one would issue it twice."""
    from integrations.chains import chain_for
    from integrations.inbound import provider_for

    accounts = chain_for(invoice.clinic_id, "fiscal")
    if invoice.provider:
        account = invoice.provider_account or next(
            (a for a in accounts if a.provider == invoice.provider), None
        )
    else:
        account = accounts[0] if accounts else None
    if account is None:
        raise InvoiceError(_("No fiscal provider is configured for this clinic."))
    return account, provider_for(account)


def _invoice_send(invoice: Invoice) -> Invoice:
    account, adapter = _fiscal_adapter(invoice)
    invoice.attempts += 1
    invoice.provider = account.provider
    invoice.provider_account = account if account.pk else None
    try:
        update = adapter.issue(_invoice_request(invoice))
    except ProviderError as exc:
        invoice.status = InvoiceStatus.ERROR
        invoice.errors = [
            str(exc)
            if exc.permanent
            else _("%(provider)s is unavailable; issue it again later (same reference).")
            % {"provider": account.provider}
        ]
        invoice.save()
        publish(
            "invoice.failed",
            clinic=invoice.clinic_id,
            payload={"invoice_id": invoice.pk, "payment_id": invoice.payment_id},
        )
        return invoice
    with transaction.atomic():
        return _apply_invoice(invoice, update)


@transaction.atomic
def invoice_retry(*, invoice: Invoice) -> Invoice:
    """Issue again after the clinic corrected what the provider refused (same reference:
    the provider cannot end up with two invoices)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.ERROR:
        raise InvoiceError(_("Only a rejected invoice can be issued again."))
    invoice.status = InvoiceStatus.PROCESSING
    invoice.errors = []
    invoice.description = invoice.payment.description or invoice.description
    invoice.save()
    return _invoice_send(invoice)


def invoice_cancel(*, invoice: Invoice, justification: str) -> Invoice:
    """Cancel an issued NFS-e with the reason the city hall requires (15 to 255 chars)."""
    justification = (justification or "").strip()
    if not 15 <= len(justification) <= 255:
        raise InvoiceError(
            _("Give a reason of 15 to 255 characters."),
            fields={"justification": [_("Give a reason of 15 to 255 characters.")]},
        )
    if invoice.status != InvoiceStatus.AUTHORIZED:
        raise InvoiceError(_("Only an issued invoice can be cancelled."))
    _account, adapter = _fiscal_adapter(invoice)
    try:
        update = adapter.cancel(invoice.reference, justification)
    except ProviderError as exc:
        raise InvoiceError(_("The provider did not cancel: %(error)s") % {"error": exc}) from exc
    with transaction.atomic():
        invoice.cancel_justification = justification
        return _apply_invoice(invoice, update)


@transaction.atomic
def invoice_apply_update(
    *, clinic_id: int, update: InvoiceUpdate, provider: str = ""
) -> Invoice | None:
    invoice = (
        Invoice.objects.for_clinic(clinic_id)
        .select_for_update()
        .filter(reference=update.reference)
        .first()
    )
    if invoice is None:
        return None
    if invoice.status == InvoiceStatus.CANCELLED:
        return invoice  # nothing comes back from cancelled
    if provider and invoice.provider and provider != invoice.provider:
        return invoice  # only the provider that issued it speaks for it
    return _apply_invoice(invoice, update, provider=provider)


def invoices_poll(*, now: datetime | None = None, older_than=timedelta(minutes=2)) -> int:
    """Every 10 minutes: ask the provider about invoices still processing (providers
    without webhooks, or a lost one)."""
    now = now or timezone.now()
    polled = 0
    for invoice in Invoice.objects.filter(
        status=InvoiceStatus.PROCESSING, updated_at__lte=now - older_than
    ).select_related("provider_account")[:200]:
        try:
            _account, adapter = _fiscal_adapter(invoice)
            update = adapter.get_invoice(invoice.reference)
        except (ProviderError, InvoiceError):
            continue
        invoice_apply_update(clinic_id=invoice.clinic_id, update=update)
        polled += 1
    return polled


# --- Ledger -------------------------------------------------------------------------------
@transaction.atomic
def ledger_expense_save(*, expense: FinancialTransaction, by=None) -> FinancialTransaction:
    """A manager records (or corrects) an expense. Income lines come from payments only."""
    expense.kind = TransactionKind.EXPENSE
    if expense._state.adding:
        expense.created_by = by
    expense.amount = money(expense.amount)
    expense.full_clean()
    expense.save()
    return expense


@transaction.atomic
def ledger_mark_reconciled(*, clinic: Clinic, transaction_ids) -> int:
    """Mark the clinic's ledger lines reconciled (those not yet): one UPDATE, idempotent."""
    return (
        FinancialTransaction.objects.for_clinic(clinic)
        .filter(pk__in=list(transaction_ids), reconciled=False)
        .update(reconciled=True)
    )


# --- Dunning --------------------------------------------------------------------------------
def dunning_run(*, now: datetime | None = None, local_hours: Collection[int] | None = None) -> int:
    """09:00 of each clinic's time (``local_hours``; without them every clinic now):
    overdue charges get ``cobranca`` at D+1, D+3 and D+7 after the due date, with the
    payment link; then they land on the list for a person. A payment received stops the
    sequence (only pending payments are looked at); each step is sent once."""
    from clinic.messaging import message_send

    from .money import brl

    now = now or timezone.now()
    today = timezone.localdate(now)
    sent = 0
    overdue = (
        Payment.objects.filter(
            clinic__in=clinics_at_local_hours(hours=local_hours, now=now),
            status=P.PENDING,
            due_date__lt=today,
            dunning_flagged_at__isnull=True,
        )
        .select_related("clinic", "patient", "patient__clinic")
        .order_by("due_date", "pk")
    )
    for payment in overdue[:1000]:
        days = list(billing_option(payment.clinic, "dunning_days"))
        late = (today - payment.due_date).days
        due_steps = [i + 1 for i, day in enumerate(days) if late >= day]
        step = max(due_steps, default=0)
        with transaction.atomic():
            if step > payment.dunning_step:
                if payment.dunning_step == 0:
                    publish("payment.overdue", clinic=payment.clinic_id, payload=_payload(payment))
                message_send(
                    clinic=payment.clinic,
                    patient=payment.patient,
                    template="cobranca",
                    context={
                        # What is still owed: a part may have arrived already.
                        "amount": brl(payment.amount_owed),
                        "due_date": payment.due_date.strftime("%d/%m/%Y"),
                        "payment_link": payment.invoice_url or payment.boleto_url,
                    },
                    idempotency_key=f"dunning:{payment.pk}:{step}",
                )
                Payment.objects.filter(pk=payment.pk).update(dunning_step=step)
                sent += 1
            elif step == len(days) and late > days[-1]:
                # Every reminder went and the payment is still open: a person takes over.
                Payment.objects.filter(pk=payment.pk).update(dunning_flagged_at=now)
    return sent
