"""What billing's services share: the payment status machine's moves, booking what arrived
in the ledger, the event payload."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.tenancy import other_clinic_object
from clinic.models import Clinic
from integrations.events import publish

from ..choices import (
    PAYMENT_TRANSITIONS,
    Gateway,
    PaymentDivergence,
    PaymentMethod,
    PaymentStatus,
    TransactionCategory,
    TransactionKind,
)
from ..exceptions import (
    InvalidPaymentTransition,
)
from ..models import (
    FinancialTransaction,
    Payment,
)
from ..money import money

#: One logger for every billing service, as before the split into modules.
logger = logging.getLogger("billing.services")
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
    # Edges scope their choices; reaching here is a bug or tampering.
    if (obj := other_clinic_object(clinic, *objects)) is not None:
        raise ValueError(f"{obj!r} belongs to another clinic")
