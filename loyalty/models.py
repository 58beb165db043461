"""Loyalty: a clinic's programme (its earning rules, tiers and compliance switch), each
patient's account, the append-only points ledger, the rewards catalogue and its
redemptions (vouchers), and referrals.

The ledger (``PointsEntry``) is the truth: the database refuses UPDATE and DELETE on it
(PostgreSQL trigger, migration 0002), and an account's ``balance`` is a cache of the sum of
its entries, written in the same transaction as each entry and checked by
``manage.py loyalty_reconcile``.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned, ClinicQuerySet

from .choices import (
    EntryKind,
    RedemptionChannel,
    RedemptionStatus,
    ReferenceType,
    ReferralStatus,
    RewardType,
    Tier,
)

#: Letters and digits that cannot be mistaken for one another when read aloud or typed.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def default_tier_benefits() -> dict:
    return {
        Tier.BRONZE: {"discount_percent": 0, "waitlist_priority": False},
        Tier.SILVER: {"discount_percent": 5, "waitlist_priority": False},
        Tier.GOLD: {"discount_percent": 10, "waitlist_priority": True},
        Tier.PLATINUM: {"discount_percent": 15, "waitlist_priority": True},
    }


class LoyaltyProgram(ClinicOwned):
    """A clinic's loyalty programme: whether it runs, how points are earned, when they
    expire, the tiers and their benefits, the referral limits, and the compliance switch."""

    is_active = models.BooleanField(_("programme running"), default=False)
    medical_mode = models.BooleanField(
        _("medical clinic (CFM 2.226/2019)"),
        default=True,
        help_text=_(
            "Discounts only: no bonus tied to a visit or procedure, no service or product "
            "prizes (docs/loyalty.md)."
        ),
    )
    points_per_real = models.DecimalField(
        _("points per R$ paid"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    attended_visit_points = models.PositiveIntegerField(_("bonus: attended visit"), default=0)
    confirm_ahead_points = models.PositiveIntegerField(_("bonus: confirmed 24 h ahead"), default=0)
    referral_points = models.PositiveIntegerField(_("bonus: referral (referrer)"), default=100)
    referred_points = models.PositiveIntegerField(_("bonus: referral (new patient)"), default=50)
    survey_points = models.PositiveIntegerField(_("bonus: satisfaction survey"), default=0)
    birthday_points = models.PositiveIntegerField(_("bonus: birthday"), default=0)
    expiry_months = models.PositiveSmallIntegerField(
        _("points expire after (months)"), default=12, validators=[MinValueValidator(1)]
    )
    expiry_notice_days = models.PositiveSmallIntegerField(
        _("expiry notice (days before)"), default=30
    )
    silver_points = models.PositiveIntegerField(_("silver from (points in 12 months)"), default=500)
    gold_points = models.PositiveIntegerField(_("gold from (points in 12 months)"), default=1500)
    platinum_points = models.PositiveIntegerField(
        _("platinum from (points in 12 months)"), default=4000
    )
    tier_benefits = models.JSONField(
        _("tier benefits"),
        default=default_tier_benefits,
        blank=True,
        help_text=_(
            'Per tier, e.g. {"gold": {"discount_percent": 10, "waitlist_priority": true}}.'
        ),
    )
    referral_monthly_limit = models.PositiveSmallIntegerField(
        _("rewarded referrals per patient per month"), default=5
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("loyalty programme")
        verbose_name_plural = _("loyalty programmes")
        constraints = [models.UniqueConstraint(fields=["clinic"], name="loyalty_program_one")]

    def __str__(self) -> str:
        return str(self.clinic)

    def clean(self):
        if not (self.silver_points < self.gold_points < self.platinum_points):
            raise ValidationError(
                {"gold_points": _("Thresholds must grow: silver < gold < platinum.")}
            )

    def tier_for(self, points: int) -> str:
        if points >= self.platinum_points:
            return Tier.PLATINUM
        if points >= self.gold_points:
            return Tier.GOLD
        if points >= self.silver_points:
            return Tier.SILVER
        return Tier.BRONZE

    def threshold(self, tier: str) -> int:
        return {
            Tier.BRONZE: 0,
            Tier.SILVER: self.silver_points,
            Tier.GOLD: self.gold_points,
            Tier.PLATINUM: self.platinum_points,
        }[tier]


class LoyaltyAccount(ClinicOwned):
    """A patient's points: the cached balance (the ledger's sum), the tier with the points
    earned in the last 12 months it was computed from, and the referral code."""

    patient = models.OneToOneField(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="loyalty_account",
        verbose_name=_("patient"),
    )
    balance = models.IntegerField(_("points"), default=0, editable=False)
    tier = models.CharField(
        _("tier"), max_length=10, choices=Tier.choices, default=Tier.BRONZE, editable=False
    )
    earned_12m = models.IntegerField(_("points earned in 12 months"), default=0, editable=False)
    tier_evaluated_at = models.DateTimeField(_("tier evaluated"), null=True, editable=False)
    referral_code = models.CharField(_("referral code"), max_length=12, default=new_code)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("loyalty account")
        verbose_name_plural = _("loyalty accounts")
        ordering = ["-balance", "pk"]
        constraints = [
            # The ledger never goes below zero: a redemption that would is refused here too.
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="loyalty_balance_not_negative"
            ),
            models.UniqueConstraint(
                fields=["clinic", "referral_code"], name="loyalty_referral_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} — {self.balance}"


class PointsEntryQuerySet(ClinicQuerySet):
    """The ledger refuses changes in Python too (SQLite has no trigger)."""

    def update(self, **kwargs):
        raise TypeError("the points ledger is append-only")

    def delete(self):
        raise TypeError("the points ledger is append-only")


class PointsEntry(ClinicOwned):
    """One line of the points ledger: points earned (a lot, with its expiry), redeemed,
    expired, adjusted by a manager or reversed (a refund). Append-only: a mistake is
    corrected by another entry. ``source_key`` makes every rule idempotent on its source:
    ``payment:<id>:earn`` exists once per account, however often the webhook arrives."""

    account = models.ForeignKey(
        LoyaltyAccount, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=EntryKind.choices)
    points = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=255)
    reference_type = models.CharField(
        _("reference"), max_length=12, choices=ReferenceType.choices, blank=True
    )
    reference_id = models.BigIntegerField(_("reference id"), null=True, blank=True)
    source_key = models.CharField(_("source"), max_length=120)
    #: The lot an expiry or reversal takes from (other debits are taken first in, first out).
    lot = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lot"),
    )
    #: What a payment's points were computed on (R$), to reverse a refund at the same rate.
    base_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    objects = PointsEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points ledger")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "source_key"], name="loyalty_entry_once"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=[EntryKind.EARN], points__gt=0)
                    | Q(
                        kind__in=[EntryKind.REDEEM, EntryKind.EXPIRE, EntryKind.REVERSE],
                        points__lt=0,
                    )
                    | (Q(kind=EntryKind.ADJUST) & ~Q(points=0))
                ),
                name="loyalty_entry_sign",
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "kind", "created_at"], name="loyalty_entry_kind_idx"),
            models.Index(
                fields=["clinic", "expires_at"],
                name="loyalty_lot_expiry_idx",
                condition=Q(expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d} — {self.reason}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError("the points ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("the points ledger is append-only")

    @property
    def is_lot(self) -> bool:
        return self.points > 0


class Reward(ClinicOwned):
    """A reward of the catalogue: what it costs in points, what it is worth, how many are
    left (empty: unlimited)."""

    name = models.CharField(_("name"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    reward_type = models.CharField(
        _("type"), max_length=10, choices=RewardType.choices, default=RewardType.DISCOUNT
    )
    points_cost = models.PositiveIntegerField(_("points"), validators=[MinValueValidator(1)])
    value = models.DecimalField(
        _("value (R$)"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("The discount the voucher gives at the desk."),
    )
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    is_active = models.BooleanField(_("offered"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["points_cost", "name"]

    def __str__(self) -> str:
        return self.name


class Redemption(ClinicOwned):
    """A reward redeemed: the points left the account (its ``redeem`` entry) and a voucher
    code was issued, used once at the desk as a discount on a payment."""

    account = models.ForeignKey(
        LoyaltyAccount,
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("account"),
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    code = models.CharField(_("voucher code"), max_length=12, unique=True, default=new_code)
    points = models.PositiveIntegerField(_("points"))
    value = models.DecimalField(_("value (R$)"), max_digits=10, decimal_places=2)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=RedemptionStatus.choices,
        default=RedemptionStatus.ISSUED,
    )
    channel = models.CharField(_("redeemed at"), max_length=8, choices=RedemptionChannel.choices)
    payment = models.ForeignKey(
        "billing.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("payment"),
    )
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.code} — {self.reward}"


class Referral(ClinicOwned):
    """A person a patient referred: from the CRM's lead (``?ref=<code>``) or typed at
    registration, until the referred patient's first visit is attended and paid and both are
    rewarded — once — or it is refused (self-referral, an existing patient, the monthly
    limit)."""

    referrer = models.ForeignKey(
        LoyaltyAccount,
        on_delete=models.PROTECT,
        related_name="referrals",
        verbose_name=_("referrer"),
    )
    lead_id = models.BigIntegerField(_("lead"), null=True, blank=True)
    referred_patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("referred patient"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING
    )
    refusal_reason = models.CharField(_("why refused"), max_length=255, blank=True)
    converted_at = models.DateTimeField(_("became a patient"), null=True, blank=True)
    rewarded_at = models.DateTimeField(_("rewarded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "lead_id"],
                condition=Q(lead_id__isnull=False),
                name="referral_lead_once",
            ),
            models.UniqueConstraint(
                fields=["clinic", "referred_patient"],
                condition=Q(referred_patient__isnull=False),
                name="referral_patient_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.referrer.patient} → {self.referred_patient or self.lead_id}"
