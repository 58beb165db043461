"""Celery tasks of inbound webhooks: thin, they fetch by id and call one service.

``integrations/tasks.py`` imports this module so that Celery's autodiscovery registers them.
"""

from celery import shared_task


@shared_task(name="integrations.inbound_webhook_process")
def inbound_webhook_process_task(webhook_id: int) -> None:
    """Process one stored inbound webhook (safe twice: the service skips finished ones)."""
    from .inbound import inbound_webhook_process

    inbound_webhook_process(webhook_id=webhook_id)


@shared_task(name="integrations.inbound_webhook_requeue_stale")
def inbound_webhook_requeue_stale_task() -> int:
    """Re-enqueue webhooks whose processing task was lost (periodic: every 5 minutes)."""
    from .inbound import inbound_webhook_requeue_stale

    return inbound_webhook_requeue_stale()
