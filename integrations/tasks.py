"""Celery tasks of the integrations app: thin, fetch by id, call one service.

Queues (DESIGN.md): dispatch and handler deliveries on ``default``, partner webhooks on
``integrations``, retries on ``integrations-retry``, inbound webhooks on
``integrations-high``, housekeeping on ``integrations-low``.
"""

from celery import shared_task

from . import tasks_inbound  # noqa: F401  (registers the inbound webhook task)
from .backups import tasks as backup_tasks  # noqa: F401  (registers the backup jobs)


@shared_task(name="integrations.outbox_dispatch")
def outbox_dispatch_task(event_ids: list[str]) -> None:
    from .outbox import events_dispatch

    events_dispatch(event_ids=event_ids)


@shared_task(name="integrations.outbox_drain")
def outbox_drain_task() -> None:
    from .outbox import outbox_drain

    outbox_drain()


@shared_task(name="integrations.delivery_run")
def delivery_run_task(delivery_id: int) -> None:
    from .outbox import delivery_run

    delivery_run(delivery_id=delivery_id)


@shared_task(name="integrations.outbox_sweep")
def outbox_sweep_task() -> None:
    from .outbox import outbox_sweep

    outbox_sweep()


@shared_task(name="integrations.cleanup")
def integrations_cleanup_task() -> None:
    from .housekeeping import integrations_cleanup

    integrations_cleanup()


@shared_task(name="integrations.webhook_ping")
def webhook_ping_task(subscription_id: int, requested_at: str) -> None:
    from datetime import datetime

    from .subscriptions import subscription_ping_run

    subscription_ping_run(
        subscription_id=subscription_id, requested_at=datetime.fromisoformat(requested_at)
    )
