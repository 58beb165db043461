"""The model proposes, the code disposes: a reply that names a time or a price the code did
not give it is thrown away.

:func:`invented` lists the times and prices a text names that are not in the allowed sets;
:func:`reject_invented` returns the text, or ``None`` when it invents anything. Times read:
``15h``, ``15h30``, ``15:30``, ``9 horas``, ``às 9``; prices read: ``R$ 150``,
``R$150,00``, ``R$ 1.200,50``, ``150 reais``. A time is compared by hour and minute (the
day is the dialogue's, echoed by the code itself); a price to the centavo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, time
from decimal import Decimal, InvalidOperation

_TIME = re.compile(
    r"(?<![\d/,.])(?P<h>[01]?\d|2[0-3])\s*(?:(?::|h|hs|hrs?)\s*(?P<m>[0-5]\d)?|\s+horas?)(?![\d/])",
    re.IGNORECASE,
)
_AT_HOUR = re.compile(
    r"\b(?:às|as)\s+(?P<h>[01]?\d|2[0-3])(?![\d:/h]|[,.]\d)(?!\s*(?:horas?|hs?)\b)"
)
_PRICE = re.compile(
    r"R\$\s*(?P<a>\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:,\d{1,2})?)"
    r"|(?P<b>\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:,\d{1,2})?)\s*reais\b",
    re.IGNORECASE,
)
CENT = Decimal("0.01")


def _hm(value) -> tuple[int, int] | None:
    if isinstance(value, datetime | time):
        return (value.hour, value.minute)
    match = re.fullmatch(r"\s*([01]?\d|2[0-3])\s*(?::|h)\s*([0-5]\d)?\s*", str(value))
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2) or 0))


def _money(value) -> Decimal | None:
    text = str(value).strip()
    if "," in text:  # Brazilian: 1.200,50
        text = text.replace(".", "").replace(",", ".")
    try:
        return Decimal(text).quantize(CENT)
    except (InvalidOperation, ValueError):
        return None


def times_in(text: str) -> list[tuple[int, int]]:
    found = [(int(m["h"]), int(m["m"] or 0)) for m in _TIME.finditer(text)]
    found += [(int(m["h"]), 0) for m in _AT_HOUR.finditer(text)]
    return found


def prices_in(text: str) -> list[Decimal]:
    found = []
    for match in _PRICE.finditer(text):
        value = _money(match["a"] or match["b"])
        if value is not None:
            found.append(value)
    return found


def invented(
    answer_text: str, *, offered_times: Iterable = (), known_prices: Iterable = ()
) -> list[str]:
    """The times (``"15:00"``) and prices (``"R$ 120.00"``) in ``answer_text`` that are
    neither offered nor known. ``offered_times``: datetimes, times or ``"HH:MM"``;
    ``known_prices``: Decimals, numbers or strings."""
    allowed_times = {hm for hm in (_hm(t) for t in offered_times) if hm is not None}
    allowed_prices = {p for p in (_money(p) for p in known_prices) if p is not None}
    problems = [f"{h:02d}:{m:02d}" for h, m in times_in(answer_text) if (h, m) not in allowed_times]
    problems += [f"R$ {p}" for p in prices_in(answer_text) if p not in allowed_prices]
    return problems


def reject_invented(answer_text: str, offered_times: Iterable = (), known_prices: Iterable = ()):
    """``answer_text`` if every time it names was offered and every price it names is in
    the catalogue, else ``None`` (the caller answers with the rules instead)."""
    if invented(answer_text, offered_times=offered_times, known_prices=known_prices):
        return None
    return answer_text
