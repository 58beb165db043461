"""What providers cost: one ``ProviderUsage`` row per successful model call or message sent.

Prices are in R$ and come, first found wins, from

1. the provider account's own settings (admin → provider accounts → settings):
   ``{"price_per_message": "0.35"}`` for WhatsApp/SMS, ``{"price_in_per_million":
   "15.00", "price_out_per_million": "60.00"}`` (R$ per 1M tokens) for a language model;
2. ``settings.CUIDAR_PROVIDER_PRICES`` (env ``CUIDAR_PROVIDER_PRICES``, JSON), by kind and
   then by model name (llm) or provider name (messaging), e.g.
   ``{"llm": {"gpt-4o-mini": {"in": "0.90", "out": "3.60"}}, "whatsapp": {"meta_cloud":
   "0.40"}, "sms": {"twilio": "0.45"}}``;
3. zero (console providers, or a price nobody configured: the row still counts the
   tokens and messages, so a price added later can be applied by hand).

Recording never breaks the caller: a failed write is logged and forgotten, as the
``ExternalCall`` log does (``integrations.http._record``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError

from .choices import ProviderKind

if TYPE_CHECKING:
    from .models import ProviderAccount

logger = logging.getLogger(__name__)

#: Kinds whose sends are priced per message.
MESSAGE_KINDS = {ProviderKind.WHATSAPP.value, ProviderKind.SMS.value}
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        logger.warning("price %r is not a number: ignored", value)
        return None
    return number if number >= 0 else None


def _configured(kind: str) -> dict:
    prices = getattr(settings, "CUIDAR_PROVIDER_PRICES", {}) or {}
    found = prices.get(kind) or {}
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class TokenPrice:
    """R$ per one million tokens in (prompt) and out (completion)."""

    per_million_in: Decimal = ZERO
    per_million_out: Decimal = ZERO

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return (self.per_million_in * tokens_in + self.per_million_out * tokens_out) / MILLION


def _model_prices(account: ProviderAccount, model_name: str) -> dict:
    """The configured prices of the model that answered. APIs answer with a dated name
    (``gpt-4o-mini-2024-07-18``) where the account asked for ``gpt-4o-mini``: the exact
    name first, then the account's model, then the longest configured name it starts with."""
    prices = _configured(ProviderKind.LLM.value)
    asked = str((account.settings or {}).get("model") or "")
    for name in (model_name, asked):
        if name and isinstance(prices.get(name), dict):
            return prices[name]
    prefixes = sorted(
        (n for n in prices if model_name.startswith(n) and isinstance(prices[n], dict)),
        key=len,
        reverse=True,
    )
    return prices[prefixes[0]] if prefixes else {}


def token_price(account: ProviderAccount, model_name: str) -> TokenPrice:
    """The account's price per 1M tokens, else the configured one for the model."""
    own = account.settings or {}
    price_in = _decimal(own.get("price_in_per_million"))
    price_out = _decimal(own.get("price_out_per_million"))
    configured = _model_prices(account, model_name)
    if price_in is None:
        price_in = _decimal(configured.get("in"))
    if price_out is None:
        price_out = _decimal(configured.get("out"))
    return TokenPrice(per_million_in=price_in or ZERO, per_million_out=price_out or ZERO)


def message_price(account: ProviderAccount) -> Decimal:
    """The account's price per message, else the configured one for the provider."""
    own = _decimal((account.settings or {}).get("price_per_message"))
    if own is not None:
        return own
    return _decimal(_configured(account.kind).get(account.provider)) or ZERO


def _write(**fields) -> None:
    from .models import ProviderUsage

    try:
        ProviderUsage.objects.create(**fields)
    except DatabaseError as exc:
        logger.warning("provider usage not recorded: %s", exc.__class__.__name__)


def usage_record_model_call(
    *,
    account: ProviderAccount,
    model_name: str,
    operation: str,
    tokens_in: int,
    tokens_out: int,
    latency_ms: int,
) -> None:
    """One language-model call: its tokens, latency and cost at the account's price."""
    cost = token_price(account, model_name).cost(tokens_in, tokens_out)
    _write(
        clinic_id=account.clinic_id,
        account_id=account.pk,
        kind=ProviderKind.LLM.value,
        provider=account.provider,
        model_name=model_name[:100],
        operation=operation,
        tokens_in=max(0, int(tokens_in)),
        tokens_out=max(0, int(tokens_out)),
        latency_ms=max(0, int(latency_ms)),
        cost=cost,
    )


def usage_record_message(*, account: ProviderAccount, operation: str, latency_ms: int) -> None:
    """One WhatsApp or SMS message accepted by a provider, at its price per message."""
    _write(
        clinic_id=account.clinic_id,
        account_id=account.pk,
        kind=account.kind,
        provider=account.provider,
        operation=operation,
        messages=1,
        latency_ms=max(0, int(latency_ms)),
        cost=message_price(account),
    )
