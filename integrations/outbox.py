"""The outbox engine: run deliveries, retry them with backoff, sweep what was lost, and
keep dead letters.

A delivery runs in one database transaction that locks its row (``SKIP LOCKED``: a second
worker holding the same task skips it), calls the subscriber inside a savepoint, and records
the outcome. A handler's database writes therefore commit together with "succeeded" and
happen once, however often the task is delivered.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from .choices import DeliveryStatus
from .events import HANDLER_PREFIX, WEBHOOK_PREFIX, handler_for
from .models import Delivery, DeliveryAttempt, Event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = getattr(settings, "CUIDAR_OUTBOX_MAX_ATTEMPTS", 5)
BACKOFF_BASE_SECONDS = getattr(settings, "CUIDAR_OUTBOX_BACKOFF_SECONDS", 30)
BACKOFF_CAP_SECONDS = 60 * 60
#: A pending delivery older than this has lost its task: the sweeper sends a new one.
LOST_AFTER = timedelta(seconds=60)
#: How long a swept delivery is left to its new task before the sweeper tries again.
SWEEP_LEASE = timedelta(minutes=5)
SWEEP_BATCH = 500

RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
#: Cache key that says "a drain task is queued": see ``request_dispatch``.
DRAIN_FLAG = "cuidar:outbox:drain-queued"
#: If that task is lost, the flag expires and the next commit sends another (the sweeper
#: catches what is left in between).
DRAIN_FLAG_TTL = 30
#: Clock skew between workers tolerated when a retry task arrives "on time".
DUE_TOLERANCE = timedelta(seconds=2)


class SubscriberMissing(LookupError):
    """The delivery names a subscriber this code base no longer has."""


def backoff_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: exponential with full jitter
    between half and the whole step (30 s, 60 s, 120 s, 240 s … with the defaults), so a
    provider that comes back is not hit by every retry at once."""
    step = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)
    return random.uniform(step / 2, step)  # noqa: S311 - jitter, not security


def _queue_for(delivery: Delivery) -> str:
    if delivery.attempts:
        return "integrations-retry"
    return "integrations" if delivery.subscriber.startswith(WEBHOOK_PREFIX) else "default"


def enqueue(delivery: Delivery, *, countdown: float | None = None) -> None:
    """Send the task that runs one delivery (after the current transaction commits)."""
    from .tasks import delivery_run_task

    def send():
        delivery_run_task.apply_async(
            args=[delivery.pk], countdown=countdown, queue=_queue_for(delivery)
        )

    transaction.on_commit(send)


# --- Running --------------------------------------------------------------------------------
def request_dispatch(event_ids: list[str]) -> None:
    """After a commit: get the events just published delivered.

    With a cache shared by every process (Redis), dispatches are coalesced: a drain task is
    sent only if none is queued yet (an atomic ``cache.add`` flag), and that task delivers
    every pending event, these included. A burst of thousands of small transactions then
    costs a handful of tasks instead of one each. Without a shared cache (the embedded
    default), each transaction sends one task for its own events.
    """
    from .tasks import outbox_dispatch_task, outbox_drain_task

    if getattr(settings, "CUIDAR_OUTBOX_COALESCE", False):
        try:
            if cache.add(DRAIN_FLAG, "1", timeout=DRAIN_FLAG_TTL):
                outbox_drain_task.delay()
            return  # a drain is queued or running: it will take these events too
        except Exception:
            logger.warning("outbox: drain flag unavailable, dispatching directly", exc_info=True)
    outbox_dispatch_task.delay(event_ids)


def events_dispatch(*, event_ids: list[str]) -> int:
    """Run the pending deliveries of the given events (one transaction's worth)."""
    return _run_pending(Q(event_id__in=event_ids))


def outbox_drain(*, batch_size: int = 200, max_batches: int = 25) -> int:
    """Deliver every pending event, a batch at a time; returns how many deliveries ran.

    The flag is cleared *before* looking for work, so an event committed while this runs
    either is seen here or sends a new drain task. A drain stops after ``max_batches``
    and hands over to a fresh task, so one task never runs unbounded.
    """
    cache.delete(DRAIN_FLAG)
    total = 0
    for _ in range(max_batches):
        taken = _run_pending(Q(next_attempt_at__lte=timezone.now()), limit=batch_size)
        total += taken
        if taken < batch_size:
            return total
    request_dispatch([])
    return total


