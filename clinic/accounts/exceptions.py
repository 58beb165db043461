"""Errors of staff accounts."""

from clinic.exceptions import ClinicError


class AccountError(ClinicError):
    code = "account_error"
