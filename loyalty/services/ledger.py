"""The points ledger: accounts, one entry at a time under the account's row lock, manual
adjustments, the lots an account holds (first in, first out) and the reconciliation of the
cached balance with the ledger."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Patient
from integrations.events import publish

from ..choices import EntryKind, ReferenceType
from ..exceptions import LoyaltyError, NotEnoughPoints
from ..models import LoyaltyAccount, LoyaltyProgram, PointsEntry


def program_for(clinic: Clinic | int) -> LoyaltyProgram:
    """The clinic's programme (created, switched off, on first use)."""
    clinic_id = getattr(clinic, "pk", clinic)
    program = LoyaltyProgram.objects.filter(clinic_id=clinic_id).first()
    if program is None:
        try:
            with transaction.atomic():
                program = LoyaltyProgram.objects.create(clinic_id=clinic_id)
        except IntegrityError:  # created by a concurrent caller
            program = LoyaltyProgram.objects.get(clinic_id=clinic_id)
    return program


def account_for(patient: Patient) -> LoyaltyAccount:
    """The patient's account, created on first use."""
    account = LoyaltyAccount.objects.filter(patient=patient).first()
    if account is None:
        try:
            with transaction.atomic():
                account = LoyaltyAccount.objects.create(
                    clinic_id=patient.clinic_id, patient=patient
                )
        except IntegrityError:
            account = LoyaltyAccount.objects.get(patient=patient)
    return account


def account_lock(account: LoyaltyAccount | int) -> LoyaltyAccount:
    """The account's row, locked until the transaction ends: every entry of one account is
    written under it, so balance checks and idempotency checks cannot race."""
    pk = getattr(account, "pk", account)
    return LoyaltyAccount.objects.select_for_update().select_related("clinic").get(pk=pk)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months; the 31st becomes the month's last day (31/01 + 1 → 28/02)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def lot_expiry(*, clinic: Clinic, earned_at: datetime, months: int) -> datetime:
    """Points earned on a day (the clinic's date) are good through the same date ``months``
    later, to the end of that day in the clinic's zone."""
    zone = clinic_zone(clinic)
    day = add_months(timezone.localdate(earned_at, zone), months)
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def entry_add(
    account: LoyaltyAccount,
    *,
    kind: str,
    points: int,
    reason: str,
    source_key: str,
    reference_type: str = "",
    reference_id: int | None = None,
    lot: PointsEntry | None = None,
    base_amount=None,
    by=None,
    now: datetime | None = None,
) -> PointsEntry | None:
    """Write one entry on a LOCKED account (``account_lock``) and move its cached balance
    with it. Returns ``None`` when ``source_key`` was written before: every rule is
    idempotent on its source (a replayed event writes nothing)."""
    if PointsEntry.objects.filter(account=account, source_key=source_key).exists():
        return None
    if account.balance + points < 0:
        raise NotEnoughPoints(
            _("Not enough points: %(balance)s available.") % {"balance": account.balance}
        )
    now = now or timezone.now()
    expires_at = None
    if points > 0:
        program = program_for(account.clinic_id)
        expires_at = lot_expiry(clinic=account.clinic, earned_at=now, months=program.expiry_months)
    entry = PointsEntry(
        clinic_id=account.clinic_id,
        account=account,
        kind=kind,
        points=points,
        reason=reason[:255],
        source_key=source_key[:120],
        reference_type=reference_type,
        reference_id=reference_id,
        lot=lot,
        base_amount=base_amount,
        expires_at=expires_at,
        created_by=by,
    )
    entry.save()
    account.balance += points
    account.save(update_fields=["balance"])
    return entry


@transaction.atomic
def points_adjust(
    *, account: LoyaltyAccount, points: int, reason: str, by, request=None
) -> PointsEntry:
    """A manager's correction, with its reason; audited (``clinic.audit``). Only managers
    and admins reach it (the admin checks the role)."""
    from clinic.audit import audit_record
    from clinic.models import AuditEntry

    if not points:
        raise LoyaltyError(_("An adjustment needs points."), fields={"points": [_("Not zero.")]})
    if not reason.strip():
        raise LoyaltyError(_("Say why."), fields={"reason": [_("A reason is required.")]})
    account = account_lock(account)
    entry = entry_add(
        account,
        kind=EntryKind.ADJUST,
        points=points,
        reason=reason,
        source_key=f"adjust:{uuid.uuid4().hex}",
        reference_type=ReferenceType.MANUAL,
        by=by,
    )
    audit_record(
        clinic=account.clinic,
        action="loyalty.adjust",
        actor_kind=AuditEntry.Actor.STAFF,
        actor_id=by.pk if by else None,
        actor_label=by.get_username() if by else "",
        obj=entry,
        patient=account.patient_id,
        request=request,
        details={"points": points, "reason": reason[:255]},
    )
    if points > 0:
        from .tiers import account_tier_evaluate

        account_tier_evaluate(account=account)
        publish_earned(entry)
    return entry


def publish_earned(entry: PointsEntry) -> None:
    publish(
        "loyalty.points_earned",
        clinic=entry.clinic_id,
        payload={
            "account_id": entry.account_id,
            "patient_id": entry.account.patient_id,
            "entry_id": entry.pk,
            "points": entry.points,
            "balance": entry.account.balance,
            "reference_type": entry.reference_type,
            "reference_id": entry.reference_id,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        },
    )


# --- Lots: first in, first out --------------------------------------------------------------
@dataclass
class Lot:
    """Points added by one entry and what is left of them."""

    entry: PointsEntry
    left: int


def account_lots(account: LoyaltyAccount) -> list[Lot]:
    """The account's lots, oldest first, with what is left of each: expiries and reversals
    take from their own lot; redemptions and negative adjustments from the oldest lot
    first (FIFO)."""
    entries = list(PointsEntry.objects.filter(account=account).order_by("created_at", "pk"))
    lots = {e.pk: Lot(e, e.points) for e in entries if e.points > 0}
    fifo = 0
    for entry in entries:
        if entry.points >= 0:
            continue
        if entry.lot_id in lots:
            lots[entry.lot_id].left += entry.points
        else:
            fifo -= entry.points
    ordered = sorted(lots.values(), key=lambda lot: (lot.entry.created_at, lot.entry.pk))
    for lot in ordered:
        take = min(max(lot.left, 0), fifo)
        lot.left -= take
        fifo -= take
    return ordered


# --- Reconciliation -------------------------------------------------------------------------
@dataclass
class Mismatch:
    account_id: int
    cached: int
    ledger: int


def accounts_reconcile(*, clinic: Clinic | None = None, fix: bool = False) -> list[Mismatch]:
    """Accounts whose cached balance is not the sum of their ledger (none, unless someone
    wrote around the services). With ``fix`` the cache is set to the ledger's sum."""
    accounts = LoyaltyAccount.objects.all()
    if clinic is not None:
        accounts = accounts.for_clinic(clinic)
    sums = dict(
        PointsEntry.objects.filter(account__in=accounts)
        .values("account")
        .annotate(total=Sum("points"))
        .values_list("account", "total")
    )
    mismatches = [
        Mismatch(pk, balance, sums.get(pk, 0))
        for pk, balance in accounts.values_list("pk", "balance")
        if balance != sums.get(pk, 0)
    ]
    if fix:
        for mismatch in mismatches:
            with transaction.atomic():
                account = account_lock(mismatch.account_id)
                total = PointsEntry.objects.filter(account=account).aggregate(s=Sum("points"))["s"]
                account.balance = total or 0
                account.save(update_fields=["balance"])
    return mismatches