def _run_pending(where: Q, *, limit: int | None = None) -> int:
    """Take the pending deliveries matching ``where`` and run them; returns how many.

    Fast path: the in-process handler deliveries are locked with one query (``SKIP
    LOCKED``), run in one transaction and marked succeeded with one UPDATE. If a handler
    raises, the transaction rolls back whole; the one that raised is recorded as failed and
    the others run again, alone (handlers are idempotent by contract). Partner webhooks and
    anything else get a task each (a slow partner must not hold up handlers), leased in the
    same transaction so that no other drain sends them twice.
    """
    handlers: list[Delivery] = []
    others: list[Delivery] = []
    failing: Delivery | None = None
    started, clock = timezone.now(), time.monotonic()
    try:
        with transaction.atomic():
            pending = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(where, status=DeliveryStatus.PENDING)
                .order_by("next_attempt_at", "pk")
            )
            batch = list(pending[:limit] if limit else pending)
            for delivery in batch:
                is_handler = delivery.subscriber.startswith(HANDLER_PREFIX)
                (handlers if is_handler else others).append(delivery)
            _lease_and_enqueue(others)
            for delivery in handlers:
                failing = delivery
                _call_subscriber(delivery)
            failing = None
            if handlers:
                now = timezone.now()
                Delivery.objects.filter(pk__in=[d.pk for d in handlers]).update(
                    status=DeliveryStatus.SUCCEEDED,
                    attempts=F("attempts") + 1,
                    succeeded_at=now,
                    last_error="",
                    updated_at=now,
                )
                for delivery in handlers:
                    if delivery.last_error:  # it had failed before: complete its history
                        _log_attempt(delivery, started_at=started, clock=clock, error="")
    except Exception as exc:
        if failing is None:
            # Not a subscriber's fault (the database, say): nothing was taken, and the
            # sweeper finds these deliveries again.
            raise
        _record_failure(
            delivery_id=failing.pk,
            seen_attempts=failing.attempts,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            exc=exc,
        )
        for delivery in handlers:
            if delivery is not failing:
                delivery_run(delivery_id=delivery.pk)
        with transaction.atomic():  # their lease was rolled back with the batch
            _lease_and_enqueue(others)
    return len(handlers) + len(others)


def _lease_and_enqueue(deliveries: list[Delivery]) -> None:
    """Give each its own task (after commit), leased like a swept delivery."""
    if not deliveries:
        return
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        next_attempt_at=timezone.now() + SWEEP_LEASE
    )
    for delivery in deliveries:
        enqueue(delivery)


def delivery_run(*, delivery_id: int) -> DeliveryStatus | None:
    """Attempt one delivery. Returns its new status, or None when there was nothing to do
    (already done, dead, archived, a retry not due yet, or being run by another worker right
    now).

    ``pending`` deliveries run at once; ``failed`` ones only when their retry is due, so a
    duplicate or early task does not shorten the backoff.

    The subscriber runs in the transaction that holds the delivery's row lock and marks it
    succeeded, so its database writes commit exactly once. If it raises, that transaction
    rolls back whole (its writes and all) and the failure is recorded in a new one.
    """
    now = timezone.now()
    due = Q(status=DeliveryStatus.PENDING) | Q(
        status=DeliveryStatus.FAILED, next_attempt_at__lte=now + DUE_TOLERANCE
    )
    clock = time.monotonic()
    seen_attempts = None
    try:
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(due, pk=delivery_id)
                .first()
            )
            if delivery is None:
                return None
            seen_attempts = delivery.attempts
            _call_subscriber(delivery)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.SUCCEEDED,
                attempts=seen_attempts + 1,
                succeeded_at=timezone.now(),
                last_error="",
                updated_at=timezone.now(),
            )
            if delivery.last_error:
                # Complete the history of a delivery that failed before (first-time
                # successes need no log: attempts=1 and succeeded_at say it all).
                _log_attempt(delivery, started_at=now, clock=clock, error="")
        return DeliveryStatus.SUCCEEDED
    except Exception as exc:
        if seen_attempts is None:
            raise  # failed before the subscriber ran: a database problem, not a delivery's
        return _record_failure(
            delivery_id=delivery_id,
            seen_attempts=seen_attempts,
            started_at=now,
            duration_ms=int((time.monotonic() - clock) * 1000),
            exc=exc,
        )


def _log_attempt(delivery, *, started_at, error, clock=None, duration_ms=None) -> None:
    """Append to the delivery's attempt history (numbered on from earlier attempts, which
    survive a retry from the dead-letter list)."""
    last = delivery.attempt_log.aggregate(last=Max("number"))["last"] or 0
    if duration_ms is None:
        duration_ms = int((time.monotonic() - clock) * 1000)
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=last + 1,
        started_at=started_at,
        duration_ms=duration_ms,
        succeeded=not error,
        error=error,
    )


