"""The restore drill: restore the latest backup into a scratch database (a throwaway
PostgreSQL cluster on pgBackRest's restore, or a SQLite file from the newest copy), run every
drill check on it (``checks``), and record how long it took to get a writable database
(RTO) and how old the newest restored data were (RPO).

The scratch database is a Django database alias (``backup_drill``) while the checks run,
and is deleted afterwards. A restored cluster never archives into the production repository
(``archive_mode`` off) and listens only on a socket in its private folder.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import connections
from django.db.utils import load_backend
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .checks import DrillContext, row_counts, run_checks
from .choices import BackupMethod, BackupRunKind, BackupRunStatus
from .config import PgBackRestConfig, backup_dir, setting
from .errors import BackupError
from .services import _method, _recorded, _run_finish, _run_start, pgbackrest, sqlite_dir
from .sqlite import sqlite_copies, sqlite_restore

DRILL_ALIAS = "backup_drill"


# --- Drill ----------------------------------------------------------------------------------
@dataclass
class Restored:
    alias: str
    seconds: float  # from the start of the restore to a writable database
    until: datetime | None  # the newest data restored
    label: str = ""


@contextlib.contextmanager
def _as_alias(entry: dict):
    """The scratch database as ``connections[DRILL_ALIAS]`` for this thread: a connection
    made here, not a new ``DATABASES`` entry, so nothing else (other threads, connection
    housekeeping) ever reaches it."""
    backend = load_backend(entry["ENGINE"])
    connections[DRILL_ALIAS] = backend.DatabaseWrapper(entry, DRILL_ALIAS)
    try:
        yield DRILL_ALIAS
    finally:
        with contextlib.suppress(Exception):
            connections[DRILL_ALIAS].close()
        with contextlib.suppress(Exception):
            del connections[DRILL_ALIAS]


@contextlib.contextmanager
def _restored_sqlite(work: Path):
    copies = sqlite_copies(sqlite_dir())
    if not copies:
        raise BackupError("there is no SQLite copy to restore")
    latest = copies[-1]
    scratch = work / "drill.sqlite3"
    began = time.monotonic()
    sqlite_restore(copy=latest.path, target=scratch)
    entry = dict(connections.settings["default"])
    entry.update(
        {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(scratch),
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {},
            "TEST": {},
            "CONN_MAX_AGE": 0,
        }
    )
    with _as_alias(entry) as alias:
        connections[alias].ensure_connection()
        yield Restored(alias, time.monotonic() - began, latest.taken_at, latest.name)


@contextlib.contextmanager
def _restored_pgbackrest(work: Path, *, target: datetime | None, config: PgBackRestConfig | None):
    from .cluster import Cluster, default_run_as, give_to

    tool = pgbackrest(config)
    run_as = default_run_as()
    data, run_dir = work / "data", work / "run"
    data.mkdir(parents=True)
    data.chmod(0o700)
    give_to(work, run_as)
    cluster = Cluster(data, run_dir=run_dir, run_as=run_as, superuser=tool.config.pg_user)
    began = time.monotonic()
    try:
        tool.restore(pg_path=str(data), target=target, archive_mode_off=True)
        latest = tool.latest()
        # Debian keeps postgresql.conf and pg_hba.conf outside the data directory: the
        # scratch cluster gets its own, reachable only through its private socket.
        conf, hba, ident = (
            run_dir / "drill.conf",
            run_dir / "pg_hba.conf",
            run_dir / "pg_ident.conf",
        )
        cluster.prepare_dirs()
        conf.write_text("", encoding="utf-8")
        hba.write_text("local all all trust\n", encoding="utf-8")
        ident.write_text("", encoding="utf-8")
        if not (data / "postgresql.conf").exists():
            (data / "postgresql.conf").write_text("", encoding="utf-8")
        give_to(run_dir, run_as)
        give_to(data, run_as)
        cluster.start(
            options={
                "hba_file": str(hba),
                "ident_file": str(ident),
                "archive_mode": "off",
                # No queries during recovery: the drill waits for the end of it, and the
                # production's max_connections need not be matched.
                "hot_standby": "off",
            }
        )
        cluster.wait_until_promoted()
        seconds = time.monotonic() - began
        replayed = cluster.psql("SELECT pg_last_xact_replay_timestamp()")
        until = parse_datetime(replayed.replace(" ", "T")) if replayed else None
        if until is None and latest is not None:
            until = latest.stopped_at
        entry = cluster.django_settings(
            dict(connections.settings["default"]),
            dbname=connections.settings["default"]["NAME"],
        )
        with _as_alias(entry) as alias:
            yield Restored(alias, seconds, until, latest.label if latest else "")
    finally:
        cluster.remove()


def drill_run(
    *,
    triggered_by: str,
    target: datetime | None = None,
    live_alias: str = "default",
    config: PgBackRestConfig | None = None,
):
    """Restore the latest backup (to ``target``, or as far as the archive goes) into a
    scratch database, run every drill check on it, and record the RTO (restore to a
    writable database) and RPO (the time restored to, less the newest restored data)."""
    method = BackupMethod.PGBACKREST if config is not None else _method()
    run = _run_start(
        kind=BackupRunKind.DRILL, method=method, triggered_by=triggered_by, target=target
    )
    work_root = Path(setting("DRILL_DIR", "") or backup_dir() / "drill")
    work = work_root / f"drill-{run.pk}"
    with _recorded(run):
        expected = row_counts(live_alias)
        reference = target or timezone.now()
        work.mkdir(parents=True, exist_ok=False)
        try:
            restoring = (
                _restored_sqlite(work)
                if method == BackupMethod.SQLITE
                else _restored_pgbackrest(work, target=target, config=config)
            )
            with restoring as restored:
                checks_began = time.monotonic()
                ctx = DrillContext(restored.alias, expected, restored.until)
                results = run_checks(ctx)
                checks_seconds = time.monotonic() - checks_began
        finally:
            shutil.rmtree(work, ignore_errors=True)
        failed = [r.name for r in results if not r.ok]
        rpo = (reference - restored.until).total_seconds() if restored.until else None
        return _run_finish(
            run,
            status=BackupRunStatus.FAILED if failed else BackupRunStatus.SUCCEEDED,
            error=("checks failed: " + ", ".join(failed)) if failed else "",
            label=restored.label,
            restored_until=restored.until,
            rto_seconds=round(restored.seconds, 2),
            rpo_seconds=round(max(rpo, 0.0), 2) if rpo is not None else None,
            details={
                "checks": [r.as_dict() for r in results],
                "checks_seconds": round(checks_seconds, 2),
                "expected_counts": expected,
            },
        )
