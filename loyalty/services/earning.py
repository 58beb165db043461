"""Earning rules: points per R$ paid (net of discounts and refunds), bonuses for an attended
visit, for confirming ahead, for the satisfaction survey and on the birthday. Each is keyed
on its source (``source_key``), so a replayed or duplicated event credits once; a payment's
points follow the payment's state, so a refund (or a chargeback) arriving before or after
the payment converges on the same net points."""

from __future__ import annotations

import calendar
import math
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.choices import PaymentStatus
from billing.models import Payment
from clinic.kernel.timezones import clinic_today
from clinic.models import Clinic, Patient

from ..choices import EntryKind, ReferenceType
from ..models import LoyaltyAccount, LoyaltyProgram, PointsEntry
from .ledger import account_for, account_lock, entry_add, program_for, publish_earned
from .tiers import account_tier_evaluate

#: Confirming at least this long before the appointment earns the confirmation bonus.
CONFIRM_AHEAD = timedelta(hours=24)


def points_earn(
    *,
    account: LoyaltyAccount,
    points: int,
    reason: str,
    source_key: str,
    reference_type: str = "",
    reference_id: int | None = None,
    base_amount=None,
    program: LoyaltyProgram | None = None,
) -> PointsEntry | None:
    """Credit points to a LOCKED account once per ``source_key``, re-evaluate its tier and
    publish ``loyalty.points_earned``. ``None`` when there was nothing to credit."""
    if points <= 0:
        return None
    entry = entry_add(
        account,
        kind=EntryKind.EARN,
        points=points,
        reason=reason,
        source_key=source_key,
        reference_type=reference_type,
        reference_id=reference_id,
        base_amount=base_amount,
    )
    if entry is not None:
        account_tier_evaluate(account=account, program=program)
        publish_earned(entry)
    return entry


def _points_for(amount: Decimal, rate: Decimal) -> int:
    return math.floor(amount * rate)


def _payment_net(payment: Payment) -> Decimal:
    """What the patient really paid and kept paid: received (never more than the charge,
    which is already net of discounts) less refunds; nothing while not paid."""
    if payment.status not in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        return Decimal("0")
    return max(min(payment.amount_received, payment.amount) - payment.refunded_amount, Decimal("0"))


@transaction.atomic
def payment_points_sync(*, clinic_id: int, payment_id: int) -> int:
    """Bring a payment's points in line with what it is now: earn them once when paid,
    reverse the refunded share when refunded (or charged back). Safe to run for every
    ``payment.received`` and ``payment.refunded``, any number of times, in any order: it
    reads the payment, not the event. Returns the points moved."""
    payment = (
        Payment.objects.select_related("clinic", "patient")
        .filter(pk=payment_id, clinic_id=clinic_id)
        .first()
    )
    if payment is None:
        return 0
    program = program_for(clinic_id)
    if program.is_active:
        account = account_for(payment.patient)
    else:
        # Switched off: nothing to earn, but a refund still reverses points earned before.
        account = LoyaltyAccount.objects.filter(patient=payment.patient).first()
        if account is None:
            return 0
    account = account_lock(account)
    earned = PointsEntry.objects.filter(
        account=account, source_key=f"payment:{payment.pk}:earn"
    ).first()
    net = _payment_net(payment)
    if earned is None:
        if not program.is_active or net <= 0 or program.points_per_real <= 0:
            return 0
        entry = points_earn(
            account=account,
            points=_points_for(net, program.points_per_real),
            reason=_("Payment %(reference)s") % {"reference": payment.reference[:8]},
            source_key=f"payment:{payment.pk}:earn",
            reference_type=ReferenceType.PAYMENT,
            reference_id=payment.pk,
            base_amount=net,
            program=program,
        )
        return entry.points if entry else 0
    # Already earned: reverse what the refunds took back, at the rate it was earned at.
    rate = Decimal(earned.points) / earned.base_amount if earned.base_amount else Decimal("0")
    target = min(_points_for(net, rate), earned.points)
    current = earned.points + sum(
        PointsEntry.objects.filter(account=account, lot=earned, kind=EntryKind.REVERSE).values_list(
            "points", flat=True
        )
    )
    if target >= current:
        return 0
    # Points already spent stay spent: the ledger never goes below zero.
    take = min(current - target, account.balance)
    if take <= 0:
        return 0
    entry_add(
        account,
        kind=EntryKind.REVERSE,
        points=-take,
        reason=_("Refund of payment %(reference)s") % {"reference": payment.reference[:8]},
        source_key=f"payment:{payment.pk}:reverse:{target}",
        reference_type=ReferenceType.PAYMENT,
        reference_id=payment.pk,
        lot=earned,
    )
    account_tier_evaluate(account=account, program=program)
    return -take


def _bonus(*, patient: Patient, points: int, reason: str, key: str, ref_type: str, ref_id):
    if points <= 0:
        return None
    with transaction.atomic():
        account = account_lock(account_for(patient))
        return points_earn(
            account=account,
            points=points,
            reason=reason,
            source_key=key,
            reference_type=ref_type,
            reference_id=ref_id,
        )


def appointment_points_earn(*, appointment, confirmed: bool = False) -> PointsEntry | None:
    """The attended-visit bonus (``appointment.completed``) or the confirm-ahead bonus
    (``appointment.confirmed`` at least 24 h before). Off in a medical clinic: a prize tied
    to a consultation or procedure (docs/loyalty.md)."""
    program = program_for(appointment.clinic_id)
    if not program.is_active or program.medical_mode:
        return None
    if confirmed:
        when = appointment.confirmed_at or timezone.now()
        if appointment.start - when < CONFIRM_AHEAD:
            return None
        points, key = program.confirm_ahead_points, f"appointment:{appointment.pk}:confirmed"
        reason = _("Confirmed ahead")
    else:
        points, key = program.attended_visit_points, f"appointment:{appointment.pk}:attended"
        reason = _("Attended visit")
    return _bonus(
        patient=appointment.patient,
        points=points,
        reason=reason,
        key=key,
        ref_type=ReferenceType.APPOINTMENT,
        ref_id=appointment.pk,
    )


def survey_points_earn(*, patient: Patient, feedback_id: int) -> PointsEntry | None:
    """Answering the satisfaction survey (``feedback.received``, when that exists)."""
    program = program_for(patient.clinic_id)
    if not program.is_active:
        return None
    return _bonus(
        patient=patient,
        points=program.survey_points,
        reason=_("Answered the satisfaction survey"),
        key=f"survey:{feedback_id}",
        ref_type=ReferenceType.SURVEY,
        ref_id=feedback_id,
    )


def birthday_points_run(*, clinic: Clinic, now: datetime | None = None) -> int:
    """Birthday bonus for today's birthdays at the clinic (once a year per patient)."""
    program = program_for(clinic)
    if not program.is_active or program.birthday_points <= 0:
        return 0
    today = clinic_today(clinic, now)
    born = Q(birth_date__month=today.month, birth_date__day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        # 29/02 birthdays are celebrated on 28/02 in other years
        born |= Q(birth_date__month=2, birth_date__day=29)
    credited = 0
    for patient in Patient.objects.for_clinic(clinic).filter(born).iterator(chunk_size=500):
        entry = _bonus(
            patient=patient,
            points=program.birthday_points,
            reason=_("Happy birthday"),
            key=f"birthday:{today.year}",
            ref_type=ReferenceType.BIRTHDAY,
            ref_id=None,
        )
        credited += entry is not None
    return credited
