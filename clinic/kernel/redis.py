"""One persistent Redis client per process for the hot paths that talk to Redis directly
(circuit breakers, the partner API's key cache, throttle and request-log buffer, the
availability cache), and the small shared state those keep in it.

Django's Redis cache builds a client per call; these paths run on every provider call or
API request, so they keep one. ``None`` without ``REDIS_URL`` (the embedded default)."""

from __future__ import annotations

import logging
import pickle

from django.conf import settings

logger = logging.getLogger(__name__)

_clients: dict = {}


def redis_client(*, socket_timeout: float = 1.0):
    """The client of ``settings.REDIS_URL`` with short timeouts (a slow Redis must not hold
    up the caller), or ``None`` when there is no Redis."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    client = _clients.get((url, socket_timeout))
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=socket_timeout)
        _clients[(url, socket_timeout)] = client
    return client


# --- Small shared state: pickled values under plain names ----------------------------------
# With Redis, straight through the persistent client (one round trip, no client built per
# call); without it, Django's cache (process memory in the embedded default and in tests).
# A Redis error is logged and reported as ``StateUnavailable``: callers decide what a
# missing answer means (compute it, let the request through …), never a 500.


class StateUnavailable(Exception):
    """Redis did not answer."""


def state_client():
    """The client the shared state (and the partner API's throttle and log buffer) use."""
    return redis_client(socket_timeout=2)


def state_get_many(names: list[str]) -> list:
    """The values kept under ``names`` (``None`` where nothing is), in one round trip."""
    client = state_client()
    if client is None:
        from django.core.cache import cache

        found = cache.get_many(names)
        return [found.get(name) for name in names]
    import redis

    try:
        raws = client.mget(names)
    except redis.RedisError as exc:
        logger.warning("Shared state: Redis unavailable", exc_info=True)
        raise StateUnavailable from exc
    return [None if raw is None else pickle.loads(raw) for raw in raws]  # noqa: S301 - ours


def state_set(name: str, value, seconds: int | None, *, only_if_missing: bool = False) -> bool:
    """Keep ``value`` under ``name`` for ``seconds`` (``None``: until replaced); whether it
    was kept (``only_if_missing``: not when something already is)."""
    client = state_client()
    if client is None:
        from django.core.cache import cache

        if only_if_missing:
            return cache.add(name, value, seconds)
        cache.set(name, value, seconds)
        return True
    import redis

    try:
        return bool(client.set(name, pickle.dumps(value), ex=seconds, nx=only_if_missing))
    except redis.RedisError as exc:
        logger.warning("Shared state: Redis unavailable", exc_info=True)
        raise StateUnavailable from exc
