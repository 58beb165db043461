"""Domain events: the catalogue, ``publish``, and the ``@subscriber`` registry.

``publish`` writes the event and one ``Delivery`` per subscriber inside the caller's
transaction: if the caller rolls back, nothing was published. After commit the events are
dispatched by Celery (``outbox.request_dispatch``: one task per transaction, or coalesced
drains when Redis is there); the periodic sweeper picks up anything a lost task left behind.

Subscribers are plain functions in each app's ``handlers.py`` (imported at start-up)::

    @subscriber("appointment.completed")
    def debit_package_session(event, delivery):
        ...  # idempotent: event.id / delivery.pk identify this delivery

They run in the same database transaction that marks their delivery succeeded, so their
database writes happen exactly once; side effects outside the database must be idempotent
on ``event.id``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from .models import Delivery, Event

#: The event catalogue (DESIGN.md). Names are stable public API: partners subscribe to them.
EVENT_TYPES = frozenset(
    {
        "patient.created",
        "patient.updated",
        "patient.anonymised",
        "privacy.requested",
        "lead.created",
        "lead.updated",
        "lead.converted",
        "appointment.booked",
        "appointment.confirmed",
        "appointment.rescheduled",
        "appointment.cancelled",
        "appointment.checked_in",
        "appointment.started",
        "appointment.completed",
        "appointment.no_show",
        "slot.freed",
        "waitlist.offered",
        "payment.created",
        "payment.received",
        "payment.failed",
        "payment.overdue",
        "payment.refunded",
        "invoice.issued",
        "invoice.failed",
        "invoice.cancelled",
        "package.purchased",
        "package.expiring",
        "loyalty.points_earned",
        "loyalty.tier_changed",
        "referral.converted",
        "message.inbound",
        "message.status",
        "feedback.received",
    }
)

HANDLER_PREFIX = "handler:"
WEBHOOK_PREFIX = "webhook:"


class UnknownEventType(ValueError):
    """The event type is not in the catalogue."""


@dataclass(frozen=True)
class Subscriber:
    name: str
    event_types: frozenset[str]
    func: Callable[[Event, Delivery], None]


_subscribers: dict[str, Subscriber] = {}


def _check_type(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(
            f"{event_type!r} is not a Cuidar event type; see integrations.events.EVENT_TYPES"
        )


def subscriber(*event_types: str, name: str | None = None):
    """Register a function to receive every event of the given types."""
    for event_type in event_types:
        _check_type(event_type)
    if not event_types:
        raise ValueError("subscribe to at least one event type")

    def decorator(func):
        key = HANDLER_PREFIX + (name or f"{func.__module__}.{func.__qualname__}")
        existing = _subscribers.get(key)
        if existing is not None and existing.func is not func:
            raise ValueError(f"subscriber {key} is registered twice")
        _subscribers[key] = Subscriber(key, frozenset(event_types), func)
        return func

    return decorator


def unsubscribe(name: str) -> None:
    """Forget a subscriber (tests)."""
    _subscribers.pop(name, None)


def handler_for(name: str) -> Subscriber | None:
    return _subscribers.get(name)


def handlers_of(event_type: str) -> list[Subscriber]:
    return [s for s in _subscribers.values() if event_type in s.event_types]


# --- Publishing -----------------------------------------------------------------------------
_pending = threading.local()


def publish(event_type: str, *, clinic, payload: dict | None = None) -> Event:
    """Record a domain event in the current transaction, with its deliveries.

    ``clinic`` is a Clinic or its id. ``payload`` is JSON with ids, never personal data.
    """
    from .models import Delivery, Event, WebhookSubscription

    _check_type(event_type)
    clinic_id = getattr(clinic, "pk", clinic)
    # Inside the caller's transaction (the usual case) no savepoint of its own: a failure
    # here fails the caller's whole transaction, which is what must happen anyway.
    with transaction.atomic(savepoint=False):
        event = Event.objects.create(
            clinic_id=clinic_id, event_type=event_type, payload=payload or {}
        )
        names = [s.name for s in handlers_of(event_type)]
        # Plain rows: no secret decrypted, and no join for the model's default ordering.
        subscriptions = (
            WebhookSubscription.objects.for_clinic(clinic_id)
            .filter(active=True)
            .order_by()
            .values_list("pk", "event_types")
        )
        names += [
            f"{WEBHOOK_PREFIX}{pk}"
            for pk, event_types in subscriptions
            if WebhookSubscription.covers(event_types, event_type)
        ]
        Delivery.objects.bulk_create(
            [
                Delivery(
                    event=event,
                    clinic_id=clinic_id,
                    event_type=event_type,
                    subscriber=name,
                    next_attempt_at=event.created_at,
                    created_at=event.created_at,
                )
                for name in names
            ]
        )
        if names:
            _dispatch_on_commit(str(event.pk))
    return event


def _dispatch_on_commit(event_id: str) -> None:
    """Collect the events of one transaction and send one dispatch task for all of them.

    The batch lives as long as its on-commit callback is still registered: a rollback
    (of the transaction or of the savepoint that registered it) drops the callback, and the
    next publish starts a new batch instead of joining one that will never be sent.
    """
    connection = transaction.get_connection()
    current = getattr(_pending, "current", None)
    if current is not None:
        batch, send = current
        if any(item[1] is send for item in connection.run_on_commit):
            batch.append(event_id)
            return

    batch: list[str] = [event_id]

    def send():
        if getattr(_pending, "current", None) is not None and _pending.current[1] is send:
            _pending.current = None
        from .outbox import request_dispatch

        request_dispatch(batch)

    _pending.current = (batch, send)
    transaction.on_commit(send)
