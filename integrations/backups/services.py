"""Every write of backups: take one, verify, restore, and watch for stale ones (the drill
is in ``drill``).

Each run is a ``BackupRun`` row, created (and committed) before the tool runs and finished
after it, so no transaction is held while pgBackRest talks to the repository. A finished
backup, restore or drill publishes ``backup.completed`` / ``backup.restored`` /
``backup.drill_completed`` once per active clinic, in the same transaction as the run's
row: the clinic app records each in that clinic's audit trail (a backup copies every
clinic's data; a drill reads it).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinic.kernel.tenancy import CLINIC_MODEL

from ..events import publish
from .choices import BackupMethod, BackupRunKind, BackupRunStatus
from .config import PgBackRestConfig, backup_dir, backup_method, setting
from .errors import BackupError, BackupNotConfigured
from .pgbackrest import PgBackRest
from .sqlite import sqlite_backup, sqlite_copies, sqlite_prune, sqlite_restore, sqlite_verify

logger = logging.getLogger("integrations.backups")

PENDING_RESTORE = "restore-pending.json"


def _models():
    from ..models import BackupRun

    return BackupRun


def operator() -> str:
    """Who runs a command: ``manage.py (user)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"manage.py ({user})"


# --- Recording runs -------------------------------------------------------------------------
def _run_start(*, kind: str, method: str, triggered_by: str, **fields):
    BackupRun = _models()
    return BackupRun.objects.create(
        kind=kind, method=method, triggered_by=triggered_by[:150], **fields
    )


_EVENTS = {
    BackupRunKind.RESTORE: "backup.restored",
    BackupRunKind.DRILL: "backup.drill_completed",
}


def _run_finish(run, *, status: str, error: str = "", **fields):
    """Finish the run and publish its event (backups and restores that succeeded; every
    drill, since a failed drill has read the data too)."""
    run.status = status
    run.error = error[:10000]
    run.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(run, name, value)
    with transaction.atomic():
        run.save()
        event_type = _EVENTS.get(run.kind, "backup.completed")
        wanted = run.kind == BackupRunKind.DRILL or (
            status == BackupRunStatus.SUCCEEDED
            and run.kind in (*BackupRunKind.backups(), BackupRunKind.RESTORE)
        )
        if wanted:
            _publish_to_every_clinic(event_type, run)
    return run


def _publish_to_every_clinic(event_type: str, run) -> None:
    clinic_model = apps.get_model(CLINIC_MODEL)
    payload = {
        "backup_run_id": run.pk,
        "kind": run.kind,
        "method": run.method,
        "status": run.status,
        "label": run.label,
        "triggered_by": run.triggered_by,
        "target": run.target.isoformat() if run.target else None,
    }
    for clinic_id in clinic_model.objects.filter(is_active=True).values_list("pk", flat=True):
        publish(event_type, clinic=clinic_id, payload=payload)


@contextlib.contextmanager
def _recorded(run):
    """Finish ``run`` as failed if the block raises (and re-raise)."""
    try:
        yield run
    except Exception as exc:
        output = getattr(exc, "output", "")
        message = f"{exc}\n{output}".strip() if output else str(exc)
        _run_finish(run, status=BackupRunStatus.FAILED, error=message)
        logger.error("%s failed: %s", run.get_kind_display(), message)
        raise


# --- Configuration --------------------------------------------------------------------------
def pgbackrest_config() -> PgBackRestConfig:
    config = PgBackRestConfig.from_settings()
    problems = config.problems()
    if problems:
        raise BackupNotConfigured("pgBackRest is not configured: " + "; ".join(problems))
    return config


def pgbackrest(config: PgBackRestConfig | None = None) -> PgBackRest:
    from .cluster import default_run_as

    return PgBackRest(config or pgbackrest_config(), run_as=default_run_as())


def sqlite_database_path() -> Path:
    return Path(settings.DATABASES["default"]["NAME"])


def sqlite_dir() -> Path:
    return backup_dir() / "sqlite"


def _method() -> str:
    method = backup_method()
    if method == "off":
        raise BackupNotConfigured("Backups are off: set CUIDAR_BACKUP_METHOD (docs/backups.md).")
    return method


def scheduled_kind(now: datetime | None = None) -> str:
    """The daily job's kind: full on ``CUIDAR_BACKUP_FULL_WEEKDAY`` (Sunday), differential
    the other days; a copy on SQLite."""
    if backup_method() == BackupMethod.SQLITE:
        return BackupRunKind.COPY
    today = timezone.localtime(now or timezone.now())
    return (
        BackupRunKind.FULL if today.weekday() == setting("FULL_WEEKDAY", 6) else BackupRunKind.DIFF
    )


