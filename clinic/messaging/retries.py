"""The retry sweep: queued messages that are due go to the workers again."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from clinic.choices import MessageStatus

from .delivery import send_lease
from .models import OutboundMessage
from .sending import deliver_queue


def messages_retry_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Enqueue queued messages that are due: providers were down, the broker lost the task,
    or a send's worker died (its claim outlived its lease: the delivery then resolves the
    unknown outcome). Periodic (every minute); delivering is idempotent, so a repeat does
    no harm."""
    now = now or timezone.now()
    stale = now - timedelta(minutes=2)  # a message just queued has its task on the way
    queued = OutboundMessage.objects.filter(status=MessageStatus.QUEUED)
    due = [
        queued.filter(
            created_at__lt=stale, next_attempt_at__isnull=True, in_flight_at__isnull=True
        ),
        queued.filter(next_attempt_at__lte=now, in_flight_at__isnull=True),
        queued.filter(in_flight_at__lt=now - send_lease()),
    ]
    purposes = {}
    for rows in due:
        purposes.update(rows.values_list("pk", "purpose")[:batch])
    from .tasks import message_deliver_task

    for message_id, purpose in purposes.items():
        message_deliver_task.apply_async(args=[message_id], queue=deliver_queue(purpose))
    return len(purposes)
