"""Reading what people upload: amounts typed in Brazilian or international notation, and
the gateways' settlement files for reconciliation."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

# --- Reading amounts ------------------------------------------------------------------------
_AMOUNT_CHARS = re.compile(r"^-?[\d.,]+$")
_GROUPED = {".": re.compile(r"^\d{1,3}(\.\d{3})+$"), ",": re.compile(r"^\d{1,3}(,\d{3})+$")}


def amount_parse(text: str) -> Decimal:
    """An amount typed or exported the Brazilian way or the English way: ``150,50``,
    ``1.234,56``, ``R$ 1.234,56``, ``150.50``, ``1,234.56``. A lone dot followed by exactly
    three digits is a thousands separator (``1.500`` is mil e quinhentos), as pt-BR writes
    it; otherwise a lone separator is the decimal one. The value is returned exactly (no
    rounding): callers decide how many decimal places they accept. ``ValueError`` when it
    is not an amount."""
    cleaned = re.sub(r"[\s\u00a0]", "", str(text or "")).replace("R$", "")
    if not cleaned or not _AMOUNT_CHARS.match(cleaned):
        raise ValueError(text)
    negative = cleaned.startswith("-")
    cleaned = cleaned.lstrip("-")
    decimal_sep = thousands = None
    if "," in cleaned and "." in cleaned:
        decimal_sep = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
    elif "," in cleaned:
        if cleaned.count(",") > 1:
            thousands = ","
        else:
            decimal_sep = ","
    elif "." in cleaned:
        if cleaned.count(".") > 1 or _GROUPED["."].match(cleaned):
            thousands = "."
        else:
            decimal_sep = "."
    units, _sep, cents = cleaned.partition(decimal_sep) if decimal_sep else (cleaned, "", "")
    if thousands and thousands in units:
        if not _GROUPED[thousands].match(units):
            raise ValueError(text)
        units = units.replace(thousands, "")
    if not units.isdigit() or (decimal_sep and not cents.isdigit()):
        raise ValueError(text)
    try:
        value = Decimal(f"{units}.{cents}" if cents else units)
    except InvalidOperation:
        raise ValueError(text) from None
    return -value if negative else value


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# --- Settlement files (reconciliation) ------------------------------------------------------
MAX_SETTLEMENT_LINES = 5000
_ID_HEADERS = {"id", "gateway_payment_id", "gateway_id", "payment_id"}
_AMOUNT_HEADERS = {"value", "amount", "valor"}
_DATE_HEADERS = {"date", "data", "payment_date", "data_pagamento"}
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y")


class SettlementFileError(ValueError):
    """The file as a whole cannot be read; the message says why (for the user)."""


@dataclass(frozen=True)
class SettlementLine:
    """One line of a gateway's settlement file; ``error`` says why it cannot be used."""

    number: int
    gateway_id: str
    amount: Decimal | None
    paid_on: date | None
    error: str = ""


def _header(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[\s\-]+", "_", plain.strip().strip("\ufeff").strip().lower())


def _date_parse(text: str) -> date:
    text = text.strip()
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    head = text.split(" ", 1)[0]
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(head, pattern).date()
        except ValueError:
            pass
    return datetime.fromisoformat(text).date()  # 2026-03-02T10:00:00Z and friends


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="strict")  # what Excel saves in Portuguese


def settlement_parse(data: bytes) -> list[SettlementLine]:
    """The lines of a settlement CSV: a header row naming the gateway id (``id`` or
    ``gateway_payment_id``), the amount (``value``, ``amount`` or ``valor``) and optionally
    the date (``date`` or ``data``); ``;`` or ``,`` between columns; a decimal comma or
    point. Lines that cannot be read come back with their ``error``; a file that cannot be
    read at all raises ``SettlementFileError``."""
    try:
        text = _decode(data)
    except UnicodeDecodeError:
        raise SettlementFileError(_("The file is not a text (CSV) file.")) from None
    if "\x00" in text:
        raise SettlementFileError(_("The file is not a text (CSV) file."))
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SettlementFileError(_("The file is empty."))
    first = lines[0]
    delimiter = ";" if first.count(";") >= max(first.count(","), 1) else ","
    if "\t" in first and first.count("\t") > first.count(delimiter):
        delimiter = "\t"
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    headers = [_header(h) for h in next(reader)]
    try:
        id_col = next(i for i, h in enumerate(headers) if h in _ID_HEADERS)
        amount_col = next(i for i, h in enumerate(headers) if h in _AMOUNT_HEADERS)
    except StopIteration:
        raise SettlementFileError(
            _(
                "The first line must name the columns: the gateway id (id or "
                "gateway_payment_id) and the amount (value, amount or valor)."
            )
        ) from None
    date_col = next((i for i, h in enumerate(headers) if h in _DATE_HEADERS), None)

    parsed: list[SettlementLine] = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(parsed) >= MAX_SETTLEMENT_LINES:
            raise SettlementFileError(
                _("The file has more than %(max)d lines: split it.") % {"max": MAX_SETTLEMENT_LINES}
            )
        parsed.append(_settlement_line(number, row, id_col, amount_col, date_col))
    if not parsed:
        raise SettlementFileError(_("The file has no lines after the header."))
    return parsed


def _settlement_line(number: int, row: list[str], id_col, amount_col, date_col):
    def cell(index):
        return row[index].strip() if index is not None and index < len(row) else ""

    gateway_id, amount_text, date_text = cell(id_col), cell(amount_col), cell(date_col)
    amount = paid_on = None
    error = ""
    try:
        amount = amount_parse(amount_text)
        if amount <= 0 or decimal_places(amount) > 2:
            raise ValueError(amount_text)
    except ValueError:
        amount = None
        error = _("Amount not understood: %(value)s") % {"value": amount_text or "—"}
    if date_text:
        try:
            paid_on = _date_parse(date_text)
        except ValueError:
            error = error or _("Date not understood: %(value)s") % {"value": date_text}
    if not gateway_id:
        error = _("No gateway id on this line.")
    return SettlementLine(
        number=number, gateway_id=gateway_id[:100], amount=amount, paid_on=paid_on, error=error
    )
