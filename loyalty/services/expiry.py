"""Expiry: points not spent within N months of being earned (the programme's
``expiry_months``, default 12) expire, first in, first out; the patient is told
``expiry_notice_days`` before (default 30; template ``pontos_expirando``, sent only with
the patient's consent). A periodic job runs it (config/celery.py, "loyalty-expiry")."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic
from clinic.selectors import clinics_at_local_hours

from ..choices import EntryKind, ReferenceType
from ..models import LoyaltyAccount, PointsEntry
from .ledger import account_lock, account_lots, entry_add, program_for
from .tiers import account_tier_evaluate


def account_expire(*, account: LoyaltyAccount, now: datetime | None = None) -> tuple[int, int]:
    """Expire what is left of an account's lots past their date, and send the notice of
    what expires within the notice window. Returns (points expired, notices sent)."""
    from clinic.messaging.services import message_send

    now = now or timezone.now()
    program = program_for(account.clinic_id)
    expired = notices = 0
    with transaction.atomic():
        account = account_lock(account)
        lots = account_lots(account)
        for lot in lots:
            if lot.left > 0 and lot.entry.expires_at and lot.entry.expires_at <= now:
                entry = entry_add(
                    account,
                    kind=EntryKind.EXPIRE,
                    points=-lot.left,
                    reason=_("Expired"),
                    source_key=f"expire:{lot.entry.pk}",
                    reference_type=ReferenceType.LOT,
                    reference_id=lot.entry.pk,
                    lot=lot.entry,
                )
                if entry is not None:
                    expired += lot.left
                    lot.left = 0
        if expired:
            account_tier_evaluate(account=account, program=program, now=now)
        soon = now + timedelta(days=program.expiry_notice_days)
        due = [
            lot
            for lot in lots
            if lot.left > 0 and lot.entry.expires_at and now < lot.entry.expires_at <= soon
        ]
        if due and program.is_active:
            first = min(lot.entry.expires_at for lot in due)
            # The last day they can be used, in the clinic's calendar.
            last_day = (first.astimezone(clinic_zone(account.clinic)) - timedelta(seconds=1)).date()
            # One notice per lot: a rerun of the job (or an overlapping one) sends nothing.
            message_send(
                clinic=account.clinic,
                patient=account.patient,
                template="pontos_expirando",
                context={
                    "points": sum(lot.left for lot in due if lot.entry.expires_at == first),
                    # The template's text is pt-BR: its date too, whatever language
                    # the job runs in.
                    "due_date": last_day.strftime("%d/%m/%Y"),
                    "balance": account.balance,
                },
                idempotency_key=f"loyalty-expiry:{min(lot.entry.pk for lot in due)}",
            )
            notices += 1
    return expired, notices


def points_expiry_run(
    *, local_hours: Collection[int] | None = None, now: datetime | None = None
) -> tuple[int, int]:
    """The periodic job (03:00 of each clinic): every account holding a lot that expires
    within the notice window. Returns (points expired, notices sent)."""
    now = now or timezone.now()
    expired = notices = 0
    for clinic in clinics_at_local_hours(hours=local_hours, now=now):
        e, n = clinic_expiry_run(clinic=clinic, now=now)
        expired, notices = expired + e, notices + n
    return expired, notices


def clinic_expiry_run(*, clinic: Clinic, now: datetime | None = None) -> tuple[int, int]:
    now = now or timezone.now()
    program = program_for(clinic)
    horizon = now + timedelta(days=program.expiry_notice_days)
    accounts = (
        LoyaltyAccount.objects.for_clinic(clinic)
        .filter(
            balance__gt=0,
            pk__in=PointsEntry.objects.for_clinic(clinic)
            .filter(expires_at__lte=horizon)
            .values("account"),
        )
        .select_related("clinic", "patient")
    )
    expired = notices = 0
    for account in accounts.iterator(chunk_size=500):
        e, n = account_expire(account=account, now=now)
        expired, notices = expired + e, notices + n
    return expired, notices
