"""Shared reads of loyalty: the portal, the admin and the partner API use them."""

from __future__ import annotations

from django.db.models import QuerySet

from clinic.models import Clinic, Patient

from .models import LoyaltyAccount, PointsEntry, Redemption, Referral, Reward


def account_of(*, patient: Patient) -> LoyaltyAccount | None:
    return LoyaltyAccount.objects.filter(clinic_id=patient.clinic_id, patient=patient).first()


def account_history(*, account: LoyaltyAccount) -> QuerySet[PointsEntry]:
    """The account's entries, newest first."""
    return (
        PointsEntry.objects.for_clinic(account.clinic_id)
        .filter(account=account)
        .order_by("-created_at", "-pk")
    )


def rewards_offered(*, clinic: Clinic | int, program) -> QuerySet[Reward]:
    """What the catalogue offers now: active, in stock, allowed by the compliance switch."""
    from django.db.models import Q

    from .choices import RewardType

    rewards = (
        Reward.objects.for_clinic(clinic)
        .filter(is_active=True)
        .filter(Q(stock__isnull=True) | Q(stock__gt=0))
    )
    if program.medical_mode:
        rewards = rewards.filter(reward_type=RewardType.DISCOUNT)
    return rewards.order_by("points_cost", "name")


def account_vouchers(*, account: LoyaltyAccount) -> QuerySet[Redemption]:
    return (
        Redemption.objects.for_clinic(account.clinic_id)
        .filter(account=account)
        .select_related("reward")
        .order_by("-created_at")
    )


def account_referrals(*, account: LoyaltyAccount) -> QuerySet[Referral]:
    return (
        Referral.objects.for_clinic(account.clinic_id)
        .filter(referrer=account)
        .select_related("referred_patient")
        .order_by("-created_at")
    )
