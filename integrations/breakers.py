"""Circuit breakers, one per (clinic, provider account).

After ``CUIDAR_BREAKER_FAIL_MAX`` consecutive transient failures (timeouts, 5xx, 429 that
``integrations.http`` gave up on) a breaker opens: calls through it fail at once with
``pybreaker.CircuitBreakerError`` and the chain moves to its next provider without touching
the network. After ``CUIDAR_BREAKER_RESET_SECONDS`` one trial call goes through
("half-open"): success closes the breaker, failure opens it for another period. Permanent
errors (4xx: bad input, bad credentials) say nothing about the provider's health and never
count.

State lives in Redis when ``REDIS_URL`` is set, so every web and worker process sees the same
circuit; otherwise in process memory (development, tests).

pybreaker reads the clock with ``datetime.now(UTC)``, which time-machine moves.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pybreaker
from django.conf import settings

from clinic.kernel.redis import redis_client

from .base import ProviderError
from .choices import CircuitState

if TYPE_CHECKING:
    import redis

    from .models import ProviderAccount

logger = logging.getLogger(__name__)

_breakers: dict[tuple[int | None, str], ProviderBreaker] = {}
_lock = threading.Lock()


def _is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.permanent


class ProviderBreaker(pybreaker.CircuitBreaker):
    """A ``pybreaker.CircuitBreaker`` that knows its namespace and, with Redis, lets only one
    process make the half-open trial call."""

    def __init__(self, *, namespace: str, redis_client=None, **kwargs):
        super().__init__(name=namespace, **kwargs)
        self.namespace = namespace
        self.redis = redis_client
        # pybreaker's open state calls ``call`` again once it has moved to half-open: the
        # thread holding the trial claim must not try to claim it a second time.
        self._claim = threading.local()

    @property
    def storage(self) -> pybreaker.CircuitBreakerStorage:
        return self._state_storage

    def retry_at(self) -> datetime | None:
        """When an open breaker lets its trial call through (None when not open)."""
        if self.current_state != pybreaker.STATE_OPEN:
            return None
        opened_at = self.storage.opened_at
        if opened_at is None:
            return datetime.now(UTC)
        return opened_at + timedelta(seconds=self.reset_timeout)

    def _trial_due(self) -> bool:
        state = self.current_state
        if state == pybreaker.STATE_HALF_OPEN:
            return True
        retry_at = self.retry_at()
        return retry_at is not None and datetime.now(UTC) >= retry_at

    def _trial_key(self) -> str:
        return f"{self.namespace}:trial"

    def call(self, func, *args, **kwargs):
        """As pybreaker's, except that across processes only one trial call runs at a time
        (within a process pybreaker's lock already serialises calls)."""
        if self.redis is None or getattr(self._claim, "held", False) or not self._trial_due():
            return super().call(func, *args, **kwargs)
        try:
            # Expires on its own if the worker holding it dies mid-call.
            claimed = self.redis.set(
                self._trial_key(), "1", nx=True, ex=max(1, int(self.reset_timeout))
            )
        except Exception:  # Redis down: pybreaker falls back to "closed" anyway.
            logger.warning("breaker %s: trial claim failed, Redis unavailable", self.namespace)
            claimed = True
        if not claimed:
            raise pybreaker.CircuitBreakerError("another process is making the trial call")
        self._claim.held = True
        try:
            return super().call(func, *args, **kwargs)
        finally:
            self._claim.held = False
            try:
                self.redis.delete(self._trial_key())
            except Exception:
                logger.warning("breaker %s: trial release failed", self.namespace)

    def forget(self) -> None:
        """Delete the shared state (tests)."""
        if self.redis is None:
            return
        keys = [
            f"{self.namespace}:{pybreaker.CircuitRedisStorage.BASE_NAMESPACE}:{key}"
            for key in ("state", "fail_counter", "success_counter", "opened_at")
        ]
        self.redis.delete(*keys, self._trial_key())


def account_key(account: ProviderAccount) -> str:
    """The breaker key of an account: its id, or ``default-<provider>`` for the unsaved
    accounts of a clinic's default chain."""
    return str(account.pk) if account.pk else f"default-{account.provider}"


def _namespace(clinic_id: int | None, key: str) -> str:
    prefix = getattr(settings, "CUIDAR_BREAKER_NAMESPACE", "cuidar")
    return f"{prefix}:breaker:{clinic_id if clinic_id is not None else 'none'}:{key}"


def _redis_client() -> redis.Redis | None:
    return redis_client(socket_timeout=1)


def _build(clinic_id: int | None, key: str) -> tuple[ProviderBreaker, bool]:
    """A new breaker and whether it may be cached (not when Redis was unreachable: the
    next call tries Redis again instead of keeping a private state for ever)."""
    namespace = _namespace(clinic_id, key)
    options: dict[str, Any] = {
        "fail_max": int(getattr(settings, "CUIDAR_BREAKER_FAIL_MAX", 5)),
        "reset_timeout": float(getattr(settings, "CUIDAR_BREAKER_RESET_SECONDS", 60)),
        "exclude": [_is_permanent],
        # The failure that trips the breaker re-raises the provider's own error (with its
        # http_status and retry_after); only later calls get CircuitBreakerError.
        "throw_new_error_on_trip": False,
    }
    client = _redis_client()
    if client is not None:
        try:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, client, namespace=namespace
            )
            return ProviderBreaker(
                namespace=namespace, redis_client=client, state_storage=storage, **options
            ), True
        except Exception as exc:  # redis.RedisError, or a misconfigured URL
            logger.warning(
                "breaker %s: Redis unavailable (%s), using process memory",
                namespace,
                exc.__class__.__name__,
            )
            storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            return ProviderBreaker(namespace=namespace, state_storage=storage, **options), False
    storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
    return ProviderBreaker(namespace=namespace, state_storage=storage, **options), True


def breaker_for(*, clinic_id: int | None, account_key: str) -> ProviderBreaker:
    """The breaker of one (clinic, provider account), cached per process. ``account_key``
    is ``str(account.pk)``, or ``default-<provider>`` for an unsaved default account (see
    :func:`account_key`)."""
    cache_key = (clinic_id, account_key)
    breaker = _breakers.get(cache_key)
    if breaker is not None:
        return breaker
    with _lock:
        breaker = _breakers.get(cache_key)
        if breaker is None:
            breaker, cacheable = _build(clinic_id, account_key)
            if cacheable:
                _breakers[cache_key] = breaker
    return breaker


def breaker_state(*, clinic_id: int | None, account_key: str) -> str:
    """``"closed"``, ``"open"`` or ``"half-open"`` for the health report. An open breaker
    whose reset timeout has passed reads as half-open: its next call is the trial."""
    breaker = breaker_for(clinic_id=clinic_id, account_key=account_key)
    state = breaker.current_state
    if state == pybreaker.STATE_OPEN and breaker._trial_due():
        return CircuitState.HALF_OPEN.value
    return CircuitState(state).value


def reset_breakers(*, keep_shared_state: bool = False) -> None:
    """Forget every breaker of this process (tests). Their Redis state is deleted too,
    unless ``keep_shared_state`` (to show that another process sees it)."""
    with _lock:
        breakers = list(_breakers.values())
        _breakers.clear()
    if keep_shared_state:
        return
    for breaker in breakers:
        try:
            breaker.forget()
        except Exception:
            logger.warning("breaker %s: could not delete its Redis state", breaker.namespace)