# --- Backup ---------------------------------------------------------------------------------
def backup_take(*, kind: str | None = None, triggered_by: str):
    """Take a backup and verify it: pgBackRest (``full``/``diff``/``incr``, then ``verify``
    of that set) or a SQLite copy (integrity check, SHA-256 recomputed, old copies pruned)."""
    method = _method()
    kind = kind or scheduled_kind()
    if method == BackupMethod.SQLITE:
        kind = BackupRunKind.COPY
    run = _run_start(kind=kind, method=method, triggered_by=triggered_by)
    with _recorded(run):
        if method == BackupMethod.SQLITE:
            copy = sqlite_backup(source=sqlite_database_path(), dest_dir=sqlite_dir())
            sqlite_verify(copy.path)
            pruned = sqlite_prune(sqlite_dir(), keep=setting("SQLITE_KEEP", 14))
            return _run_finish(
                run,
                status=BackupRunStatus.SUCCEEDED,
                label=copy.name,
                size_bytes=copy.size,
                checksum=copy.sha256,
                details={
                    "path": str(copy.path),
                    "pruned": [p.name for p in pruned],
                    "repositories": {SQLITE_REPOSITORY: {"type": "file", "label": copy.name}},
                },
            )
        tool = pgbackrest()
        taken = {}
        for index, repository in enumerate(tool.config.repositories, start=1):
            info = tool.backup(kind, repo=index)
            verified = tool.verify(repo=index)
            if not verified.ok:
                raise BackupError(
                    f"backup {info.label} was taken in repo{index} but does not verify",
                    output=verified.report,
                )
            taken[f"repo{index}"] = {
                "type": repository.type,
                "label": info.label,
                "kind": info.type,
                "size_bytes": info.repo_size,
                "database_size": info.size,
                "started_at": info.started_at.isoformat(),
                "stopped_at": info.stopped_at.isoformat(),
                "verify": verified.report[-1000:],
            }
        first = next(iter(taken.values()))
        return _run_finish(
            run,
            status=BackupRunStatus.SUCCEEDED,
            kind=first["kind"],
            label=first["label"],
            size_bytes=first["size_bytes"],
            details={
                "database_size": first["database_size"],
                "started_at": first["started_at"],
                "stopped_at": first["stopped_at"],
                "repositories": taken,
            },
        )


def backup_verify(*, triggered_by: str):
    """Check every backup in the repository (pgBackRest ``verify``) or every SQLite copy's
    SHA-256. A failure is recorded and raised."""
    method = _method()
    run = _run_start(kind=BackupRunKind.VERIFY, method=method, triggered_by=triggered_by)
    with _recorded(run):
        if method == BackupMethod.SQLITE:
            checked = [sqlite_verify(c.path).name for c in sqlite_copies(sqlite_dir())]
            return _run_finish(run, status=BackupRunStatus.SUCCEEDED, details={"verified": checked})
        tool = pgbackrest()
        reports = {}
        for index, _repository in enumerate(tool.config.repositories, start=1):
            result = tool.verify(repo=index)
            if not result.ok:
                raise BackupError(
                    f"pgBackRest verify found damaged files in repo{index}", output=result.report
                )
            reports[f"repo{index}"] = result.report[-2000:]
        return _run_finish(run, status=BackupRunStatus.SUCCEEDED, details={"reports": reports})


# --- Restore --------------------------------------------------------------------------------
def restore_sqlite(*, copy_name: str | None = None, triggered_by: str):
    """Replace the SQLite database with a copy (the newest by default), after checking
    its SHA-256. The restore is recorded in the restored database."""
    copies = sqlite_copies(sqlite_dir())
    if copy_name:
        copies = [c for c in copies if c.name == copy_name]
    if not copies:
        raise BackupError(f"no SQLite copy {copy_name or ''} in {sqlite_dir()}".replace("  ", " "))
    chosen = copies[-1]
    for connection in connections.all(initialized_only=True):
        connection.close()
    checked = sqlite_restore(copy=chosen.path, target=sqlite_database_path())
    run = _run_start(
        kind=BackupRunKind.RESTORE,
        method=BackupMethod.SQLITE,
        triggered_by=triggered_by,
        label=checked.name,
        checksum=checked.sha256,
    )
    return _run_finish(run, status=BackupRunStatus.SUCCEEDED, restored_until=chosen.taken_at)


