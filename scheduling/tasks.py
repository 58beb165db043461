"""Celery tasks of the agenda: thin, they call one service."""

from celery import shared_task


@shared_task(name="scheduling.waitlist_offers_expire")
def waitlist_offers_expire_task() -> None:
    from .services import waitlist_offers_expire

    waitlist_offers_expire()
