"""Every write of loyalty, each in a transaction under the account's row lock. Modules by
subject: ``ledger`` (accounts, entries, adjustments, lots, reconciliation), ``earning``
(the earning rules), ``tiers``, ``expiry``, ``redemption`` (rewards and vouchers),
``referrals``."""

from .earning import (
    appointment_points_earn,
    birthday_points_run,
    payment_points_sync,
    points_earn,
    survey_points_earn,
)
from .expiry import account_expire, clinic_expiry_run, points_expiry_run
from .ledger import (
    account_for,
    account_lock,
    account_lots,
    accounts_reconcile,
    add_months,
    entry_add,
    lot_expiry,
    points_adjust,
    program_for,
)
from .redemption import redemption_cancel, reward_is_allowed, reward_redeem, voucher_discount
from .referrals import (
    referral_convert,
    referral_from_lead,
    referral_link,
    referral_register,
    referral_reward,
    referral_share_text,
    whatsapp_share_url,
)
from .tiers import account_tier_evaluate, tier_progress, tiers_evaluate

__all__ = [
    "account_expire",
    "account_for",
    "account_lock",
    "account_lots",
    "account_tier_evaluate",
    "accounts_reconcile",
    "add_months",
    "appointment_points_earn",
    "birthday_points_run",
    "clinic_expiry_run",
    "entry_add",
    "lot_expiry",
    "payment_points_sync",
    "points_adjust",
    "points_earn",
    "points_expiry_run",
    "program_for",
    "redemption_cancel",
    "referral_convert",
    "referral_from_lead",
    "referral_link",
    "referral_register",
    "referral_reward",
    "referral_share_text",
    "reward_is_allowed",
    "reward_redeem",
    "survey_points_earn",
    "tier_progress",
    "tiers_evaluate",
    "voucher_discount",
    "whatsapp_share_url",
]
