"""Celery tasks of the clinic app: thin, they fetch by id and call one service."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="clinic.api_request_log_flush")
def api_request_log_flush_task() -> int:
    """Periodic (every minute): write the partner API's request log buffered in Redis
    (``clinic.api_framework``); requests flush it too, each time it fills up."""
    from .api_framework import api_request_log_flush

    return api_request_log_flush()


@shared_task(name="clinic.api_request_log_purge")
def api_request_log_purge_task() -> int:
    """Sundays 03:30: the partner API's request log past its retention (90 days) goes."""
    from .api_framework import api_request_log_purge

    return api_request_log_purge()


@shared_task(name="clinic.portal_code_send", acks_late=True)
def portal_code_send_task(challenge_id: str) -> bool:
    """A portal sign-in code: drawn and sent here, after the page answered (safe twice)."""
    from .portal.sessions import challenge_code_send

    return challenge_code_send(challenge_id=challenge_id)


@shared_task(name="clinic.portal_challenges_purge")
def portal_challenges_purge_task() -> int:
    """Daily 04:00: portal sign-in challenges older than a day are deleted."""
    from .portal.sessions import challenges_purge

    return challenges_purge()