def restore_pgbackrest(
    *,
    pg_path: str,
    target: datetime | None = None,
    delta: bool = False,
    triggered_by: str,
    config: PgBackRestConfig | None = None,
) -> dict:
    """Restore the cluster's files into ``pg_path`` (PostgreSQL stopped there), to
    ``target`` or to the end of the archive. The database may be the one restored, so the
    run is recorded when it is reachable again: now if it is (a restore beside the live
    one), else by the next ``manage.py backup status`` or hourly watch."""
    tool = pgbackrest(config)
    started = timezone.now()
    began = time.monotonic()
    # Restoring the live cluster keeps it archiving into the repository (a new timeline);
    # a copy restored elsewhere must not write into the production archive.
    live = os.path.realpath(pg_path) == os.path.realpath(tool.config.pg_path)
    tool.restore(pg_path=pg_path, target=target, delta=delta, archive_mode_off=not live)
    record = {
        "started_at": started.isoformat(),
        "seconds": round(time.monotonic() - began, 1),
        "pg_path": pg_path,
        "target": target.isoformat() if target else None,
        "triggered_by": triggered_by,
        "in_place": live,
    }
    pending = backup_dir() / PENDING_RESTORE
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.write_text(json.dumps(record), encoding="utf-8")
    with contextlib.suppress(DatabaseError):
        restore_record_pending()
    return record


def restore_record_pending():
    """Record a pgBackRest restore whose database was down when it ran (see above)."""
    pending = backup_dir() / PENDING_RESTORE
    if not pending.exists():
        return None
    record = json.loads(pending.read_text(encoding="utf-8"))
    run = _run_start(
        kind=BackupRunKind.RESTORE,
        method=BackupMethod.PGBACKREST,
        triggered_by=record.get("triggered_by", ""),
        started_at=parse_datetime(record["started_at"]),
        target=parse_datetime(record["target"]) if record.get("target") else None,
        details=record,
    )
    _run_finish(run, status=BackupRunStatus.SUCCEEDED, rto_seconds=record.get("seconds"))
    run.finished_at = run.started_at + timedelta(seconds=record.get("seconds") or 0)
    run.save(update_fields=["finished_at"])
    pending.unlink(missing_ok=True)
    return run


# --- Status and alerts ----------------------------------------------------------------------
_RANK = {"ok": 0, "warning": 1, "critical": 2}
#: The embedded default's one "repository": the folder of SQLite copies.
SQLITE_REPOSITORY = "sqlite"
#: How many successful backups are read back to find each repository's newest (a month of
#: daily ones: a repository none of them reached is that late anyway).
REPOSITORY_LOOKBACK = 40


def configured_repositories(method: str) -> dict[str, str]:
    """The repositories backups go to, name → type: ``repo1`` (S3), ``repo2`` (a local
    folder) … for pgBackRest, ``sqlite`` for the embedded default."""
    if method == BackupMethod.SQLITE:
        return {SQLITE_REPOSITORY: "file"}
    repositories = PgBackRestConfig.from_settings().repositories
    return {f"repo{i}": repo.type for i, repo in enumerate(repositories, start=1)}


