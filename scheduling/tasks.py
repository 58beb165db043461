"""Celery tasks of the agenda: thin, they call one service."""

from celery import shared_task


@shared_task(name="scheduling.waitlist_offers_expire")
def waitlist_offers_expire_task() -> None:
    from .services import waitlist_offers_expire

    waitlist_offers_expire()


@shared_task(name="scheduling.reminders_48h")
def reminders_48h_task(local_hours: list[int] | None = None) -> int:
    """08:00 and 18:00 of each clinic (``local_hours``, from the schedule): remind
    appointments 24–48 h ahead (``lembrete_consulta``)."""
    from .reminders import reminders_48h_send

    return reminders_48h_send(local_hours=local_hours)


@shared_task(name="scheduling.reminders_eve")
def reminders_eve_task(local_hours: list[int] | None = None) -> int:
    """18:00 of each clinic (``local_hours``): remind tomorrow's unconfirmed appointments
    (``lembrete_vespera``)."""
    from .reminders import reminders_eve_send

    return reminders_eve_send(local_hours=local_hours)


@shared_task(name="scheduling.no_shows_detect")
def no_shows_detect_task() -> int:
    """Every 30 minutes: past appointments with no arrival become no-shows."""
    from .reminders import no_shows_detect

    return no_shows_detect()
