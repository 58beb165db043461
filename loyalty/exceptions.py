"""Errors of the loyalty app."""

from clinic.kernel.errors import ApplicationError


class LoyaltyError(ApplicationError):
    code = "loyalty_error"


class ProgramInactive(LoyaltyError):
    status_code = 409
    code = "loyalty_program_inactive"


class NotEnoughPoints(LoyaltyError):
    status_code = 409
    code = "not_enough_points"


class RewardUnavailable(LoyaltyError):
    status_code = 409
    code = "reward_unavailable"


class ReferralRefused(LoyaltyError):
    status_code = 409
    code = "referral_refused"
