"""The clinic's llm chain: errors and timeouts move to the next model, an open breaker is
skipped without a call, and when every model fails the caller gets ``None`` (the rules
answer) — never an exception, so no patient message is lost."""

import pytest
import requests
import responses

from integrations.llm import extract, llm_enabled
from integrations.models import ConsoleRecord, ExternalCall, ProviderUsage

from .conftest import ANTHROPIC_URL, GEMINI_URL, OPENAI_URL, recorded

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_models(llm_account):
    return (
        llm_account("openai_compatible", 1, model="gpt-4o-mini"),
        llm_account("anthropic", 2, model="claude-3-5-haiku-latest"),
        llm_account("gemini", 3, model="gemini-2.0-flash"),
    )


def test_the_llm_is_off_by_default_and_nothing_is_called(net, clinic_a):
    assert llm_enabled(clinic_a) is False
    assert extract(clinic_a, "quero marcar") is None
    assert len(net.calls) == 0
    assert not ConsoleRecord.objects.filter(kind="llm").exists()


def test_a_disabled_account_does_not_switch_it_on(net, clinic_a, llm_account):
    account = llm_account("openai_compatible", model="gpt-4o-mini")
    account.enabled = False
    account.save(update_fields=["enabled"])

    assert extract(clinic_a, "quero marcar") is None
    assert len(net.calls) == 0


def test_a_rate_limited_model_hands_over_to_the_next(net, clinic_a, three_models):
    net.add(responses.POST, OPENAI_URL, status=429, json=recorded("openai_rate_limited.json"))
    net.add(responses.POST, ANTHROPIC_URL, json=recorded("anthropic_tool_use.json"))

    found = extract(clinic_a, "desmarcar quarta")

    assert (found.intent, found.provider) == ("cancel", "anthropic")
    # One attempt each: the next model is the retry (a patient is waiting).
    assert [c.request.url for c in net.calls] == [OPENAI_URL, ANTHROPIC_URL]


def test_a_timeout_hands_over_to_the_next(net, clinic_a, three_models):
    net.add(responses.POST, OPENAI_URL, body=requests.ReadTimeout("read timed out"))
    net.add(responses.POST, ANTHROPIC_URL, status=529, json=recorded("anthropic_overloaded.json"))
    net.add(responses.POST, GEMINI_URL, json=recorded("gemini_function_call.json"))

    found = extract(clinic_a, "qto custa")

    assert (found.intent, found.provider) == ("prices", "gemini")


def test_a_refused_key_hands_over_to_the_next(net, clinic_a, three_models):
    net.add(
        responses.POST, OPENAI_URL, status=401, json={"error": {"message": "Incorrect API key"}}
    )
    net.add(responses.POST, ANTHROPIC_URL, status=401, json=recorded("anthropic_unauthorized.json"))
    net.add(responses.POST, GEMINI_URL, json=recorded("gemini_function_call.json"))

    assert extract(clinic_a, "qto custa").provider == "gemini"


def test_every_model_failing_leaves_it_to_the_rules(net, clinic_a, three_models):
    net.add(responses.POST, OPENAI_URL, status=500, json={"error": {"message": "boom"}})
    net.add(responses.POST, ANTHROPIC_URL, status=529, json=recorded("anthropic_overloaded.json"))
    net.add(responses.POST, GEMINI_URL, status=503, json=recorded("gemini_server_error.json"))

    assert extract(clinic_a, "quero marcar") is None
    assert ExternalCall.objects.filter(clinic=clinic_a, succeeded=False).count() == 3
    assert not ProviderUsage.objects.exists()  # failed calls are not billed


def test_a_broken_model_trips_its_breaker_and_is_skipped_without_a_call(
    net, settings, clinic_a, three_models
):
    settings.CUIDAR_BREAKER_FAIL_MAX = 2
    net.add(responses.POST, OPENAI_URL, status=503, json={"error": {"message": "down"}})
    net.add(responses.POST, ANTHROPIC_URL, json=recorded("anthropic_tool_use.json"))

    for _ in range(3):
        assert extract(clinic_a, "desmarcar").provider == "anthropic"

    openai_calls = [c for c in net.calls if c.request.url == OPENAI_URL]
    assert len(openai_calls) == 2  # the third message skipped it: circuit open


def test_an_open_chain_answers_none_without_touching_the_network(
    net, settings, clinic_a, three_models
):
    settings.CUIDAR_BREAKER_FAIL_MAX = 1
    for url in (OPENAI_URL, ANTHROPIC_URL, GEMINI_URL):
        net.add(responses.POST, url, status=503, json={"error": {"message": "down"}})
    assert extract(clinic_a, "oi") is None
    calls_before = len(net.calls)

    assert extract(clinic_a, "quero marcar") is None
    assert len(net.calls) == calls_before


def test_the_console_model_answers_in_development_and_records_what_it_got(clinic_a, llm_account):
    llm_account("console", api_key="")

    found = extract(clinic_a, "Oi, quero agendar uma consulta. Meu CPF é 123.456.789-09")

    assert (found.intent, found.provider, found.model) == ("book", "console", "console-sandbox")
    record = ConsoleRecord.objects.get(clinic=clinic_a, kind="llm")
    assert "123.456.789-09" not in record.payload["user"]
    assert "[CPF]" in record.payload["user"]


def test_unreachable_models_leave_it_to_the_rules(net, clinic_a, three_models):
    for url in (OPENAI_URL, ANTHROPIC_URL, GEMINI_URL):
        net.add(responses.POST, url, body=requests.ConnectionError("connection refused"))

    assert extract(clinic_a, "oi") is None
    assert len(net.calls) == 3


def test_an_answer_of_an_unexpected_shape_leaves_it_to_the_rules(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(responses.POST, OPENAI_URL, json={"choices": ["not an object"]})

    assert extract(clinic_a, "quero marcar") is None