def _record_failure(*, delivery_id, seen_attempts, started_at, duration_ms, exc):
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    logger.warning(
        "delivery %s attempt %s failed: %s", delivery_id, seen_attempts + 1, exc.__class__.__name__
    )
    logger.debug("delivery %s traceback:\n%s", delivery_id, traceback.format_exc())
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=RETRYABLE, attempts=seen_attempts)
            .first()
        )
        if delivery is None:
            return None  # another worker ran it meanwhile: its outcome stands
        number = seen_attempts + 1
        _log_attempt(delivery, started_at=started_at, duration_ms=duration_ms, error=error)
        now = timezone.now()
        delivery.attempts = number
        delivery.last_error = error
        fields = ["attempts", "status", "last_error", "updated_at"]
        if number >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.DEAD
            delivery.dead_at = now
            fields.append("dead_at")
        else:
            delay = backoff_delay(number)
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            fields.append("next_attempt_at")
            enqueue(delivery, countdown=delay)
        delivery.save(update_fields=fields)
        return delivery.status


def _call_subscriber(delivery: Delivery) -> None:
    event: Event = delivery.event
    if delivery.subscriber.startswith(HANDLER_PREFIX):
        subscriber = handler_for(delivery.subscriber)
        if subscriber is None:
            raise SubscriberMissing(f"no subscriber {delivery.subscriber} in this code base")
        subscriber.func(event, delivery)
        return
    if delivery.subscriber.startswith(WEBHOOK_PREFIX):
        from .models import WebhookSubscription
        from .subscriptions import subscription_post

        subscription_id = delivery.subscriber.removeprefix(WEBHOOK_PREFIX)
        subscription = WebhookSubscription.objects.filter(
            pk=subscription_id, clinic_id=delivery.clinic_id
        ).first()
        if subscription is None or not subscription.active:
            raise SubscriberMissing(f"webhook subscription {subscription_id} is gone or inactive")
        subscription_post(
            subscription,
            event_type=event.event_type,
            event_id=str(event.pk),
            delivery_id=str(delivery.pk),
            created_at=event.created_at,
            payload=event.payload,
        )
        return
    raise SubscriberMissing(f"unknown subscriber kind: {delivery.subscriber}")


# --- Sweeping -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    requeued: int
    dead: int


def outbox_sweep(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> SweepResult:
    """Re-enqueue deliveries whose task was lost or whose retry is due, and bury those
    that ran out of attempts.

    Due ones are put back to ``pending`` with a lease (their next attempt moved forward by
    ``SWEEP_LEASE``) and a new task. Safe to run concurrently with itself: rows are claimed
    with ``FOR UPDATE SKIP LOCKED`` and leased before the transaction commits, so a second
    sweeper neither blocks nor picks them again; if the new task is lost too, the lease
    expires and the next sweep sends another.
    """
    now = now or timezone.now()
    with transaction.atomic():
        dead = Delivery.objects.filter(status__in=RETRYABLE, attempts__gte=MAX_ATTEMPTS).update(
            status=DeliveryStatus.DEAD, dead_at=now, updated_at=now
        )
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - LOST_AFTER)
                | Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
            )
            .order_by("next_attempt_at")
            .only("pk", "subscriber", "attempts")[:batch]
        )
        if due:
            Delivery.objects.filter(pk__in=[d.pk for d in due]).update(
                status=DeliveryStatus.PENDING, next_attempt_at=now + SWEEP_LEASE, updated_at=now
            )
            for delivery in due:
                enqueue(delivery)
    if due or dead:
        logger.info("outbox sweep: %s re-enqueued, %s dead", len(due), dead)
    return SweepResult(requeued=len(due), dead=dead)


# --- Dead letters ---------------------------------------------------------------------------
@transaction.atomic
def delivery_retry(*, delivery: Delivery) -> Delivery:
    """Give a dead (or archived) delivery a fresh set of attempts, starting now."""
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.dead_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "dead_at", "updated_at"])
    enqueue(delivery)
    return delivery


@transaction.atomic
def delivery_archive(*, delivery: Delivery) -> Delivery:
    """Take a dead letter off the list without delivering it (its history is kept)."""
    delivery.status = DeliveryStatus.ARCHIVED
    delivery.save(update_fields=["status", "updated_at"])
    return delivery
