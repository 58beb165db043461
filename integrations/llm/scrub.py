"""Minimal data to a language model (LGPD art. 6, III: necessity).

What leaves for a model is the patient's message and a small, fixed context. Before it
leaves, :func:`scrub` replaces what identifies a person or a document:

- CPF, written with or without dots and dash (``123.456.789-09``, ``12345678909``);
- e-mail addresses; phone numbers (``+55 11 99999-0000``, ``(11) 3333-4444``);
- any other long run of digits (a CNS/SUS card, a card or account number).

Clinical data is kept out by construction, not by guessing: :func:`scrub_context` passes
only the keys of ``ALLOWED_CONTEXT`` (no record, no diagnosis, no patient's name), and the
assistant's safety rules answer clinical questions before any model is asked (issue 24).
Dates, times and prices stay: the model needs them.
"""

from __future__ import annotations

import re
from typing import Any

CPF = "[CPF]"
EMAIL = "[e-mail]"
PHONE = "[telefone]"
NUMBER = "[número]"

_CPF = re.compile(r"(?<![\d.])\d{3}\.?\d{3}\.?\d{3}\s?[-.]?\s?\d{2}(?![\d])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\d)(?:\+?55[\s-]?)?\(?\d{2}\)?[\s-]?(?:9[\s.-]?)?\d{4}[\s.-]?\d{4}(?!\d)")
_LONG_NUMBER = re.compile(r"(?<!\d)(?:\d[\s.-]?){8,}\d(?!\d)")

#: What a model may see of the conversation besides the message itself.
ALLOWED_CONTEXT = {
    "today",  # "2026-03-10 (terça-feira)", in the clinic's time zone
    "clinic_name",
    "services",  # names of the clinic's services
    "professionals",  # professionals' display names (needed to book with one)
    "expecting",  # what the dialogue asked last ("service", "day", "slot", "confirm")
    "offered_slots",  # the numbered slots just offered, as text
}


def scrub(text: str) -> str:
    """``text`` with CPFs, e-mails, phones and long numbers replaced by placeholders."""
    text = _EMAIL.sub(EMAIL, str(text))
    text = _CPF.sub(CPF, text)
    text = _PHONE.sub(PHONE, text)
    return _LONG_NUMBER.sub(NUMBER, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value if isinstance(v, str | int | float)]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def scrub_context(context: dict | None) -> dict:
    """Only the allowed keys of ``context``, each value scrubbed (lists of plain values
    kept, anything nested dropped)."""
    return {
        key: _scrub_value(value)
        for key, value in (context or {}).items()
        if key in ALLOWED_CONTEXT and not isinstance(value, dict)
    }
