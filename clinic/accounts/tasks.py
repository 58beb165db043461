"""Celery tasks of staff accounts (config/celery.py schedules them): thin, they call
services."""

from celery import shared_task


@shared_task(name="accounts.staff_sessions_cleanup")
def staff_sessions_cleanup_task() -> dict[str, int]:
    """Sundays 03:15: sessions that ended unseen are closed; old ended ones deleted."""
    from .services import staff_sessions_cleanup

    return staff_sessions_cleanup()
