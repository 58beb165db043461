"""Celery tasks of the integrations app: thin, fetch by id, call one service."""

from celery import shared_task


@shared_task(name="integrations.outbox_dispatch")
def outbox_dispatch_task(event_ids: list[str]) -> None:
    from .outbox import events_dispatch

    events_dispatch(event_ids=event_ids)
