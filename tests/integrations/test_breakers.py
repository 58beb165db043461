"""Circuit breakers per (clinic, provider account): counting, opening, the half-open trial,
and state shared through Redis."""

import uuid
from datetime import UTC, datetime

import pybreaker
import pytest
import time_machine
from django.conf import settings as django_settings

from integrations import breakers
from integrations.base import PermanentProviderError, TransientProviderError
from integrations.models import ProviderAccount

NEEDS_REDIS = "needs Redis: set REDIS_URL"
START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated_breakers(settings):
    """A namespace of this test's own (Redis is shared with other runs), nothing cached."""
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


class Provider:
    """Stands for a provider's operation: counts calls, fails as told."""

    def __init__(self):
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return "ok"


def failing(error):
    provider = Provider()
    provider.error = error
    return provider


def trip(breaker, provider, times=5):
    for _ in range(times):
        with pytest.raises(TransientProviderError):
            breaker.call(provider)


def test_it_opens_after_five_transient_failures_and_skips_the_sixth_call():
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")
    provider = failing(TransientProviderError("HTTP 503", http_status=503))

    trip(breaker, provider)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(provider)

    assert provider.calls == 5
    assert breakers.breaker_state(clinic_id=1, account_key="7") == "open"


def test_the_failure_that_trips_it_is_the_providers_own_error():
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")
    provider = failing(TransientProviderError("HTTP 429", http_status=429, retry_after=3))
    trip(breaker, provider, times=4)

    with pytest.raises(TransientProviderError) as caught:
        breaker.call(provider)

    assert caught.value.retry_after == 3
    assert breaker.current_state == "open"


def test_a_permanent_error_never_counts():
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")
    provider = failing(PermanentProviderError("HTTP 400", http_status=400))

    for _ in range(20):
        with pytest.raises(PermanentProviderError):
            breaker.call(provider)

    assert provider.calls == 20
    assert breaker.current_state == "closed"
    assert breaker.fail_counter == 0


def test_a_success_resets_the_count_of_consecutive_failures():
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")
    provider = failing(TransientProviderError("timeout"))
    trip(breaker, provider, times=4)
    provider.error = None
    breaker.call(provider)
    provider.error = TransientProviderError("timeout")

    trip(breaker, provider, times=4)

    assert breaker.current_state == "closed"


def test_it_reads_fail_max_and_reset_timeout_from_settings(settings):
    settings.CUIDAR_BREAKER_FAIL_MAX = 2
    settings.CUIDAR_BREAKER_RESET_SECONDS = 10
    with time_machine.travel(START, tick=False) as clock:
        breaker = breakers.breaker_for(clinic_id=1, account_key="7")
        trip(breaker, failing(TransientProviderError("timeout")), times=2)
        assert breaker.current_state == "open"
        clock.shift(10)
        assert breakers.breaker_state(clinic_id=1, account_key="7") == "half-open"


def test_after_the_reset_timeout_one_trial_call_goes_through_and_success_closes_it():
    with time_machine.travel(START, tick=False) as clock:
        breaker = breakers.breaker_for(clinic_id=1, account_key="7")
        provider = failing(TransientProviderError("timeout"))
        trip(breaker, provider)

        clock.shift(59)
        assert breakers.breaker_state(clinic_id=1, account_key="7") == "open"
        with pytest.raises(pybreaker.CircuitBreakerError):
            breaker.call(provider)
        assert provider.calls == 5

        clock.shift(1)
        assert breakers.breaker_state(clinic_id=1, account_key="7") == "half-open"
        provider.error = None
        assert breaker.call(provider) == "ok"
        assert provider.calls == 6
        assert breaker.current_state == "closed"


