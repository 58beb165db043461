"""Errors of the clinical record."""

from clinic.kernel.errors import ApplicationError


class RecordError(ApplicationError):
    code = "record_error"


class EncounterLocked(RecordError):
    """The encounter is signed: it accepts no new entry, vitals included."""

    status_code = 409
    code = "encounter_locked"


class SigningRefused(RecordError):
    """What CFM 1.638/2002 requires is missing; ``missing`` lists it."""

    status_code = 422
    code = "signing_refused"

    def __init__(self, message, *, missing: list[str]):
        super().__init__(message, fields={"__all__": list(missing)})
        self.missing = list(missing)


class NotTheAuthor(RecordError):
    status_code = 403
    code = "not_the_author"


class RecordAccessDenied(RecordError):
    status_code = 403
    code = "record_access_denied"


class AttachmentRefused(RecordError):
    code = "attachment_refused"
