"""Service invoice (NFS-e) providers: ``FiscalProvider`` adapters of the ``fiscal`` kind.

- ``focusnfe``: Focus NFe, municipal NFS-e (``/v2/nfse``) or NFS-e Nacional (``/v2/nfsen``),
  with webhooks authenticated by a header chosen when the hook is registered.
- ``nuvemfiscal``: Nuvem Fiscal (``POST /nfse/dps``), OAuth2 client credentials; no webhooks
  (polled).
- ``enotas``: eNotas Gateway (``/v1/empresas/{id}/nfes``), webhooks authenticated by the
  account's URL token and, when configured, a shared secret.

All three are keyed on our own reference (``InvoiceRequest.reference``: Focus ``ref``, Nuvem
Fiscal ``referencia``, eNotas ``idExterno``), so issuing the same reference again answers the
invoice already there instead of creating a second one; an invoice the city refused may be
sent again under the same reference once corrected. Amounts go out with two decimals and the
ISS rate as a percentage (``2`` for 2 %; a fraction such as ``0.02`` is read as 2 %; zero or
none means the account's default). ``InvoiceRequest.extra["address"]`` (the customer's
address in neutral names, see ``ADDRESS_KEYS``) is mapped to each provider's fields; any
other ``extra`` key is in the provider's own names and is merged into the request body.

The helpers below are shared by the three adapters.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from ..base import PermanentProviderError

#: Length of a cancellation's reason: Focus NFe's documented rule, and the national
#: layout's ``xMotivo`` (cancellation event of the NFS-e Nacional).
JUSTIFICATION_MIN, JUSTIFICATION_MAX = 15, 255


def money(amount: Decimal) -> float:
    """Reais with two decimals, as a JSON number (``Decimal("150")`` → ``150.0``)."""
    return float(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def percent(value: Any, *, provider: str) -> float | None:
    """An ISS rate as a percentage (``2`` for 2 %), up to four decimals. ISS is 2–5 % by
    law (LC 116/2003, arts. 8 and 8-A), so a value below 1 is a fraction (``0.02``) and is
    read as 2 %. ``None`` when no rate is given (empty or zero)."""
    if value is None or str(value).strip() == "":
        return None
    try:
        rate = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise PermanentProviderError(
            f"{provider}: the ISS rate {value!r} is not a number", provider=provider
        ) from None
    if not rate.is_finite():
        raise PermanentProviderError(
            f"{provider}: the ISS rate {value!r} is not a number", provider=provider
        )
    if rate == 0:
        return None  # no ISS is 0 %: a zero means "not set", and the account's default applies
    if 0 < rate < 1:
        rate *= 100
    return float(rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def iss_rate(invoice_rate: Any, default: Any, *, provider: str) -> float | None:
    """The invoice's ISS rate, else the account's default (both through :func:`percent`)."""
    rate = percent(invoice_rate, provider=provider)
    return rate if rate is not None else percent(default, provider=provider)


def check_justification(justification: str, *, provider: str) -> str:
    """The cancellation reason, whitespace collapsed; ``PermanentProviderError`` (with a
    message for the person who typed it) unless it has 15 to 255 characters. Checked before
    any call, by every fiscal adapter alike."""
    text = " ".join(str(justification or "").split())
    if not JUSTIFICATION_MIN <= len(text) <= JUSTIFICATION_MAX:
        raise PermanentProviderError(
            gettext(
                "The cancellation reason must have between %(min)d and %(max)d characters "
                "(it has %(count)d)."
            )
            % {"min": JUSTIFICATION_MIN, "max": JUSTIFICATION_MAX, "count": len(text)},
            provider=provider,
        )
    return text


def digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value or ""))


def national_phone(phone: str) -> str:
    """Area code and number (11 digits at most), without Brazil's country code."""
    number = digits(phone)
    if len(number) > 11 and number.startswith("55"):
        number = number[2:]
    return number


def flag(value: Any) -> bool:
    """A yes/no account setting, typed as JSON ``true`` or as text (``"true"``, ``"sim"``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "sim", "on")
    return bool(value)


def now_iso() -> str:
    """Now, in the clinic's time zone, as ``2026-05-04T10:00:00-03:00``."""
    return timezone.localtime().isoformat(timespec="seconds")


def merge(body: dict, extra: dict | None) -> dict:
    """``InvoiceRequest.extra`` (in the provider's own field names, e.g. the customer's
    address) merged into a request body, nested objects key by key."""
    merged = dict(body)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def error_messages(errors: Any) -> list[str]:
    """A provider's list of errors (``[{"codigo", "mensagem"|"descricao", "correcao"}]`` or
    plain strings) as sentences a clinic manager can read: the message, then the correction
    where one is given, then the code in parentheses."""
    messages = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            if error:
                messages.append(str(error).strip())
            continue
        text = str(
            error.get("mensagem") or error.get("descricao") or error.get("message") or ""
        ).strip()
        correction = str(error.get("correcao") or "").strip()
        code = str(error.get("codigo") or error.get("code") or "").strip()
        if correction:
            text = f"{text} Correção: {correction}".strip()
        if code:
            text = f"{text} ({code})" if text else code
        if text:
            messages.append(text)
    return messages


#: ``InvoiceRequest.extra["address"]``: the customer's address in neutral names (billing
#: sends it so), which each adapter maps to its provider's fields.
ADDRESS_KEYS = (
    "street",
    "number",
    "complement",
    "district",
    "city",
    "city_code",  # IBGE code of the city, where known
    "state",
    "postal_code",
)


def customer_address(extra: dict | None) -> dict[str, str]:
    """The non-empty neutral address fields of ``extra["address"]`` (postal code and IBGE
    code as digits), or ``{}``."""
    address = (extra or {}).get("address")
    if not isinstance(address, dict):
        return {}
    values = {key: str(address.get(key) or "").strip() for key in ADDRESS_KEYS}
    values["postal_code"] = digits(values["postal_code"])
    values["city_code"] = digits(values["city_code"])
    values["state"] = values["state"].upper()
    return {key: value for key, value in values.items() if value}


def provider_extra(extra: dict | None) -> dict:
    """``extra`` without the neutral keys: what is left is in the provider's own names and
    is merged into the request body as it is."""
    return {key: value for key, value in (extra or {}).items() if key != "address"}
