"""Celery tasks of the portal shell: thin, they call ``sessions``.

Their names keep the ``clinic.`` prefix they had before the portal became a sub-app: queued
tasks, the routes in ``config.celery`` and django-celery-beat's rows in the database name
them so."""

from celery import shared_task

from . import sessions


@shared_task(name="clinic.portal_code_send", acks_late=True)
def portal_code_send_task(challenge_id: str) -> bool:
    """A portal sign-in code: drawn and sent here, after the page answered (safe twice)."""
    return sessions.challenge_code_send(challenge_id=challenge_id)


@shared_task(name="clinic.portal_challenges_purge")
def portal_challenges_purge_task() -> int:
    """Daily 04:00: portal sign-in challenges older than a day are deleted."""
    return sessions.challenges_purge()
