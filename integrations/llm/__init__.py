"""Language models for the WhatsApp assistant (issue 24): a provider chain with fallback to
the rules.

The assistant (``clinic.messaging.assistant``) calls three things, never a provider:

``extract(clinic, text, *, context=None, intents=INTENTS) -> Extraction | None``
    The intent (one of ``intents``) and entities (``service``, ``professional``, ``date``
    ``YYYY-MM-DD``, ``time`` ``HH:MM``, ``period`` morning/afternoon/evening, ``choice``
    1–50, ``question``) of a patient's message, validated against a JSON Schema.
    ``context`` may hold only ``scrub.ALLOWED_CONTEXT`` (today, clinic_name, services,
    professionals, expecting, offered_slots); the rest is dropped.

``answer(clinic, question, *, entries, known_prices=(), offered_times=()) -> Answer | None``
    A short reply from the given ``KnowledgeSnippet`` entries only, with the ids it cites
    (``Answer.text``, ``Answer.cited_entry_ids``; show them to staff).

``reject_invented(answer_text, offered_times, known_prices) -> str | None``
    The text, or ``None`` when it names a time not offered or a price not in the catalogue.
    Apply it to ANY model text before it reaches a patient.

``None`` always means "the rules answer": the clinic has no language model switched on
(``llm_enabled``: an enabled provider account of kind ``llm``; off by default), every
provider of its chain failed or its breaker is open, the answer broke the schema, named an
unknown intent, was unsure, cited an entry it was not given, or invented a time or price.
Nothing is raised for a provider's failure, so no patient message is lost to one. Both
calls make network calls (a model may take seconds): never call them inside
``transaction.atomic`` or while holding a row lock. ``Extraction``/``Answer`` carry the
``provider`` and ``model`` that answered, for the conversation's record.

Providers (kind ``llm``, in the clinic's chain order): ``openai_compatible`` (OpenAI, Groq,
Ollama, vLLM by ``base_url``), ``anthropic``, ``gemini``, and ``console`` (the sandbox).
Every successful call is priced in ``ProviderUsage`` (``integrations.usage``). What leaves
for a model is scrubbed (``scrub``): no CPF, phone, e-mail or long number, and no clinical
data. docs/llm.md tells a clinic how to choose and configure a provider.
"""

from .guard import invented, reject_invented
from .schemas import INTENTS
from .scrub import ALLOWED_CONTEXT, scrub, scrub_context
from .service import Answer, Extraction, KnowledgeSnippet, answer, extract, llm_enabled

__all__ = [
    "ALLOWED_CONTEXT",
    "INTENTS",
    "Answer",
    "Extraction",
    "KnowledgeSnippet",
    "answer",
    "extract",
    "invented",
    "llm_enabled",
    "reject_invented",
    "scrub",
    "scrub_context",
]
