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

import json
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
        "lead.hot",
        "campaign.completed",
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
        "referral.rewarded",
        "message.inbound",
        "message.status",
        "feedback.received",
        # Backups of the whole installation, published once per clinic (its audit trail).
        "backup.completed",
        "backup.restored",
        "backup.drill_completed",
        # The clinical record (clinic.records): an encounter signed (scheduling completes its
        # appointment); an emergency access to a record (the clinical director is told).
        "encounter.finalized",
        "record.emergency_access",
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

    Two statements (the clinic's active webhook subscriptions; the event and its
    deliveries), written by hand from the models' fields: publishing runs in every
    booking, payment and message, and Django building the same three queries each time
    cost several times what the database did (bench/outbox.py, "publish beside its floor").
    """
    from .models import Event

    _check_type(event_type)
    clinic_id = getattr(clinic, "pk", clinic)
    # Inside the caller's transaction (the usual case) no savepoint of its own: a failure
    # here fails the caller's whole transaction, which is what must happen anyway.
    with transaction.atomic(savepoint=False):
        connection = transaction.get_connection()
        event = Event(clinic_id=clinic_id, event_type=event_type, payload=payload or {})
        names = [s.name for s in handlers_of(event_type)]
        # Plain rows: no secret decrypted, and no join for the model's default ordering.
        with connection.cursor() as cursor:
            cursor.execute(_sql(connection).subscriptions, [clinic_id])
            subscriptions = cursor.fetchall()
            names += [
                f"{WEBHOOK_PREFIX}{pk}"
                for pk, event_types in subscriptions
                if _covers(event_types, event_type)
            ]
            _insert(cursor, connection, event, names)
        event._state.adding = False
        event._state.db = connection.alias
        if names:
            _dispatch_on_commit(str(event.pk))
    return event


@dataclass(frozen=True)
class _Statements:
    subscriptions: str
    event_columns: tuple[str, ...]
    event_fields: tuple
    delivery_columns: tuple[str, ...]
    delivery_fields: tuple


_statements: dict[str, _Statements] = {}


def _sql(connection) -> _Statements:
    """The statements' parts for this database, built once per process from the models."""
    found = _statements.get(connection.vendor)
    if found is None:
        from .models import Delivery, Event, WebhookSubscription

        qn = connection.ops.quote_name
        subscription = WebhookSubscription._meta
        fields = {
            model: tuple(f for f in model._meta.concrete_fields if not f.generated)
            for model in (Event, Delivery)
        }
        found = _statements[connection.vendor] = _Statements(
            subscriptions=(
                f"SELECT {qn(subscription.pk.column)}, "  # noqa: S608 - our names
                f"{qn(subscription.get_field('event_types').column)} "
                f"FROM {qn(subscription.db_table)} "
                f"WHERE {qn(subscription.get_field('clinic').column)} = %s "
                f"AND {qn(subscription.get_field('active').column)}"
            ),
            event_columns=tuple(qn(f.column) for f in fields[Event]),
            event_fields=fields[Event],
            delivery_columns=tuple(qn(f.column) for f in fields[Delivery] if not f.primary_key),
            delivery_fields=tuple(f for f in fields[Delivery] if not f.primary_key),
        )
    return found


def _covers(event_types, event_type: str) -> bool:
    from .models import WebhookSubscription

    if isinstance(event_types, str):  # JSON as the database returned it
        event_types = json.loads(event_types)
    return WebhookSubscription.covers(event_types, event_type)


def _insert(cursor, connection, event, names: list[str]) -> None:
    """INSERT the event and one delivery per name: one statement on PostgreSQL (a
    data-modifying WITH), two elsewhere. Values are prepared by the fields themselves
    (defaults, ``auto_now``, JSON), as ``Model.save`` and ``bulk_create`` would."""
    from .models import Delivery

    sql = _sql(connection)
    event_values = [
        f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in sql.event_fields
    ]
    table, columns = connection.ops.quote_name(event._meta.db_table), ", ".join(sql.event_columns)
    marks = ", ".join(["%s"] * len(event_values))
    event_sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - values are parameters
    if not names:
        cursor.execute(event_sql, event_values)
        return
    rows = []
    for name in names:
        delivery = Delivery(
            event=event,
            clinic_id=event.clinic_id,
            event_type=event.event_type,
            subscriber=name,
            next_attempt_at=event.created_at,
            created_at=event.created_at,
        )
        rows.append(
            [
                f.get_db_prep_save(f.pre_save(delivery, add=True), connection)
                for f in sql.delivery_fields
            ]
        )
    row = "(" + ", ".join(["%s"] * len(sql.delivery_columns)) + ")"
    table, columns = (
        connection.ops.quote_name(Delivery._meta.db_table),
        ", ".join(sql.delivery_columns),
    )
    marks = ", ".join([row] * len(rows))
    delivery_sql = f"INSERT INTO {table} ({columns}) VALUES {marks}"  # noqa: S608 - values are parameters
    delivery_values = [value for values in rows for value in values]
    if connection.vendor == "postgresql":
        # Deferred foreign keys: the delivery may name the event of the same statement.
        cursor.execute(
            f"WITH event AS ({event_sql}) {delivery_sql}", [*event_values, *delivery_values]
        )
    else:
        cursor.execute(event_sql, event_values)
        cursor.execute(delivery_sql, delivery_values)


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
