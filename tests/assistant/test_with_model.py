"""Sofia with a language model (the clinic's OpenAI-compatible account, its API stubbed
with recorded answers): the model only reads what the rules could not, outside any
transaction; what it proposes is checked against the agenda (a time it names that the
agenda does not offer is never said); safety is decided before any model; with every
provider failing the rules answer and no message is left unanswered. Without a model,
the knowledge base answers in the clinic's own words."""

import json
import uuid

import pytest

from clinic.messaging.assistant.engine import CLINICAL_TEXT
from clinic.messaging.assistant.models import ConversationMessage, ConversationState
from clinic.messaging.knowledge import KnowledgeEntry
from integrations import breakers, http
from integrations.models import ProviderAccount
from tests.assistant.conftest import conversation_of

pytestmark = pytest.mark.django_db

OPENAI_URL = "https://api.openai.com/v1/chat/completions"


def tool_call(arguments: dict) -> dict:
    """OpenAI's answer with a forced tool call (the recorded shape, our arguments)."""
    return {
        "id": "chatcmpl-AbC123xYz",
        "object": "chat.completion",
        "created": 1764979200,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9fQ2kLmN",
                            "type": "function",
                            "function": {
                                "name": "registrar_intencao",
                                "arguments": json.dumps(arguments),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450},
    }


@pytest.fixture
def model(desk, settings, monkeypatch):
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    settings.CUIDAR_LLM_API_KEYS = {}
    settings.CUIDAR_PROVIDER_PRICES = {}
    monkeypatch.setattr(http, "_sleep", lambda seconds: None)
    breakers.reset_breakers()
    yield ProviderAccount.objects.create(
        clinic=desk["clinic"],
        kind="llm",
        provider="openai_compatible",
        settings={"model": "gpt-4o-mini"},
        credentials={"api_key": "sk-test-0123456789"},
    )
    breakers.reset_breakers()


def model_calls(sent):
    return [c for c in sent.calls if c.request.url == OPENAI_URL]


def test_the_model_reads_what_the_rules_cannot_and_the_agenda_decides_the_times(
    desk, patient, say, sent, model
):
    # It names Friday 15:00; the clinic works mornings only.
    sent.post(
        OPENAI_URL,
        json=tool_call(
            {
                "intent": "book",
                "confidence": 0.9,
                "entities": {"service": "fisioterapia", "date": "2026-03-13", "time": "15:00"},
            }
        ),
    )

    answer = say("seria possivel ver aquela terapia da coluna pra mim?")

    assert len(model_calls(sent)) == 1
    sent_to_model = json.loads(model_calls(sent)[0].request.body)
    assert "+5511" not in json.dumps(sent_to_model)  # no phone leaves for the model
    assert "Com qual profissional?" in answer
    offer = say("qualquer um")
    assert "15h" not in offer  # never a time the agenda did not offer
    assert "sexta, 13/03, 8h" in offer
    inbound = ConversationMessage.objects.filter(direction="in").order_by("pk").first()
    assert inbound.intent == "book llm:openai_compatible"


def test_with_every_provider_failing_the_rules_answer_and_nothing_is_lost(
    desk, patient, say, sent, model
):
    sent.post(OPENAI_URL, status=500, json={"error": {"message": "boom"}})

    answer = say("hmm deixa eu ver aqui uma coisa")

    assert answer is not None and "Desculpe, não entendi" in answer
    assert model_calls(sent)  # it was asked
    assert conversation_of().state == ConversationState.ASSISTANT


@pytest.mark.parametrize(
    "text", ["to com uma dor no peito muito forte", "posso tomar ibuprofeno antes da sessão?"]
)
def test_safety_is_decided_before_any_model(desk, patient, say, sent, model, text):
    answer = say(text)

    assert "SAMU 192" in answer or CLINICAL_TEXT in answer
    assert model_calls(sent) == []


def test_what_the_rules_understand_never_reaches_the_model(desk, patient, say, sent, model):
    assert "Fisioterapia — R$ 150,00" in say("quanto custa?")
    assert model_calls(sent) == []


def test_without_a_model_the_knowledge_base_answers_in_the_clinics_words(desk, patient, say):
    entry = KnowledgeEntry.objects.create(
        clinic=desk["clinic"],
        title="Acompanhantes",
        body="Sim! Cada paciente pode trazer um acompanhante.",
        keywords="acompanhante acompanhar levar junto",
    )

    answer = say("posso levar acompanhante?")

    assert answer.endswith("Sim! Cada paciente pode trazer um acompanhante.")
    reply = ConversationMessage.objects.filter(direction="out").last()
    assert reply.intent == f"kb:{entry.pk}"


def answer_call(text: str, cited: list[int]) -> dict:
    """OpenAI's answer to the knowledge-base tool (the recorded shape, our arguments)."""
    body = tool_call({"answerable": True, "text": text, "cited_entry_ids": cited})
    body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] = "responder_com_base"
    return body


def test_a_model_answer_that_invents_a_price_is_refused_and_the_entry_answers(
    desk, patient, say, sent, model
):
    entry = KnowledgeEntry.objects.create(
        clinic=desk["clinic"],
        title="Acompanhantes",
        body="Cada paciente pode trazer um acompanhante, sem custo.",
        keywords="acompanhante acompanhar levar junto",
    )
    sent.post(OPENAI_URL, json=tool_call({"intent": "faq", "confidence": 0.8, "entities": {}}))
    sent.post(
        OPENAI_URL,
        json=answer_call("Pode sim! O acompanhante paga só R$ 35,00.", [entry.pk]),
    )

    answer = say("posso levar acompanhante?")

    assert len(model_calls(sent)) == 2  # read, then asked to answer from the entry
    assert "R$ 35" not in answer
    assert answer.endswith("Cada paciente pode trazer um acompanhante, sem custo.")
