"""OpenAI Chat Completions, and every server that speaks it (Groq, a local Ollama or vLLM,
OpenRouter …) through ``base_url``.

Wire format (OpenAI API reference, "Chat Completions" and "Function calling"):
``POST {base_url}/chat/completions`` with ``Authorization: Bearer <key>`` and
``{"model", "messages": [{"role": "system"}, {"role": "user"}], "tools": [{"type":
"function", "function": {"name", "description", "parameters"}}], "tool_choice": {"type":
"function", "function": {"name"}}}``. The answer's ``choices[0].message`` carries
``tool_calls: [{"id", "type": "function", "function": {"name", "arguments": "<JSON
string>"}}]`` with ``finish_reason: "tool_calls"``; ``usage.prompt_tokens`` /
``completion_tokens`` count the tokens. "Compatible" servers sometimes send invalid JSON in
``arguments``, omit the ``id``, or answer in ``content`` instead of a tool call: broken
arguments are no arguments, and a JSON object in ``content`` is read as the arguments.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import HealthResult
from .base import LlmProvider, LlmRequest, LlmResult, as_int, parse_arguments

NAME = "openai_compatible"
OPENAI_URL = "https://api.openai.com/v1"


@registry.register
class OpenAICompatibleLlm(LlmProvider):
    name = NAME
    label = _("OpenAI-compatible Chat Completions (OpenAI, Groq, Ollama, vLLM)")
    default_model = ""
    credentials_schema = {"api_key": _("API key (empty: CUIDAR_LLM_OPENAI_API_KEY).")}
    settings_schema = {
        "model": _("Model name, e.g. gpt-4o-mini, llama-3.1-8b-instant, qwen2.5:7b."),
        "base_url": _(
            "API base URL, default https://api.openai.com/v1 (Groq: "
            "https://api.groq.com/openai/v1; Ollama: http://host:11434/v1)."
        ),
        "no_key": _("true for a local server that takes no API key."),
        "price_in_per_million": _("R$ per 1M input tokens (cost report)."),
        "price_out_per_million": _("R$ per 1M output tokens (cost report)."),
    }

    def _base_url(self) -> str:
        return str(self.settings.get("base_url") or OPENAI_URL).rstrip("/")

    @property
    def key_optional(self) -> bool:  # type: ignore[override]
        # A local Ollama/vLLM server may take no key at all.
        return self.settings.get("no_key") in (True, "true", "1", 1)

    def _headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def complete(self, request: LlmRequest) -> LlmResult:
        self._require()
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": request.tool.name,
                        "description": request.tool.description,
                        "parameters": request.tool.schema,
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": request.tool.name}},
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        data, latency = self._post(
            f"{self._base_url()}/chat/completions", json_body=body, headers=self._headers()
        )
        return _result(data, request, latency)

    def health(self) -> HealthResult:
        return self.health_probe(
            f"{self._base_url()}/models",
            headers=self._headers(),
            judge=lambda data: (isinstance(data, dict) and "data" in data, ""),
        )


def _result(data, request: LlmRequest, latency_ms: int) -> LlmResult:
    data = data if isinstance(data, dict) else {}
    choices = data.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    arguments = None
    for call in message.get("tool_calls") or []:
        function = (call or {}).get("function") or {}
        if function.get("name") == request.tool.name:
            arguments = parse_arguments(function.get("arguments"))
            break
    if arguments is None and message.get("content"):
        arguments = parse_arguments(str(message["content"]).strip())
    usage = data.get("usage") or {}
    return LlmResult(
        arguments=arguments,
        model=str(data.get("model") or ""),
        tokens_in=as_int(usage.get("prompt_tokens")),
        tokens_out=as_int(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        raw=data,
    )
