"""The language-model capability: one request shape, one result shape, one interface.

Every adapter turns an :class:`LlmRequest` (a system prompt, the user's text and ONE tool
whose JSON Schema the model must fill) into its API's wire format, forces the model to call
that tool (tool calling / structured output), and hands back an :class:`LlmResult` with the
tool's arguments as parsed JSON (``None`` when the model returned none or broken JSON) and
the tokens it used. Nothing here decides what the arguments mean: ``integrations.llm.service``
validates them against the schema, and the assistant's code disposes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings

from ..base import (
    OutcomeUnknownError,
    PermanentProviderError,
    Provider,
    TransientProviderError,
    elapsed_ms,
)
from ..choices import ProviderKind


@dataclass(frozen=True)
class Tool:
    """The one function the model is asked to call, with its JSON Schema."""

    name: str
    description: str
    schema: dict


@dataclass(frozen=True)
class LlmRequest:
    system: str
    user: str
    tool: Tool
    max_tokens: int = 512
    temperature: float = 0.0


@dataclass(frozen=True)
class LlmResult:
    """What the model said: the tool's arguments (``None`` if it did not call the tool or
    sent arguments that are not a JSON object), the model that answered, tokens and time."""

    arguments: dict | None
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    raw: dict = field(default_factory=dict, compare=False, repr=False)


def parse_arguments(value: Any) -> dict | None:
    """Tool arguments as a dict: OpenAI-compatible servers send a JSON *string* (sometimes
    not valid JSON), Anthropic and Gemini an object."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return None


def as_int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


class LlmProvider(Provider):
    """Base of the language-model adapters (kind ``llm``).

    Settings (admin → provider accounts): ``model`` (required by the real adapters),
    ``base_url`` where the API lives elsewhere (Groq, Ollama, vLLM, a proxy), prices per
    1M tokens (``integrations.usage``). Credentials: ``api_key``; when it is empty the
    installation's key for the provider (``CUIDAR_LLM_API_KEYS``) is used.
    """

    kind = ProviderKind.LLM
    default_model: ClassVar[str] = ""
    #: An adapter whose API can run without a key (a local Ollama server).
    key_optional: ClassVar[bool] = False

    @property
    def model(self) -> str:
        return str(self.settings.get("model") or self.default_model)

    def api_key(self) -> str:
        own = str(self.credentials.get("api_key") or "")
        if own:
            return own
        return str((getattr(settings, "CUIDAR_LLM_API_KEYS", {}) or {}).get(self.name) or "")

    def secrets(self) -> list[str]:
        return [*super().secrets(), self.api_key()]

    def _require(self) -> None:
        missing = [] if self.model else ["model"]
        if not self.key_optional and not self.api_key():
            missing.append("api_key")
        if missing:
            raise PermanentProviderError(
                f"{self.name}: account not configured (missing {', '.join(missing)})",
                provider=self.name,
            )

    def _timeout(self) -> tuple[float, float]:
        connect = float(getattr(settings, "CUIDAR_HTTP_TIMEOUT", (3.05, 10.0))[0])
        read = float(self.settings.get("timeout") or getattr(settings, "CUIDAR_LLM_TIMEOUT", 12))
        return (connect, read)

    def _post(self, url: str, *, json_body: dict, headers: dict) -> tuple[Any, int]:
        """POST through the HTTP layer, once (the chain's next model is the retry: a patient
        is waiting). A call that timed out changed nothing anywhere, so an unknown outcome
        is a plain transient failure here and the chain moves on."""
        from ..http import response_json

        started = time.perf_counter()
        try:
            response = self.request(
                "POST",
                url,
                operation="complete",
                json=json_body,
                headers=headers,
                timeout=self._timeout(),
                retry=False,
            )
        except OutcomeUnknownError as exc:
            raise TransientProviderError(str(exc), provider=self.name) from None
        return response_json(response), elapsed_ms(started)

    def complete(self, request: LlmRequest) -> LlmResult:
        """Ask the model to fill ``request.tool``; raise ``ProviderError`` on failure."""
        raise NotImplementedError
