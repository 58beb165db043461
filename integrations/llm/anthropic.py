"""Anthropic's Messages API.

Wire format (Anthropic platform docs, "Messages" and "Tool use"): ``POST
https://api.anthropic.com/v1/messages`` with headers ``x-api-key`` and
``anthropic-version: 2023-06-01`` and ``{"model", "max_tokens", "system", "messages":
[{"role": "user", "content"}], "tools": [{"name", "description", "input_schema"}],
"tool_choice": {"type": "tool", "name"}}``. The answer has ``stop_reason: "tool_use"`` and a
content block ``{"type": "tool_use", "id", "name", "input": {…}}``; ``usage.input_tokens`` /
``output_tokens`` count the tokens. Errors: ``{"type": "error", "error": {"type",
"message"}}`` with 4xx, 429 (rate limit) or 529 (overloaded, transient like a 5xx).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import HealthResult
from .base import LlmProvider, LlmRequest, LlmResult, as_int, parse_arguments

NAME = "anthropic"
ANTHROPIC_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"


@registry.register
class AnthropicLlm(LlmProvider):
    name = NAME
    label = _("Anthropic Messages (Claude)")
    credentials_schema = {"api_key": _("API key (empty: CUIDAR_LLM_ANTHROPIC_API_KEY).")}
    settings_schema = {
        "model": _("Model name, e.g. claude-3-5-haiku-latest."),
        "base_url": _("API base URL, default https://api.anthropic.com/v1."),
        "price_in_per_million": _("R$ per 1M input tokens (cost report)."),
        "price_out_per_million": _("R$ per 1M output tokens (cost report)."),
    }

    def _base_url(self) -> str:
        return str(self.settings.get("base_url") or ANTHROPIC_URL).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key(), "anthropic-version": API_VERSION}

    def complete(self, request: LlmRequest) -> LlmResult:
        self._require()
        body = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "tools": [
                {
                    "name": request.tool.name,
                    "description": request.tool.description,
                    "input_schema": request.tool.schema,
                }
            ],
            "tool_choice": {"type": "tool", "name": request.tool.name},
        }
        data, latency = self._post(
            f"{self._base_url()}/messages", json_body=body, headers=self._headers()
        )
        data = data if isinstance(data, dict) else {}
        arguments = None
        for block in data.get("content") or []:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and block.get("name") == request.tool.name
            ):
                arguments = parse_arguments(block.get("input"))
                break
        usage = data.get("usage") or {}
        return LlmResult(
            arguments=arguments,
            model=str(data.get("model") or ""),
            tokens_in=as_int(usage.get("input_tokens")),
            tokens_out=as_int(usage.get("output_tokens")),
            latency_ms=latency,
            raw=data,
        )

    def health(self) -> HealthResult:
        return self.health_probe(
            f"{self._base_url()}/models",
            missing=[] if self.api_key() else ["api_key"],
            headers=self._headers(),
            judge=lambda data: (isinstance(data, dict) and "data" in data, ""),
        )
