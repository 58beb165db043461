"""pgBackRest's commands, as Cuidar uses them.

pgBackRest (https://pgbackrest.org, Debian package ``pgbackrest``) does the real work:
WAL archiving (``archive-push``, called by PostgreSQL), full/differential backups,
retention, ``verify`` (every file's checksum in the repository) and point-in-time
``restore``. This module only builds its command lines from a ``PgBackRestConfig`` and reads
its answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from .config import PgBackRestConfig
from .errors import BackupError
from .runner import CommandResult, run

PROGRAM = "pgbackrest"


@dataclass(frozen=True)
class BackupInfo:
    """One backup set in the repository."""

    label: str
    type: str  # full | diff | incr
    started_at: datetime
    stopped_at: datetime
    size: int  # the database's size
    repo_size: int  # what it takes in the repository (compressed, encrypted)
    error: bool = False
    repo: int = 1  # which repository holds it (repo1, repo2 …)

    @classmethod
    def from_json(cls, data: dict) -> BackupInfo:
        stamp = data["timestamp"]
        info = data.get("info", {})
        return cls(
            label=data["label"],
            type=data["type"],
            started_at=datetime.fromtimestamp(stamp["start"], tz=UTC),
            stopped_at=datetime.fromtimestamp(stamp["stop"], tz=UTC),
            size=int(info.get("size", 0)),
            repo_size=int(info.get("repository", {}).get("size", 0)),
            error=bool(data.get("error", False)),
            repo=int(data.get("database", {}).get("repo-key", 1)),
        )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    report: str


class PgBackRest:
    """pgBackRest for one stanza (one PostgreSQL cluster)."""

    def __init__(self, config: PgBackRestConfig, *, run_as: str | None = None):
        self.config = config
        self.run_as = run_as

    def _run(self, command: str, *options: str, timeout: float | None = None, check=True):
        args = [
            PROGRAM,
            f"--config={self.config.config_path}",
            f"--stanza={self.config.stanza}",
            *options,
            command,
        ]
        kwargs = {"as_user": self.run_as, "check": check}
        if timeout is not None:
            kwargs["timeout"] = timeout
        return run(args, **kwargs)

    def stanza_create(self) -> CommandResult:
        """Set up the repository for this cluster (safe to repeat)."""
        return self._run("stanza-create", timeout=600)

    def check(self) -> CommandResult:
        """``pgbackrest check``: the configuration is right and a WAL segment just
        switched reached the archive."""
        return self._run("check", timeout=600)

    def backup(self, kind: str = "diff", *, repo: int = 1) -> BackupInfo:
        """Take a backup (``full``, ``diff`` or ``incr``; a diff with no full before it
        becomes a full) into repository ``repo`` and return it. Retention (expire) runs
        after it. pgBackRest backs up into one repository per run (repo1 unless told):
        every repository needs its own run, while WAL is archived to all of them."""
        if kind not in ("full", "diff", "incr"):
            raise ValueError(f"unknown backup type {kind!r}")
        self._run("backup", f"--type={kind}", f"--repo={repo}")
        latest = self.latest(repo=repo)
        if latest is None:
            raise BackupError("pgBackRest reported no backup after a successful run")
        return latest

    def info(self) -> dict:
        """The stanza's part of ``pgbackrest info --output=json`` ({} if unknown)."""
        result = self._run("info", "--output=json", timeout=600)
        try:
            stanzas = json.loads(result.stdout or "[]")
        except json.JSONDecodeError as exc:
            raise BackupError("pgBackRest's info is not JSON", output=result.tail()) from exc
        for stanza in stanzas:
            if stanza.get("name") == self.config.stanza:
                return stanza
        return {}

    def backups(self) -> list[BackupInfo]:
        """Backup sets, oldest first."""
        return [BackupInfo.from_json(b) for b in self.info().get("backup", [])]

    def latest(self, *, repo: int | None = None) -> BackupInfo | None:
        """The newest backup set (of repository ``repo``, or of any)."""
        found = [b for b in self.backups() if repo is None or b.repo == repo]
        return max(found, key=lambda b: b.stopped_at) if found else None

    def verify(self, *, repo: int = 1) -> VerifyResult:
        """``pgbackrest verify`` of repository ``repo``: every file of every backup and
        WAL segment is read back and its checksum compared. pgBackRest 2.45 exits 0 even
        when it finds damage, so its report is read: ``status: ok`` or ``status: error``."""
        result = self._run(
            "verify", "--output=text", "--verbose", f"--repo={repo}", timeout=6 * 3600, check=False
        )
        report = result.stdout.strip() or result.tail()
        ok = result.ok and "status: ok" in report and "status: error" not in report
        return VerifyResult(ok=ok, report=report)

    def restore(
        self,
        *,
        pg_path: str,
        target: datetime | None = None,
        target_action: str = "promote",
        delta: bool = False,
        archive_mode_off: bool = True,
        backup_set: str | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Restore into ``pg_path`` (empty, or an existing cluster with ``delta``), to
        ``target`` (a point in time) or to the end of the archive (``target=None``).
        ``archive_mode_off`` keeps a restored copy from archiving into the production
        repository (always, for a drill)."""
        options = [f"--pg1-path={pg_path}"]
        if target is not None:
            options += [
                "--type=time",
                f"--target={target.astimezone(UTC).isoformat(sep=' ')}",
                f"--target-action={target_action}",
            ]
        if delta:
            options.append("--delta")
        if archive_mode_off:
            options.append("--archive-mode=off")
        if backup_set:
            options.append(f"--set={backup_set}")
        return self._run("restore", *options, timeout=timeout)

    def expire(self) -> CommandResult:
        """Apply retention now (``backup`` does it after each run)."""
        return self._run("expire", timeout=3600)
