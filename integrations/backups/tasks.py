"""The backups' periodic jobs (config/celery.py schedules them): thin, they call services.

``backup_run`` and ``backup_drill`` go to the ``backups`` queue: with pgBackRest, only a
worker beside the database consumes it (pgBackRest reads the cluster's files there;
compose.yaml ``worker-backup``), or the jobs are paused in the admin and the host's timer
runs ``manage.py backup run`` (see docs/backups.md). The embedded default's worker consumes
every queue.
"""

from celery import shared_task


@shared_task(name="integrations.backup_run")
def backup_run_task(kind: str | None = None, triggered_by: str = "beat") -> int | None:
    """02:00: full on Sundays, differential otherwise (a copy on SQLite), then verified."""
    from .config import backup_method
    from .services import backup_take

    if backup_method() == "off":
        return None
    return backup_take(kind=kind, triggered_by=triggered_by).pk


@shared_task(name="integrations.backup_drill")
def backup_drill_task(triggered_by: str = "beat") -> int | None:
    """Weekly: restore the latest backup into a scratch database and check it."""
    from .config import backup_method
    from .drill import drill_run

    if backup_method() == "off":
        return None
    return drill_run(triggered_by=triggered_by).pk


@shared_task(name="integrations.backups_watch")
def backups_watch_task() -> str:
    """Hourly: a late or failed backup or drill is an alert."""
    from .services import backups_watch

    return backups_watch()["level"]
