"""Celery tasks of messaging: thin, they fetch by id and call one service.

Their names stay ``clinic.*`` (as before issue 18): queued tasks and django-celery-beat's
rows name them."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="clinic.message_deliver", acks_late=True)
def message_deliver_task(message_id: int) -> None:
    """Deliver one queued message (safe twice: a message that is not queued is skipped)."""
    from .delivery import message_deliver

    message_deliver(message_id=message_id)


@shared_task(name="clinic.messages_deliver_batch", acks_late=True)
def messages_deliver_batch_task(message_ids: list[int]) -> None:
    """Deliver a batch of queued messages one after the other (the bulk sweeps enqueue one
    such task per ``DELIVER_BATCH`` messages). Safe redelivered: each message is claimed on
    its own, so one already sent, in progress or uncertain is skipped, never sent again."""
    from .delivery import message_deliver

    for message_id in message_ids:
        try:
            message_deliver(message_id=message_id)
        except Exception:
            # One message's fault must not hold back the rest of the batch; this one stays
            # queued (or in progress until its lease ends) for the retry sweep.
            logger.exception("delivery of message %s failed", message_id)


@shared_task(name="clinic.messages_retry")
def messages_retry_task() -> int:
    """Periodic (every minute): queued messages whose providers were down, or whose task
    was lost, are enqueued again."""
    from .retries import messages_retry_due

    return messages_retry_due()


@shared_task(name="clinic.birthdays_greet")
def birthdays_greet_task(local_hours: list[int] | None = None) -> int:
    """08:00 of each clinic (``local_hours``): birthday greetings to patients who opted in
    to marketing."""
    from .birthdays import birthdays_greet

    return birthdays_greet(local_hours=local_hours)


# The assistant's tasks live with it; imported here so that the worker registers them.
from .assistant.tasks import conversation_reply_task  # noqa: E402, F401
