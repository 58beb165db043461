"""Google's Gemini API, ``generateContent``.

Wire format (ai.google.dev, "Function calling" and the ``generateContent`` reference):
``POST https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent``
with header ``x-goog-api-key`` and ``{"system_instruction": {"parts": [{"text"}]},
"contents": [{"role": "user", "parts": [{"text"}]}], "tools": [{"functionDeclarations":
[{"name", "description", "parameters"}]}], "toolConfig": {"functionCallingConfig": {"mode":
"ANY", "allowedFunctionNames": [name]}}, "generationConfig": {…}}``. The answer's
``candidates[0].content.parts[]`` holds ``{"functionCall": {"name", "args": {…}, "id"?}}``;
``usageMetadata.promptTokenCount`` / ``candidatesTokenCount`` count the tokens. Gemini's
``parameters`` take an OpenAPI subset of JSON Schema: keys it rejects
(``additionalProperties``, ``$schema``) are left out of what is sent; our own validation
still applies the full schema to the answer.
"""

from __future__ import annotations

from urllib.parse import quote

from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import HealthResult
from .base import LlmProvider, LlmRequest, LlmResult, as_int, parse_arguments

NAME = "gemini"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta"
_UNSUPPORTED = {"additionalProperties", "$schema", "$id", "title", "default"}


def gemini_schema(schema):
    """``schema`` without the keywords Gemini's function declarations refuse."""
    if isinstance(schema, dict):
        return {k: gemini_schema(v) for k, v in schema.items() if k not in _UNSUPPORTED}
    if isinstance(schema, list):
        return [gemini_schema(v) for v in schema]
    return schema


@registry.register
class GeminiLlm(LlmProvider):
    name = NAME
    label = _("Google Gemini (generateContent)")
    credentials_schema = {"api_key": _("API key (empty: CUIDAR_LLM_GEMINI_API_KEY).")}
    settings_schema = {
        "model": _("Model name, e.g. gemini-2.0-flash."),
        "base_url": _("API base URL, default https://generativelanguage.googleapis.com/v1beta."),
        "price_in_per_million": _("R$ per 1M input tokens (cost report)."),
        "price_out_per_million": _("R$ per 1M output tokens (cost report)."),
    }

    def _base_url(self) -> str:
        return str(self.settings.get("base_url") or GEMINI_URL).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key()}

    def complete(self, request: LlmRequest) -> LlmResult:
        self._require()
        body = {
            "system_instruction": {"parts": [{"text": request.system}]},
            "contents": [{"role": "user", "parts": [{"text": request.user}]}],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": request.tool.name,
                            "description": request.tool.description,
                            "parameters": gemini_schema(request.tool.schema),
                        }
                    ]
                }
            ],
            "toolConfig": {
                "functionCallingConfig": {
                    "mode": "ANY",
                    "allowedFunctionNames": [request.tool.name],
                }
            },
            "generationConfig": {
                "temperature": request.temperature,
                "maxOutputTokens": request.max_tokens,
            },
        }
        url = f"{self._base_url()}/models/{quote(self.model, safe='')}:generateContent"
        data, latency = self._post(url, json_body=body, headers=self._headers())
        data = data if isinstance(data, dict) else {}
        candidates = data.get("candidates") or [{}]
        parts = ((candidates[0] or {}).get("content") or {}).get("parts") or []
        arguments = None
        for part in parts:
            call = part.get("functionCall") if isinstance(part, dict) else None
            if isinstance(call, dict) and call.get("name") == request.tool.name:
                arguments = parse_arguments(call.get("args"))
                break
        usage = data.get("usageMetadata") or {}
        return LlmResult(
            arguments=arguments,
            model=str(data.get("modelVersion") or self.model),
            tokens_in=as_int(usage.get("promptTokenCount")),
            tokens_out=as_int(usage.get("candidatesTokenCount")),
            latency_ms=latency,
            raw=data,
        )

    def health(self) -> HealthResult:
        return self.health_probe(
            f"{self._base_url()}/models/{quote(self.model or 'x', safe='')}",
            missing=[] if self.api_key() else ["api_key"],
            headers=self._headers(),
            judge=lambda data: (isinstance(data, dict) and "name" in data, ""),
        )
