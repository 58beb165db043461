"""Errors of the clinic app."""

from clinic.kernel.errors import ApplicationError


class ClinicError(ApplicationError):
    code = "clinic_error"


class NotAMember(ClinicError):
    status_code = 403
    code = "not_a_member"
