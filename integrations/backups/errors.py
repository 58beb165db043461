"""Errors of backups, restores and drills."""

from clinic.kernel.errors import ApplicationError


class BackupError(ApplicationError):
    """A backup, restore, verification or drill could not be done. ``output`` keeps the
    tool's last lines (never a secret: pgBackRest redacts its keys and pass)."""

    code = "backup_error"

    def __init__(self, message, *, output: str = ""):
        super().__init__(message)
        self.output = output

    def __str__(self) -> str:
        return f"{self.message}\n{self.output}" if self.output else str(self.message)


class BackupNotConfigured(BackupError):
    code = "backup_not_configured"


class ChecksumMismatch(BackupError):
    """A backup file's SHA-256 is not the one recorded when it was taken."""

    code = "backup_checksum_mismatch"
