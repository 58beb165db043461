"""Language-model tests: the network stubbed with ``responses`` (an unregistered call fails
at once), fresh breakers, no real waiting, and helpers for a clinic's llm chain."""

import json
import uuid
from pathlib import Path

import pytest
import responses

from integrations import breakers, http
from integrations.models import ProviderAccount

RECORDED = Path(__file__).parent / "recorded"

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
GROQ_URL = "https://api.groq.com/openai/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
)


def recorded(name: str, **replace) -> dict:
    text = (RECORDED / name).read_text(encoding="utf-8")
    for key, value in replace.items():
        text = text.replace(key, str(value))
    return json.loads(text)


def sent(call) -> dict:
    """The JSON body of a recorded request."""
    return json.loads(call.request.body)


@pytest.fixture(autouse=True)
def _llm_isolation(settings, monkeypatch):
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    settings.CUIDAR_LLM_API_KEYS = {}
    settings.CUIDAR_PROVIDER_PRICES = {}
    monkeypatch.setattr(http, "_sleep", lambda seconds: None)
    breakers.reset_breakers()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    breakers.reset_breakers()


@pytest.fixture
def net(_llm_isolation):
    """The ``responses`` mock of this test."""
    return _llm_isolation


@pytest.fixture
def llm_account(clinic_a):
    """``llm_account(provider, priority, **settings)``: a link of clinic A's llm chain."""

    def make(provider, priority=10, *, api_key="sk-test-0123456789", **options):
        return ProviderAccount.objects.create(
            clinic=clinic_a,
            kind="llm",
            provider=provider,
            priority=priority,
            settings=options,
            credentials={"api_key": api_key} if api_key else {},
        )

    return make
