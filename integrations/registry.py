"""Providers by ``(kind, name)``, loaded lazily.

Adapter modules are listed in ``PROVIDER_MODULES`` and imported on first use, so start-up
stays fast and a broken optional adapter cannot stop the system. Each module registers its
classes with ``@register``.
"""

from __future__ import annotations

import importlib
import threading

from .base import Provider

#: Modules holding adapters. Later issues add theirs (e.g. "integrations.whatsapp.evolution").
PROVIDER_MODULES = [
    "integrations.console",
    "integrations.whatsapp.evolution",
    "integrations.whatsapp.meta_cloud",
    "integrations.whatsapp.zapi",
    "integrations.sms.twilio",
    "integrations.sms.vonage",
    "integrations.email.anymail_esp",
    "integrations.payments.asaas",
    "integrations.payments.mercadopago",
    "integrations.payments.pagbank",
    "integrations.fiscal.focusnfe",
    "integrations.fiscal.nuvemfiscal",
    "integrations.fiscal.enotas",
    "integrations.llm.console",
    "integrations.llm.openai_compatible",
    "integrations.llm.anthropic",
    "integrations.llm.gemini",
    "integrations.documents.console",
    "integrations.documents.birdid",
]

_registry: dict[tuple[str, str], type[Provider]] = {}
_loaded = False
_lock = threading.Lock()


class UnknownProvider(LookupError):
    pass


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make an adapter available under ``(cls.kind, cls.name)``."""
    key = (cls.kind, cls.name)
    existing = _registry.get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"provider {key} is registered twice: {existing} and {cls}")
    _registry[key] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for module in PROVIDER_MODULES:
                importlib.import_module(module)
            _loaded = True


def get(kind: str, name: str) -> type[Provider]:
    _load()
    try:
        return _registry[(kind, name)]
    except KeyError:
        raise UnknownProvider(f"no provider {name!r} of kind {kind!r}") from None


def by_name(name: str) -> list[type[Provider]]:
    """Every kind a provider name serves (a webhook URL names the provider, not the kind)."""
    _load()
    return [cls for (kind, n), cls in sorted(_registry.items()) if n == name]


def providers(kind: str | None = None) -> list[type[Provider]]:
    _load()
    return [cls for (k, _n), cls in sorted(_registry.items()) if kind is None or k == kind]


def choices(kind: str | None = None) -> list[tuple[str, str]]:
    return [(cls.name, cls.label or cls.name) for cls in providers(kind)]
