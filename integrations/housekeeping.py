"""Retention of the integrations app's logs (weekly cleanup job).

What is kept, and for how long (days, settings ``CUIDAR_RETENTION_*``):
- ``ExternalCall``: 30 — enough for the health page (1 h) and for investigating incidents.
- processed or ignored ``InboundWebhook``: 90 — failed ones stay until someone acts.
- succeeded ``Delivery`` rows and their attempts: 30; dead or archived ones stay.
- ``Event``: 180, when none of its deliveries is still pending, failed or dead.
- ``ConsoleRecord``: 30.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .choices import DeliveryStatus, InboundWebhookStatus
from .models import ConsoleRecord, Delivery, Event, ExternalCall, InboundWebhook


def _days(name: str, default: int) -> timedelta:
    return timedelta(days=getattr(settings, f"CUIDAR_RETENTION_{name}", default))


@dataclass(frozen=True)
class CleanupResult:
    external_calls: int
    inbound_webhooks: int
    deliveries: int
    events: int
    console_records: int


def _deleted(queryset) -> int:
    """Rows of the queryset's own model deleted (cascades are not counted)."""
    _total, per_model = queryset.delete()
    return per_model.get(queryset.model._meta.label, 0)


@transaction.atomic
def integrations_cleanup(*, now=None) -> CleanupResult:
    """Delete log rows past their retention. Idempotent."""
    now = now or timezone.now()
    calls = _deleted(ExternalCall.objects.filter(created_at__lt=now - _days("EXTERNAL_CALLS", 30)))
    inbound = _deleted(
        InboundWebhook.objects.filter(
            status__in=[InboundWebhookStatus.PROCESSED, InboundWebhookStatus.IGNORED],
            received_at__lt=now - _days("INBOUND_WEBHOOKS", 90),
        )
    )
    deliveries = _deleted(
        Delivery.objects.filter(
            status=DeliveryStatus.SUCCEEDED, succeeded_at__lt=now - _days("DELIVERIES", 30)
        )
    )
    unfinished = Delivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.DEAD]
    ).values("event_id")
    events = _deleted(
        Event.objects.filter(created_at__lt=now - _days("EVENTS", 180)).exclude(pk__in=unfinished)
    )
    console = _deleted(
        ConsoleRecord.objects.filter(created_at__lt=now - _days("CONSOLE_RECORDS", 30))
    )
    return CleanupResult(calls, inbound, deliveries, events, console)
