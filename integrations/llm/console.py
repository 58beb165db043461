"""``console`` language model: the sandbox for development and demos. It calls nobody.

It answers like a model that understands a few keywords: the extraction tool gets an intent
from a small word list (``unknown`` otherwise, so the rules answer), the answer tool
repeats the first knowledge entry it was given and cites it. Each call writes a
``ConsoleRecord`` (what a real model would have received, already scrubbed) and counts
tokens as a real one would (about four characters a token), so the cost report shows rows.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.translation import gettext_lazy as _

from .. import registry
from ..console import ConsoleMixin
from .base import LlmProvider, LlmRequest, LlmResult

MODEL = "console-sandbox"
_KEYWORDS = (
    ("opt_out", ("sair", "parar de receber", "stop")),
    ("human", ("atendente", "pessoa", "humano")),
    ("cancel", ("cancelar", "desmarcar")),
    ("reschedule", ("remarcar", "trocar o horario", "mudar o horario")),
    ("book", ("marcar", "agendar", "consulta")),
    ("prices", ("preco", "quanto custa", "valor")),
    ("address_hours", ("endereco", "onde fica", "horario de funcionamento")),
    ("thanks", ("obrigad", "valeu")),
    ("greeting", ("oi", "ola", "bom dia", "boa tarde", "boa noite")),
)
_ENTRY = re.compile(r"^\[#(?P<id>\d+)\][^:]*:\s*(?P<text>.+)$", re.MULTILINE)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


@registry.register
class ConsoleLlm(ConsoleMixin, LlmProvider):
    label = _("Console language model (sandbox: calls nobody)")
    default_model = MODEL

    def complete(self, request: LlmRequest) -> LlmResult:
        if "intent" in request.tool.schema.get("properties", {}):
            arguments = self._extract(request)
        else:
            arguments = self._answer(request)
        self._record(
            "complete",
            payload={"tool": request.tool.name, "system": request.system, "user": request.user},
            response=arguments,
        )
        return LlmResult(
            arguments=arguments,
            model=MODEL,
            tokens_in=_tokens(request.system + request.user),
            tokens_out=_tokens(str(arguments)),
            latency_ms=0,
        )

    def _extract(self, request: LlmRequest) -> dict:
        message = _plain(request.user.rsplit("Mensagem:", 1)[-1])
        allowed = set(request.tool.schema["properties"]["intent"].get("enum", []))
        for intent, words in _KEYWORDS:
            if intent in allowed and any(re.search(rf"\b{w}", message) for w in words):
                return {"intent": intent, "confidence": 0.7, "entities": {}}
        return {"intent": "unknown", "confidence": 0.0, "entities": {}}

    def _answer(self, request: LlmRequest) -> dict:
        entry = _ENTRY.search(request.user)
        if entry is None:
            return {"answerable": False, "text": "", "cited_entry_ids": []}
        return {
            "answerable": True,
            "text": entry["text"].strip()[:700],
            "cited_entry_ids": [int(entry["id"])],
        }