def test_a_failed_trial_call_opens_it_for_another_period():
    with time_machine.travel(START, tick=False) as clock:
        breaker = breakers.breaker_for(clinic_id=1, account_key="7")
        provider = failing(TransientProviderError("timeout"))
        trip(breaker, provider)
        clock.shift(60)

        with pytest.raises(TransientProviderError):
            breaker.call(provider)  # the trial, failing: the provider's own error
        with pytest.raises(pybreaker.CircuitBreakerError):
            breaker.call(provider)

        assert provider.calls == 6
        assert breaker.current_state == "open"


def test_it_keeps_one_breaker_per_clinic_and_account():
    first = breakers.breaker_for(clinic_id=1, account_key="7")

    assert breakers.breaker_for(clinic_id=1, account_key="7") is first
    assert breakers.breaker_for(clinic_id=2, account_key="7") is not first
    assert breakers.breaker_for(clinic_id=1, account_key="default-console") is not first


def test_an_open_breaker_of_one_clinic_leaves_the_other_clinics_alone():
    trip(breakers.breaker_for(clinic_id=1, account_key="7"), failing(TransientProviderError("x")))

    assert breakers.breaker_state(clinic_id=2, account_key="7") == "closed"


def test_account_key_is_the_id_or_default_and_the_provider_name():
    assert breakers.account_key(ProviderAccount(pk=42, provider="evolution")) == "42"
    assert breakers.account_key(ProviderAccount(provider="console")) == "default-console"


@pytest.mark.skipif(not django_settings.REDIS_URL, reason=NEEDS_REDIS)
def test_with_redis_a_breaker_opened_in_one_process_is_open_in_another():
    opened_here = breakers.breaker_for(clinic_id=1, account_key="7")
    assert isinstance(opened_here.storage, pybreaker.CircuitRedisStorage)
    trip(opened_here, failing(TransientProviderError("timeout")))
    # Another worker: no breaker cached yet, only what Redis holds.
    breakers.reset_breakers(keep_shared_state=True)

    elsewhere = breakers.breaker_for(clinic_id=1, account_key="7")
    provider = Provider()

    assert elsewhere is not opened_here
    assert breakers.breaker_state(clinic_id=1, account_key="7") == "open"
    with pytest.raises(pybreaker.CircuitBreakerError):
        elsewhere.call(provider)
    assert provider.calls == 0


@pytest.mark.skipif(not django_settings.REDIS_URL, reason=NEEDS_REDIS)
def test_with_redis_only_one_process_makes_the_trial_call():
    with time_machine.travel(START, tick=False) as clock:
        breaker = breakers.breaker_for(clinic_id=1, account_key="7")
        trip(breaker, failing(TransientProviderError("timeout")))
        clock.shift(60)
        # Another worker is making the trial call right now.
        breaker.redis.set(breaker._trial_key(), "1", ex=60)
        provider = Provider()

        with pytest.raises(pybreaker.CircuitBreakerError):
            breaker.call(provider)
        assert provider.calls == 0

        breaker.redis.delete(breaker._trial_key())
        assert breaker.call(provider) == "ok"
        assert breaker.current_state == "closed"
        assert not breaker.redis.exists(breaker._trial_key())


@pytest.mark.skipif(not django_settings.REDIS_URL, reason=NEEDS_REDIS)
def test_with_redis_reset_breakers_deletes_their_keys():
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")
    trip(breaker, failing(TransientProviderError("timeout")))
    pattern = f"{breaker.namespace}:*"
    assert breaker.redis.keys(pattern)

    breakers.reset_breakers()

    assert breaker.redis.keys(pattern) == []


def test_without_redis_the_state_stays_in_process_memory(settings):
    settings.REDIS_URL = ""
    breaker = breakers.breaker_for(clinic_id=1, account_key="7")

    assert isinstance(breaker.storage, pybreaker.CircuitMemoryStorage)


def test_an_unreachable_redis_falls_back_to_memory_without_caching(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    breaker = breakers.breaker_for(clinic_id=1, account_key="7")

    assert isinstance(breaker.storage, pybreaker.CircuitMemoryStorage)
    assert breakers.breaker_for(clinic_id=1, account_key="7") is not breaker