def repositories_health(*, method: str, now: datetime, installed: datetime) -> list[dict]:
    """Each repository's newest successful backup and its age in seconds (since the
    installation when it has none yet, so that a repository never backed up ages too).
    Runs recorded before backups were taken per repository count for repo1 (pgBackRest's
    default) or the SQLite folder."""
    BackupRun = _models()
    wanted = configured_repositories(method)
    default = SQLITE_REPOSITORY if method == BackupMethod.SQLITE else "repo1"
    newest: dict[str, datetime] = {}
    runs = (
        BackupRun.objects.filter(kind__in=BackupRunKind.backups(), status=BackupRunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("finished_at", "details")[:REPOSITORY_LOOKBACK]
    )
    for finished_at, details in runs:
        for name in (details or {}).get("repositories") or {default: {}}:
            newest.setdefault(name, finished_at)
        if len(newest) >= len(wanted) and set(wanted) <= set(newest):
            break
    found = []
    for name, kind in wanted.items():
        last = newest.get(name)
        found.append(
            {
                "name": name,
                "type": kind,
                "last_backup_at": last.isoformat() if last else None,
                "age_seconds": int((now - (last or installed)).total_seconds()),
            }
        )
    return found


def _installed_at():
    """When this installation's database was created (its first migration)."""
    try:
        return (
            MigrationRecorder.Migration.objects.order_by("applied")
            .values_list("applied", flat=True)
            .first()
        )
    except DatabaseError:
        return None


def backups_health(*, now: datetime | None = None) -> dict:
    """The backups' part of ``/health/integrations``: the last backup and drill, their age,
    and a level. A backup older than ``CUIDAR_BACKUP_MAX_AGE_HOURS`` (26: the daily job
    plus slack) is a warning, twice that critical; the last backup run failing is a
    warning; a failed drill is critical and one older than ``CUIDAR_BACKUP_DRILL_MAX_AGE_DAYS``
    (8) a warning. A new installation is given one period before "never" counts."""
    BackupRun = _models()
    now = now or timezone.now()
    method = backup_method()
    required = bool(setting("REQUIRED", False))
    if method == "off":
        level = "critical" if required else "ok"
        problems = ["backups are off (CUIDAR_BACKUP_METHOD)"] if required else []
        return {"method": method, "level": level, "problems": problems}
    installed = _installed_at() or now
    max_age = timedelta(hours=setting("MAX_AGE_HOURS", 26))
    drill_max_age = timedelta(days=setting("DRILL_MAX_AGE_DAYS", 8))
    problems: list[str] = []
    levels = ["ok"]

    backups = BackupRun.objects.filter(kind__in=BackupRunKind.backups())
    last_ok = backups.filter(status=BackupRunStatus.SUCCEEDED).order_by("-finished_at").first()
    last_any = backups.exclude(status=BackupRunStatus.RUNNING).order_by("-started_at").first()
    since = last_ok.finished_at if last_ok else installed
    age = now - since
    if age > 2 * max_age:
        levels.append("critical")
    elif age > max_age:
        levels.append("warning")
    if age > max_age:
        problems.append(
            f"no backup for {age.total_seconds() / 3600:.0f} h"
            if last_ok
            else "no backup has been taken"
        )
    repositories = repositories_health(method=method, now=now, installed=installed)
    if age <= max_age:  # else the line above already says it for every repository
        for repository in repositories:
            if repository["age_seconds"] > max_age.total_seconds():
                levels.append("warning")
                problems.append(
                    f"{repository['name']}: no backup for {repository['age_seconds'] / 3600:.0f} h"
                )
    if last_any is not None and last_any.status == BackupRunStatus.FAILED:
        levels.append("warning")
        first_line = last_any.error.splitlines()[0][:200] if last_any.error else ""
        problems.append(f"the last backup failed: {first_line}")

    drill = (
        BackupRun.objects.filter(kind=BackupRunKind.DRILL)
        .exclude(status=BackupRunStatus.RUNNING)
        .order_by("-started_at")
        .first()
    )
    last_good_drill = (
        BackupRun.objects.filter(kind=BackupRunKind.DRILL, status=BackupRunStatus.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )
    if drill is not None and drill.status == BackupRunStatus.FAILED:
        levels.append("critical")
        problems.append(f"the last restore drill failed: {drill.error[:200]}")
    drill_since = last_good_drill.finished_at if last_good_drill else installed
    if now - drill_since > drill_max_age:
        levels.append("warning")
        problems.append(
            f"the last successful restore drill is {(now - drill_since).days} days old"
            if last_good_drill
            else "no restore drill has succeeded"
        )

    def describe(run):
        if run is None:
            return None
        return {
            "id": run.pk,
            "kind": run.kind,
            "status": run.status,
            "label": run.label,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "age_seconds": int((now - (run.finished_at or run.started_at)).total_seconds()),
        }

    drill_info = describe(drill)
    if drill_info is not None:
        drill_info.update(
            {
                "rto_seconds": drill.rto_seconds,
                "rpo_seconds": drill.rpo_seconds,
                "failed_checks": [
                    c["name"] for c in drill.details.get("checks", []) if not c.get("ok")
                ],
            }
        )
    return {
        "method": method,
        "level": max(levels, key=_RANK.__getitem__),
        "problems": problems,
        "last_backup": describe(last_ok),
        "repositories": repositories,
        "last_drill": drill_info,
        "max_age_hours": max_age.total_seconds() / 3600,
        "drill_max_age_days": drill_max_age.days,
    }


def backups_watch(*, now: datetime | None = None) -> dict:
    """The hourly job: record a restore done while the database was down, then raise the
    alert (an ERROR in the log; the health page shows the same) when a backup or drill is
    late or failed."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        restore_record_pending()
    report = backups_health(now=now)
    if report["level"] != "ok":
        logger.error("backups %s: %s", report["level"], "; ".join(report["problems"]))
    return report
