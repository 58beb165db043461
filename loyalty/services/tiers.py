"""Tiers: bronze, silver, gold, platinum by the points earned in the last 12 months (earned
less reversed; redemptions and expiries do not lower a tier, manual adjustments do not
count). Evaluated on every earn (up only happens then) and nightly for every account (down:
old points leave the window)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from clinic.models import Clinic
from integrations.events import publish

from ..choices import TIER_ORDER, EntryKind
from ..models import LoyaltyAccount, LoyaltyProgram, PointsEntry
from .ledger import program_for

WINDOW = timedelta(days=365)
#: Accounts written per UPDATE in the nightly evaluation.
BATCH = 2000
COUNTED = [EntryKind.EARN, EntryKind.REVERSE]


def _window_start(now: datetime) -> datetime:
    return now - WINDOW


def account_tier_evaluate(
    *, account: LoyaltyAccount, program: LoyaltyProgram | None = None, now: datetime | None = None
) -> str:
    """Recompute a (locked) account's 12-month points and tier; publish
    ``loyalty.tier_changed`` when it moved."""
    now = now or timezone.now()
    program = program or program_for(account.clinic_id)
    earned = (
        PointsEntry.objects.filter(
            account=account, kind__in=COUNTED, created_at__gte=_window_start(now)
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )
    tier = program.tier_for(earned)
    previous = account.tier
    account.earned_12m, account.tier, account.tier_evaluated_at = earned, tier, now
    account.save(update_fields=["earned_12m", "tier", "tier_evaluated_at"])
    if tier != previous:
        _publish_change(account.clinic_id, account.pk, account.patient_id, previous, tier, earned)
    return tier


def _publish_change(clinic_id, account_id, patient_id, previous, tier, earned) -> None:
    publish(
        "loyalty.tier_changed",
        clinic=clinic_id,
        payload={
            "account_id": account_id,
            "patient_id": patient_id,
            "from": previous,
            "to": tier,
            "direction": "up" if TIER_ORDER.index(tier) > TIER_ORDER.index(previous) else "down",
            "points_12m": earned,
        },
    )


def tiers_evaluate(*, clinic: Clinic, now: datetime | None = None) -> int:
    """The nightly evaluation of every account of a clinic: one aggregate query for the
    12-month sums, then only the accounts whose sum or tier changed are written (in
    batches, each with its events). Returns how many changed tier."""
    now = now or timezone.now()
    program = program_for(clinic)
    sums = dict(
        PointsEntry.objects.filter(
            clinic=clinic, kind__in=COUNTED, created_at__gte=_window_start(now)
        )
        .values("account")
        .annotate(total=Sum("points"))
        .values_list("account", "total")
        .order_by()
    )
    changes = []
    rows = (
        LoyaltyAccount.objects.for_clinic(clinic)
        .values_list("pk", "patient_id", "tier", "earned_12m")
        .order_by()
    )
    for pk, patient_id, tier, earned in rows.iterator(chunk_size=10000):
        total = sums.get(pk, 0)
        new_tier = program.tier_for(total)
        if total != earned or new_tier != tier:
            changes.append((pk, patient_id, tier, new_tier, total))
    moved = 0
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        with transaction.atomic():
            accounts = [
                LoyaltyAccount(pk=pk, tier=new, earned_12m=total, tier_evaluated_at=now)
                for pk, _patient, _old, new, total in batch
            ]
            LoyaltyAccount.objects.bulk_update(
                accounts, ["tier", "earned_12m", "tier_evaluated_at"], batch_size=BATCH
            )
            for pk, patient_id, old, new, total in batch:
                if old != new:
                    _publish_change(clinic.pk, pk, patient_id, old, new, total)
                    moved += 1
    return moved


def tier_progress(*, account: LoyaltyAccount, program: LoyaltyProgram) -> dict:
    """Where the patient stands: the tier, the next one and the points still needed."""
    index = TIER_ORDER.index(account.tier)
    nxt = TIER_ORDER[index + 1] if index + 1 < len(TIER_ORDER) else None
    needed = max(program.threshold(nxt) - account.earned_12m, 0) if nxt else 0
    low = program.threshold(account.tier)
    high = program.threshold(nxt) if nxt else None
    percent = 100 if high is None else int(100 * (account.earned_12m - low) / max(high - low, 1))
    return {
        "tier": account.tier,
        "next": nxt,
        "needed": needed,
        "percent": max(0, min(percent, 100)),
        "benefits": (program.tier_benefits or {}).get(account.tier, {}),
    }
