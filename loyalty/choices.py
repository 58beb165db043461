"""Choices of the loyalty app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class EntryKind(models.TextChoices):
    """A line of the points ledger. Earn and a positive adjustment add a lot of points
    that expires; the others take points away."""

    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    REVERSE = "reverse", _("Reversed")


class ReferenceType(models.TextChoices):
    PAYMENT = "payment", _("Payment")
    APPOINTMENT = "appointment", _("Appointment")
    REFERRAL = "referral", _("Referral")
    REWARD = "reward", _("Reward")
    BIRTHDAY = "birthday", _("Birthday")
    SURVEY = "survey", _("Satisfaction survey")
    MANUAL = "manual", _("Manual")
    LOT = "lot", _("Points earned earlier")


class Tier(models.TextChoices):
    BRONZE = "bronze", _("Bronze")
    SILVER = "silver", _("Silver")
    GOLD = "gold", _("Gold")
    PLATINUM = "platinum", _("Platinum")


TIER_ORDER = [Tier.BRONZE, Tier.SILVER, Tier.GOLD, Tier.PLATINUM]


class RewardType(models.TextChoices):
    """Seed 004 §3.6: a discount (R$ off a payment), a service, a product."""

    DISCOUNT = "discount", _("Discount")
    SERVICE = "service", _("Service")
    PRODUCT = "product", _("Product")


class RedemptionStatus(models.TextChoices):
    ISSUED = "issued", _("Voucher issued")
    USED = "used", _("Used")
    CANCELLED = "cancelled", _("Cancelled")


class RedemptionChannel(models.TextChoices):
    PORTAL = "portal", _("Portal")
    DESK = "desk", _("Desk")


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the first visit")
    CONVERTED = "converted", _("Became a patient")
    REWARDED = "rewarded", _("Rewarded")
    REFUSED = "refused", _("Refused")
