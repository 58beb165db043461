"""Errors of the document layer: one refusal per reason, each safe to show the professional."""

from __future__ import annotations

from clinic.kernel.errors import ApplicationError


class DocumentError(ApplicationError):
    """Rendering or signing a document failed."""

    code = "document_error"


class SignerRefused(DocumentError):
    """The certificate may not sign: ``reason`` says which check failed (one of
    ``REASONS``), ``message`` says it in the user's language."""

    code = "signer_refused"

    BAD_PASSWORD = "bad_password"  # noqa: S105 - a reason code, not a password
    UNREADABLE = "unreadable"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    NO_NON_REPUDIATION = "no_non_repudiation"
    UNTRUSTED = "untrusted"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation_unknown"
    NO_CPF = "no_cpf"
    CPF_MISMATCH = "cpf_mismatch"

    def __init__(self, reason: str, message):
        super().__init__(message, fields={"certificate": [str(message)]})
        self.reason = reason
