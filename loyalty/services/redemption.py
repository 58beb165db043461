"""Rewards redeemed for points: a voucher code, then used once at the payment desk as a
discount on a payment (``billing.discounts`` plug-in, registered in ``loyalty/apps.py``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.discounts import Discount, discount_code_handler
from billing.exceptions import DiscountRefused

from ..choices import EntryKind, RedemptionChannel, RedemptionStatus, ReferenceType, RewardType
from ..exceptions import NotEnoughPoints, ProgramInactive, RewardUnavailable
from ..models import LoyaltyAccount, Redemption, Reward
from .ledger import account_lock, entry_add, program_for


def reward_is_allowed(reward: Reward, program) -> bool:
    """A medical clinic offers discounts only (docs/loyalty.md, CFM 2.226/2019)."""
    return not program.medical_mode or reward.reward_type == RewardType.DISCOUNT


@transaction.atomic
def reward_redeem(
    *, account: LoyaltyAccount, reward: Reward, channel: str = RedemptionChannel.PORTAL, by=None
) -> Redemption:
    """Spend the reward's points and issue its voucher, in one transaction. The account's
    row lock serialises an account's redemptions (20 at once on a balance for 3: 3 win);
    stock is taken by a conditional UPDATE, so no lock is held on the reward."""
    if reward.clinic_id != account.clinic_id:
        raise ValueError("the reward belongs to another clinic")
    program = program_for(account.clinic_id)
    if not program.is_active:
        raise ProgramInactive(_("The clinic's loyalty programme is not running."))
    if not reward.is_active or not reward_is_allowed(reward, program):
        raise RewardUnavailable(_("This reward is no longer offered."))
    account = account_lock(account)
    if account.balance < reward.points_cost:
        raise NotEnoughPoints(
            _("%(reward)s costs %(cost)s points; you have %(balance)s.")
            % {"reward": reward.name, "cost": reward.points_cost, "balance": account.balance}
        )
    if reward.stock is not None:
        taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
        if not taken:
            raise RewardUnavailable(_("%(reward)s is out of stock.") % {"reward": reward.name})
    redemption = Redemption.objects.create(
        clinic_id=account.clinic_id,
        account=account,
        reward=reward,
        points=reward.points_cost,
        value=reward.value,
        channel=channel,
        created_by=by,
    )
    entry_add(
        account,
        kind=EntryKind.REDEEM,
        points=-reward.points_cost,
        reason=reward.name,
        source_key=f"redemption:{redemption.pk}",
        reference_type=ReferenceType.REWARD,
        reference_id=redemption.pk,
        by=by,
    )
    return redemption


@transaction.atomic
def redemption_cancel(*, redemption: Redemption, by=None) -> Redemption:
    """An unused voucher cancelled: its points come back (a new lot) and its stock too."""
    account = account_lock(redemption.account_id)
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status != RedemptionStatus.ISSUED:
        raise RewardUnavailable(_("Only an unused voucher can be cancelled."))
    redemption.status = RedemptionStatus.CANCELLED
    redemption.save(update_fields=["status"])
    if redemption.reward.stock is not None:
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
    entry_add(
        account,
        kind=EntryKind.ADJUST,
        points=redemption.points,
        reason=_("Voucher %(code)s cancelled") % {"code": redemption.code},
        source_key=f"redemption:{redemption.pk}:cancel",
        reference_type=ReferenceType.REWARD,
        reference_id=redemption.pk,
        by=by,
    )
    return redemption


@discount_code_handler("loyalty")
def voucher_discount(*, payment, code: str, by=None) -> Discount | None:
    """The desk typed a code: if it is one of our vouchers, it must be the payment's
    patient's, unused; it is marked used with the payment, in the payment's transaction."""
    redemption = (
        Redemption.objects.select_for_update()
        .select_related("account", "reward")
        .filter(clinic_id=payment.clinic_id, code=code.upper())
        .first()
    )
    if redemption is None:
        return None
    if redemption.account.patient_id != payment.patient_id:
        raise DiscountRefused(
            _("The voucher %(code)s belongs to another patient.") % {"code": redemption.code},
            fields={"discount_code": [_("Another patient's voucher.")]},
        )
    if redemption.status != RedemptionStatus.ISSUED:
        raise DiscountRefused(
            _("The voucher %(code)s was already used or cancelled.") % {"code": redemption.code},
            fields={"discount_code": [_("Already used or cancelled.")]},
        )
    # A voucher worth the whole charge (or more) leaves one cent: a payment of nothing is
    # not a payment (billing refuses it).
    amount = min(redemption.value, payment.amount - payment.amount.__class__("0.01"))
    redemption.status = RedemptionStatus.USED
    redemption.payment = payment
    redemption.used_at = timezone.now()
    redemption.save(update_fields=["status", "payment", "used_at"])
    return Discount(
        amount=amount,
        reference=redemption.code,
        label=_("Loyalty voucher %(code)s: %(reward)s")
        % {"code": redemption.code, "reward": redemption.reward.name},
    )
