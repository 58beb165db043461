"""Payments: registered at the desk, charged through a gateway (with a static PIX
fallback), confirmed, cancelled, refunded, their receipt sent."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Clinic, Patient
from integrations.base import (
    ChainFailed,
    ChargeRequest,
    Customer,
    ProviderError,
)
from integrations.chains import run_chain
from integrations.events import publish

from ..choices import (
    Gateway,
    PaymentMethod,
    TransactionCategory,
    TransactionKind,
)
from ..conf import billing_option
from ..exceptions import (
    GatewayUnavailable,
    InvalidPaymentTransition,
    RefundTooLarge,
)
from ..models import (
    FinancialTransaction,
    PatientPackage,
    Payment,
    PaymentRefund,
)
from ..money import money
from .common import GATEWAY_METHODS, P, _locked, _mark_paid, _move, _payload, _same_clinic
from .discounts import payment_discount_code_apply


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
    discount_code: str = "",
    by=None,
) -> Payment:
    """Money received at the desk (cash, card machine, PIX to the clinic's key): paid at
    once, with its ledger line. ``discount_code`` (a loyalty voucher …) comes off first."""
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
    if discount_code:
        payment_discount_code_apply(payment=payment, code=discount_code, by=by)
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
    discount_code: str = "",
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
        if discount_code:
            payment_discount_code_apply(payment=payment, code=discount_code, by=by)
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
    from clinic.messaging.services import message_send

    from ..money import brl

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
