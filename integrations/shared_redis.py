"""One persistent Redis client per process for the hot paths that talk to Redis directly
(circuit breakers, the partner API's key cache, throttle and request-log buffer).

Django's Redis cache builds a client per call; these paths run on every provider call or
API request, so they keep one. ``None`` without ``REDIS_URL`` (the embedded default)."""

from __future__ import annotations

from django.conf import settings

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
