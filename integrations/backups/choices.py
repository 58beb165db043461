"""Choices of backups and drills."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BackupMethod(models.TextChoices):
    PGBACKREST = "pgbackrest", _("pgBackRest (PostgreSQL)")
    SQLITE = "sqlite", _("SQLite copy")


class BackupRunKind(models.TextChoices):
    FULL = "full", _("Full backup")
    DIFF = "diff", _("Differential backup")
    INCR = "incr", _("Incremental backup")
    COPY = "copy", _("Copy (SQLite)")
    VERIFY = "verify", _("Verification")
    RESTORE = "restore", _("Restore")
    DRILL = "drill", _("Restore drill")

    @classmethod
    def backups(cls) -> list[str]:
        """The kinds that leave a restorable backup behind."""
        return [cls.FULL, cls.DIFF, cls.INCR, cls.COPY]


class BackupRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
