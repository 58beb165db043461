"""What the assistant asks a language model, and what it gets back (see the package's
docstring for the contract)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from .. import usage
from ..base import ChainFailed
from ..chains import run_chain
from ..choices import ProviderKind
from ..models import ProviderAccount
from .base import LlmRequest, LlmResult, Tool
from .guard import invented, prices_in, times_in
from .schemas import ANSWER_SCHEMA, INTENTS, extraction_schema, schema_errors
from .scrub import scrub, scrub_context

if TYPE_CHECKING:
    from django.db.models import Model

logger = logging.getLogger(__name__)

#: Below this the model is not sure enough: the rules answer.
MIN_CONFIDENCE = 0.5
#: A patient's message longer than this is cut before it leaves (a long paste is not a
#: booking request, and tokens cost).
MAX_MESSAGE_CHARS = 1000
MAX_ENTRY_CHARS = 1200

EXTRACT_SYSTEM = (
    "Você classifica mensagens de pacientes de uma clínica no WhatsApp (pt-BR, escrita "
    "informal, com erros e abreviações). Chame a ferramenta com a intenção e as entidades "
    "que a mensagem realmente contém. Datas em AAAA-MM-DD relativas a 'today'; horas em "
    "HH:MM; dd/mm é sempre dia/mês. Não invente nada: na dúvida, intent 'unknown' e "
    "confidence baixa. Nunca dê conselho médico."
)
ANSWER_SYSTEM = (
    "Você é a assistente virtual de uma clínica e responde dúvidas de pacientes em pt-BR, "
    "em no máximo três frases, usando SOMENTE as entradas da base de conhecimento dadas "
    "(cada uma com seu [#id]). Cite os ids usados. Se as entradas não respondem, "
    "answerable=false. Nunca cite horário ou preço que não esteja nas entradas; nunca dê "
    "diagnóstico, dose ou conselho clínico."
)


@dataclass(frozen=True)
class Extraction:
    """Intent and entities of one message, validated against the schema."""

    intent: str
    entities: dict = field(default_factory=dict)
    confidence: float = 0.0
    provider: str = ""
    model: str = ""


@dataclass(frozen=True)
class KnowledgeSnippet:
    """One knowledge-base entry as the model sees it (``clinic.messaging.knowledge`` makes
    these from its rows; integrations cannot import them)."""

    id: int
    title: str
    text: str


@dataclass(frozen=True)
class Answer:
    """A reply grounded in the cited knowledge entries (shown to staff)."""

    text: str
    cited_entry_ids: list[int]
    provider: str = ""
    model: str = ""


def llm_enabled(clinic: Model | int) -> bool:
    """Whether the clinic switched a language model on: it has an enabled provider account
    of kind ``llm`` (none by default; the admin's provider accounts add one)."""
    clinic_id = clinic if isinstance(clinic, int) else clinic.pk
    return ProviderAccount.objects.filter(
        clinic_id=clinic_id, kind=ProviderKind.LLM, enabled=True
    ).exists()


def _ask(clinic, request: LlmRequest, operation: str) -> tuple[LlmResult, ProviderAccount] | None:
    """Run the clinic's llm chain; ``None`` when it is off or every provider failed."""
    if not llm_enabled(clinic):
        return None
    try:
        outcome = run_chain(clinic, ProviderKind.LLM, "complete", request)
    except ChainFailed as exc:
        logger.warning("llm %s: every provider failed, the rules answer: %s", operation, exc)
        return None
    except Exception:
        # A model's answer of an unexpected shape (or a bug of an adapter) must not cost
        # the patient a reply: the rules answer, and the error is logged with its trace.
        logger.exception("llm %s: unexpected error, the rules answer", operation)
        return None
    result: LlmResult = outcome.value
    account = outcome.account
    usage.usage_record_model_call(
        account=account,
        model_name=result.model or str((account.settings or {}).get("model") or ""),
        operation=operation,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_ms=result.latency_ms,
    )
    return result, account


def _context_lines(context: dict) -> str:
    lines = []
    for key, value in sorted(context.items()):
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def extract(
    clinic: Model | int,
    text: str,
    *,
    context: dict[str, Any] | None = None,
    intents: tuple[str, ...] | list[str] = INTENTS,
) -> Extraction | None:
    """The intent and entities of a patient's ``text``, or ``None`` (LLM off, every
    provider failing, an answer that breaks the schema, an unknown intent, low confidence,
    an impossible date): then the rules answer. ``context`` keeps only
    ``scrub.ALLOWED_CONTEXT``; every string is scrubbed."""
    safe_context = scrub_context(context)
    user = (
        f"{_context_lines(safe_context)}\n\nMensagem: {scrub(text[:MAX_MESSAGE_CHARS])}"
    ).strip()
    schema = extraction_schema(intents)
    request = LlmRequest(
        system=EXTRACT_SYSTEM,
        user=user,
        tool=Tool(
            name="registrar_intencao",
            description="Registra a intenção do paciente e as entidades da mensagem.",
            schema=schema,
        ),
    )
    asked = _ask(clinic, request, "extract")
    if asked is None:
        return None
    result, account = asked
    data = result.arguments
    errors = schema_errors(data, schema) if data is not None else ["no tool call"]
    if errors:
        logger.info("llm extract via %s refused: %s", account.provider, "; ".join(errors[:3]))
        return None
    entities = dict(data.get("entities") or {})
    if "date" in entities:
        try:
            date.fromisoformat(entities["date"])
        except ValueError:
            logger.info("llm extract via %s refused: impossible date", account.provider)
            return None
    if data["intent"] == "unknown" or float(data["confidence"]) < MIN_CONFIDENCE:
        return None
    return Extraction(
        intent=data["intent"],
        entities=entities,
        confidence=float(data["confidence"]),
        provider=account.provider,
        model=result.model,
    )


def answer(
    clinic: Model | int,
    question: str,
    *,
    entries: list[KnowledgeSnippet],
    known_prices=(),
    offered_times=(),
) -> Answer | None:
    """A short answer to ``question`` from the given knowledge ``entries`` only, citing
    them; ``None`` when the LLM is off or failing, when the model cannot answer from them,
    cites an entry it was not given, or names a time or price that is neither in the cited
    entries nor in ``known_prices`` / ``offered_times`` (the model proposes, the code
    disposes)."""
    if not entries:
        return None
    sources = "\n".join(
        f"[#{e.id}] {scrub(e.title)}: {scrub(' '.join(e.text.split()))[:MAX_ENTRY_CHARS]}"
        for e in entries
    )
    request = LlmRequest(
        system=ANSWER_SYSTEM,
        user=f"Base de conhecimento:\n{sources}\n\nPergunta: {scrub(question[:MAX_MESSAGE_CHARS])}",
        tool=Tool(
            name="responder_com_base",
            description="Responde à pergunta com as entradas citadas.",
            schema=ANSWER_SCHEMA,
        ),
    )
    asked = _ask(clinic, request, "answer")
    if asked is None:
        return None
    result, account = asked
    data = result.arguments
    errors = schema_errors(data, ANSWER_SCHEMA) if data is not None else ["no tool call"]
    if errors or not data["answerable"] or not data["text"].strip():
        return None
    given = {e.id: e for e in entries}
    cited = list(dict.fromkeys(data["cited_entry_ids"]))
    if not cited or any(entry_id not in given for entry_id in cited):
        logger.info("llm answer via %s refused: cites %s", account.provider, cited)
        return None
    grounded = " ".join(f"{given[i].title} {given[i].text}" for i in cited)
    problems = invented(
        data["text"],
        offered_times=[*offered_times, *(f"{h}:{m:02d}" for h, m in times_in(grounded))],
        known_prices=[*known_prices, *prices_in(grounded)],
    )
    if problems:
        logger.info("llm answer via %s refused: invents %s", account.provider, problems)
        return None
    return Answer(
        text=data["text"].strip(),
        cited_entry_ids=cited,
        provider=account.provider,
        model=result.model,
    )
