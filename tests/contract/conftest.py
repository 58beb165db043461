"""What every provider contract test shares: no real waiting between HTTP retries, and an
``offline`` fixture that stubs the whole network with ``responses``."""

import pytest
import responses

from integrations import http


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch):
    """Retries and Retry-After still happen; only the waiting is skipped."""
    monkeypatch.setattr(http, "_sleep", lambda seconds: None)


@pytest.fixture
def offline():
    """The network stubbed for the whole test: an unregistered call fails at once."""
    responses.start()
    yield
    responses.stop()
    responses.reset()
