"""The request log: one ``ApiRequestLog`` per request (key, method, path, status, latency;
no bodies). With Redis the rows wait in a Redis list and a worker writes them in bulk
(:func:`api_request_log_flush`, beat every minute); without, each is written as it
happens. Rows past their retention are purged weekly (:func:`api_request_log_purge`)."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from ._state import redis_client
from .models import ApiKey, ApiRequestLog

logger = logging.getLogger(__name__)

#: With Redis, log rows wait in a Redis list and a worker writes them in bulk: a flush task
#: is sent each time this many more are waiting, and beat flushes every minute
#: (``clinic.api_request_log_flush``). Requests do not write them themselves …
LOG_FLUSH_AT = 200
#: … unless this many are waiting (no worker is flushing: Celery down): then the request
#: that finds them writes one batch, so that the buffer cannot grow without bound.
LOG_FLUSH_INLINE_AT = 20_000
#: Rows per INSERT when flushing; a request that flushes writes one batch at most.
LOG_BATCH = 1000
LOG_BUFFER = "cuidar:api-request-log"
_LOG_FLUSH_LOCK = "cuidar:api-request-log:flushing"
_LOG_COLUMNS = ("clinic_id", "api_key_id", "method", "path", "status", "latency_ms", "created_at")


def _log_buffer():
    """The Redis client holding the buffer, or ``None`` (no ``REDIS_URL``: the embedded
    default, where each row is written as it happens)."""
    return redis_client()


def api_request_log_record(
    *, clinic_id: int | None, api_key_id: int | None, method: str, path: str, status: int,
    latency_ms: int,
) -> None:  # fmt: skip
    """Log one API request: into the Redis buffer when there is one (a worker writes it),
    else straight into ``ApiRequestLog``. Redis down: written straight away."""
    now = timezone.now()
    row = [clinic_id, api_key_id, method[:10], path[:255], status, max(0, latency_ms)]
    buffer = _log_buffer()
    if buffer is not None:
        import redis

        stamp = (now - _EPOCH) // _MICROSECOND
        try:
            waiting = buffer.rpush(LOG_BUFFER, json.dumps([*row, stamp]))
        except redis.RedisError:
            logger.warning("API request log buffer unavailable: writing directly", exc_info=True)
        else:
            if waiting >= LOG_FLUSH_INLINE_AT:
                try:
                    api_request_log_flush(batches=1)
                except (DatabaseError, redis.RedisError):  # the rows stay buffered
                    logger.warning("API request log not flushed", exc_info=True)
            elif waiting % LOG_FLUSH_AT == 0:
                _log_flush_soon()
            return
    ApiRequestLog.objects.create(**dict(zip(_LOG_COLUMNS, [*row, now], strict=True)))


def _log_flush_soon() -> None:
    """Ask a worker to write the buffer (a 200-row INSERT has no place in a request)."""
    from .tasks import api_request_log_flush_task

    try:
        api_request_log_flush_task.delay()
    except Exception:  # the broker (or an eager flush) failed: beat's minute job flushes
        logger.warning("API request log flush not queued", exc_info=True)


def api_request_log_flush(*, batches: int | None = None) -> int:
    """Write the buffered request log into ``ApiRequestLog`` (at most ``batches`` INSERTs
    of LOG_BATCH rows; all of it by default); returns the number of rows written.

    One flusher at a time (a Redis lock). Rows leave the buffer only after their INSERT
    committed: a crash in between writes them twice rather than losing them. Each row
    keeps the time of its request."""
    buffer = _log_buffer()
    if buffer is None:
        return 0
    import redis

    lock = buffer.lock(_LOG_FLUSH_LOCK, timeout=60, blocking=False)
    if not lock.acquire():
        return 0
    written = 0
    try:
        while batches is None or batches > 0:
            raw = buffer.lrange(LOG_BUFFER, 0, LOG_BATCH - 1)
            if not raw:
                break
            _log_insert(raw)
            buffer.ltrim(LOG_BUFFER, len(raw), -1)
            written += len(raw)
            batches = None if batches is None else batches - 1
    finally:
        # Expired meanwhile (LockError): there is nothing to release.
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    return written


def _log_insert(raw: list[bytes]) -> None:
    rows = []
    for item in raw:
        try:
            *values, stamp = json.loads(item)
            rows.append([*values, _EPOCH + timedelta(microseconds=stamp)])
        except (TypeError, ValueError):
            logger.error("Unreadable API request log row dropped: %r", item[:200])
    # A key or clinic deleted since the request: as the foreign keys would have it (the
    # key SET_NULL, the clinic's rows CASCADE), instead of failing the whole batch.
    key_ids = {row[1] for row in rows if row[1] is not None}
    clinic_ids = {row[0] for row in rows if row[0] is not None}
    keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
    clinic_model = ApiRequestLog._meta.get_field("clinic").related_model
    clinics = set(clinic_model.objects.filter(pk__in=clinic_ids).values_list("pk", flat=True))
    objs = []
    for clinic_id, key_id, *rest in rows:
        if clinic_id is not None and clinic_id not in clinics:
            continue
        key_id = key_id if key_id in keys else None
        objs.append(
            ApiRequestLog(**dict(zip(_LOG_COLUMNS, [clinic_id, key_id, *rest], strict=True)))
        )
    if not objs:
        return
    # created_at is the request's time, set on each row (a default, not auto_now_add).
    ApiRequestLog.objects.bulk_create(objs)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: Days the request log is kept (``CUIDAR_RETENTION_API_REQUEST_LOG``), like the
#: integrations' call logs (integrations/housekeeping.py): enough to answer a partner's
#: "what did we send last month?".
API_REQUEST_LOG_RETENTION_DAYS = 90
#: Rows deleted per statement: a busy partner leaves millions, and one DELETE of them all
#: would hold its locks and its WAL for minutes.
LOG_PURGE_BATCH = 10_000


def api_request_log_purge(*, now=None) -> int:
    """Delete request-log rows past their retention, a batch at a time (weekly job);
    returns how many. Idempotent."""
    now = now or timezone.now()
    days = getattr(settings, "CUIDAR_RETENTION_API_REQUEST_LOG", API_REQUEST_LOG_RETENTION_DAYS)
    old = ApiRequestLog.objects.filter(created_at__lt=now - timedelta(days=days))
    deleted = 0
    while batch := list(old.order_by().values_list("pk", flat=True)[:LOG_PURGE_BATCH]):
        deleted += ApiRequestLog.objects.filter(pk__in=batch).delete()[0]
    return deleted
