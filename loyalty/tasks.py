"""Celery tasks of loyalty: thin, they call one service."""

from celery import shared_task


@shared_task(name="loyalty.points_expiry")
def points_expiry_task(local_hours: list[int] | None = None) -> list[int]:
    """03:00 of each clinic: expire points past their date (FIFO), notify 30 days before."""
    from .services import points_expiry_run

    return list(points_expiry_run(local_hours=local_hours))


@shared_task(name="loyalty.tiers_evaluate")
def tiers_evaluate_task(local_hours: list[int] | None = None) -> int:
    """02:00 of each clinic: the nightly tier evaluation (downgrades too) and the birthday
    bonus."""
    from clinic.selectors import clinics_at_local_hours

    from .services import birthday_points_run, tiers_evaluate

    moved = 0
    for clinic in clinics_at_local_hours(hours=local_hours):
        moved += tiers_evaluate(clinic=clinic)
        birthday_points_run(clinic=clinic)
    return moved
