"""Recorded contract tests of each model API: the request we send (tool calling forced,
keys in headers, nothing else) and the answers we read, tool calls included."""

import pytest
import responses

from integrations.llm import extract

from .conftest import (
    ANTHROPIC_URL,
    GEMINI_URL,
    GROQ_URL,
    OPENAI_URL,
    recorded,
    sent,
)

pytestmark = pytest.mark.django_db

CONTEXT = {"today": "2026-12-06 (domingo)", "services": ["Fisioterapia", "Pilates"]}


def test_openai_sends_a_forced_tool_call_and_reads_its_arguments(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_tool_call.json"))

    found = extract(clinic_a, "qro marcar fisio sexta de manha", context=CONTEXT)

    assert found.intent == "book"
    assert found.entities == {"service": "fisioterapia", "date": "2026-12-11", "period": "morning"}
    assert (found.provider, found.model) == ("openai_compatible", "gpt-4o-mini-2024-07-18")
    call = net.calls[0]
    assert call.request.headers["Authorization"] == "Bearer sk-test-0123456789"
    body = sent(call)
    assert body["model"] == "gpt-4o-mini"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "qro marcar fisio sexta de manha" in body["messages"][1]["content"]
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "registrar_intencao"
    assert "book" in body["tools"][0]["function"]["parameters"]["properties"]["intent"]["enum"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "registrar_intencao"}}


def test_a_compatible_server_is_reached_at_its_base_url(net, clinic_a, llm_account):
    llm_account(
        "openai_compatible",
        model="llama-3.1-8b-instant",
        base_url="https://api.groq.com/openai/v1/",
    )
    net.add(responses.POST, GROQ_URL, json=recorded("openai_tool_call.json"))

    assert extract(clinic_a, "quero marcar", context=CONTEXT).intent == "book"
    assert sent(net.calls[0])["model"] == "llama-3.1-8b-instant"


def test_a_local_server_without_key_gets_no_authorization_header(net, clinic_a, llm_account):
    llm_account(
        "openai_compatible",
        api_key="",
        model="qwen2.5:7b",
        base_url="http://ollama.local:11434/v1",
        no_key=True,
    )
    net.add(
        responses.POST,
        "http://ollama.local:11434/v1/chat/completions",
        json=recorded("openai_tool_call.json"),
    )

    assert extract(clinic_a, "quero marcar").intent == "book"
    assert "Authorization" not in net.calls[0].request.headers


def test_broken_json_in_tool_arguments_is_no_answer(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="llama-3.1-8b-instant")
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_invalid_arguments.json"))

    assert extract(clinic_a, "quero marcar fisio") is None


def test_anthropic_sends_a_forced_tool_and_reads_the_tool_use_block(net, clinic_a, llm_account):
    llm_account("anthropic", model="claude-3-5-haiku-latest")
    net.add(responses.POST, ANTHROPIC_URL, json=recorded("anthropic_tool_use.json"))

    found = extract(clinic_a, "preciso desmarcar a de quarta 14h", context=CONTEXT)

    assert found.intent == "cancel"
    assert found.entities == {"date": "2026-12-10", "time": "14:00"}
    call = net.calls[0]
    assert call.request.headers["x-api-key"] == "sk-test-0123456789"
    assert call.request.headers["anthropic-version"] == "2023-06-01"
    body = sent(call)
    assert body["model"] == "claude-3-5-haiku-latest"
    assert body["system"].startswith("Você classifica")
    assert body["messages"][0]["role"] == "user"
    assert body["tools"][0]["name"] == "registrar_intencao"
    assert body["tools"][0]["input_schema"]["required"] == ["intent", "confidence"]
    assert body["tool_choice"] == {"type": "tool", "name": "registrar_intencao"}


def test_gemini_sends_a_function_declaration_and_reads_the_function_call(
    net, clinic_a, llm_account
):
    llm_account("gemini", model="gemini-2.0-flash")
    net.add(responses.POST, GEMINI_URL, json=recorded("gemini_function_call.json"))

    found = extract(clinic_a, "qto custa o pilates?", context=CONTEXT)

    assert (found.intent, found.entities) == ("prices", {"service": "pilates"})
    call = net.calls[0]
    assert call.request.headers["x-goog-api-key"] == "sk-test-0123456789"
    body = sent(call)
    assert body["system_instruction"]["parts"][0]["text"].startswith("Você classifica")
    assert body["contents"][0]["role"] == "user"
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "registrar_intencao"
    # Gemini refuses JSON Schema's additionalProperties: it is not sent.
    assert "additionalProperties" not in str(declaration["parameters"])
    assert body["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["registrar_intencao"],
    }


def test_an_account_without_key_uses_the_installations_key(net, settings, clinic_a, llm_account):
    settings.CUIDAR_LLM_API_KEYS = {"anthropic": "sk-ant-from-env-4242"}
    llm_account("anthropic", api_key="", model="claude-3-5-haiku-latest")
    net.add(responses.POST, ANTHROPIC_URL, json=recorded("anthropic_tool_use.json"))

    assert extract(clinic_a, "desmarcar").intent == "cancel"
    assert net.calls[0].request.headers["x-api-key"] == "sk-ant-from-env-4242"


def test_an_answer_outside_the_schema_is_refused(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    bad = recorded("gemini_function_call.json")
    bad["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] = {
        "intent": "diagnose",
        "confidence": 0.99,
    }
    net.add(responses.POST, GEMINI_URL, json=bad)

    assert extract(clinic_a, "o que eu tenho?") is None


def test_an_impossible_date_is_refused(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    bad = recorded("gemini_function_call.json")
    bad["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] = {
        "intent": "book",
        "confidence": 0.9,
        "entities": {"date": "2026-02-30"},
    }
    net.add(responses.POST, GEMINI_URL, json=bad)

    assert extract(clinic_a, "dia 30/02") is None


def test_an_unsure_model_leaves_it_to_the_rules(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    unsure = recorded("gemini_function_call.json")
    unsure["candidates"][0]["content"]["parts"][0]["functionCall"]["args"]["confidence"] = 0.3
    net.add(responses.POST, GEMINI_URL, json=unsure)

    assert extract(clinic_a, "hmm") is None


def test_a_compatible_server_answering_json_in_content_is_read(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="qwen2.5:7b")
    reply = recorded("openai_tool_call.json")
    message = reply["choices"][0]["message"]
    message["content"] = '{"intent": "human", "confidence": 0.8}'
    del message["tool_calls"]
    net.add(responses.POST, OPENAI_URL, json=reply)

    assert extract(clinic_a, "quero falar com uma pessoa").intent == "human"


def test_the_health_check_lists_the_models(net, clinic_a, llm_account):
    from integrations.llm.openai_compatible import OpenAICompatibleLlm

    account = llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(
        responses.GET,
        "https://api.openai.com/v1/models",
        json={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]},
    )

    assert OpenAICompatibleLlm(account).health().ok is True


def test_one_extraction_costs_a_handful_of_queries(
    net, clinic_a, llm_account, django_assert_max_num_queries
):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_tool_call.json"))

    # llm_enabled, the chain's accounts, the call log, the usage row.
    with django_assert_max_num_queries(4):
        assert extract(clinic_a, "quero marcar") is not None
