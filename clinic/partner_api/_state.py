"""Shared state on the partner API's hot path: the cached key, the last-used gate and the
throttle counters are read on every request.

With Redis: one persistent client and one round trip each (Django's Redis cache builds a
client per call, and its incr() is two round trips). Without: Django's cache (process
memory in the embedded default and in tests)."""

from __future__ import annotations

import contextlib
import logging

from django.core.cache import cache

from clinic.kernel import redis as shared_redis
from clinic.kernel.redis import StateUnavailable

logger = logging.getLogger(__name__)

_STATE_PREFIX = "cuidar:api:"


def redis_client():
    """The Redis client of ``REDIS_URL``, or ``None`` (the embedded default)."""
    return shared_redis.state_client()


def redis_failed(what: str) -> None:
    # Redis down must not take the API down: the key is read from the database, the
    # throttle lets the request through, a cached key lives out its few seconds.
    logger.warning("API %s: Redis unavailable", what, exc_info=True)


def state_get(name: str):
    try:
        return shared_redis.state_get_many([_STATE_PREFIX + name])[0]
    except StateUnavailable:
        return None  # the key is read from the database


def state_put(name: str, value, seconds: int) -> None:
    with contextlib.suppress(StateUnavailable):  # logged; a cached key lives out its seconds
        shared_redis.state_set(_STATE_PREFIX + name, value, seconds)


def state_add(name: str, seconds: int) -> bool:
    """Set ``name`` for ``seconds`` unless it is set; whether it was set now."""
    try:
        return shared_redis.state_set(_STATE_PREFIX + name, 1, seconds, only_if_missing=True)
    except StateUnavailable:
        return False


def state_delete(names: list[str]) -> None:
    client = redis_client()
    if client is None:
        cache.delete_many([_STATE_PREFIX + name for name in names])
        return
    import redis

    try:
        if names:
            client.delete(*[_STATE_PREFIX + name for name in names])
    except redis.RedisError:
        redis_failed("key cache")


def counter_incr(current: str, previous: str, seconds: int) -> tuple[int, int] | None:
    """Add one to counter ``current`` (kept ``seconds``); its new value and ``previous``'s
    (``None``: Redis is unavailable)."""
    client = redis_client()
    if client is None:
        current, previous = _STATE_PREFIX + current, _STATE_PREFIX + previous
        try:
            count = cache.incr(current)
        except ValueError:  # not there yet (or just expired)
            count = 1 if cache.add(current, 1, seconds) else cache.incr(current)
        return count, cache.get(previous, 0)
    import redis

    pipe = client.pipeline(transaction=False)
    pipe.incr(_STATE_PREFIX + current)
    pipe.expire(_STATE_PREFIX + current, seconds)
    pipe.get(_STATE_PREFIX + previous)
    try:
        count, _expiry, before = pipe.execute()
    except redis.RedisError:
        redis_failed("throttle")
        return None
    return int(count), int(before or 0)


def counter_decr(current: str) -> None:
    client = redis_client()
    if client is None:
        with contextlib.suppress(ValueError):
            cache.decr(_STATE_PREFIX + current)
        return
    import redis

    try:
        client.decr(_STATE_PREFIX + current)
    except redis.RedisError:
        redis_failed("throttle")
