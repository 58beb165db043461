"""Financial reports: the queries (selectors, aggregated in the database), the tables they
make, their CSV and XLSX files, and reading the money and settlement files people upload.

Revenue is cash received: payments paid (or later refunded) whose ``paid_at`` falls in the
period, counted in the clinic's time zone, less what was given back of each of them. A
refund is subtracted from the payment it returns, on the day that payment was paid, so
every breakdown (by professional, service, method, day) adds up to the same total.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import PaymentMethod, PaymentStatus
from .models import Payment
from .money import brl, money

P = PaymentStatus
#: Statuses of money that came in (a refunded payment was paid first).
RECEIVED = (P.PAID, P.REFUNDED)
#: Statuses of money still owed (a failed charge can still be paid).
OPEN = (P.PENDING, P.FAILED)
ZERO = Decimal("0.00")
_MONEY_OUTPUT = DecimalField(max_digits=14, decimal_places=2)


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


# --- Periods --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """Whole days ``first``…``last`` (inclusive) in the clinic's time zone."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=self.zone)


def clinic_zone(clinic) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone)


def clinic_today(clinic, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), clinic_zone(clinic))


def period_this_month(clinic, now: datetime | None = None) -> Period:
    today = clinic_today(clinic, now)
    last_day = calendar.monthrange(today.year, today.month)[1]
    return Period(today.replace(day=1), today.replace(day=last_day), clinic_zone(clinic))


# --- Revenue --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RevenueRow:
    label: str
    count: int
    gross: Decimal
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunded


def _received(clinic, period: Period):
    return Payment.objects.for_clinic(clinic).filter(
        status__in=RECEIVED, paid_at__gte=period.start, paid_at__lt=period.end
    )


def _sums() -> dict:
    return {
        "count": Count("pk"),
        "gross": Coalesce(Sum("amount"), Value(ZERO), output_field=_MONEY_OUTPUT),
        "refunded": Coalesce(Sum("refunded_amount"), Value(ZERO), output_field=_MONEY_OUTPUT),
    }


def _row(label: str, data: dict) -> RevenueRow:
    return RevenueRow(
        label=label,
        count=data["count"],
        gross=money(data["gross"]),
        refunded=money(data["refunded"]),
    )


def revenue_total(*, clinic, period: Period) -> RevenueRow:
    """Everything received in the period, in one query."""
    return _row(_("Total"), _received(clinic, period).aggregate(**_sums()))


def _grouped(queryset, *keys: str):
    # order_by(*keys) also clears Payment's default ordering, which would split the groups.
    return queryset.values(*keys).annotate(**_sums()).order_by(*keys)


def revenue_by_professional(*, clinic, period: Period) -> list[RevenueRow]:
    """By the professional of the payment's appointment (packages and payments without an
    appointment in a line of their own)."""
    keys = ("appointment__professional_id", "appointment__professional__full_name")
    rows = [
        _row(g[keys[1]] or _("No professional (packages and other payments)"), g)
        for g in _grouped(_received(clinic, period), *keys)
    ]
    return sorted(rows, key=lambda r: (-r.net, r.label))


def revenue_by_service(*, clinic, period: Period) -> list[RevenueRow]:
    """By the service of the appointment, or the package sold, or "other"."""
    keys = (
        "appointment__service_id",
        "appointment__service__name",
        "patient_package__package_id",
        "patient_package__package__name",
    )
    rows = []
    for g in _grouped(_received(clinic, period), *keys):
        if g["appointment__service_id"] is not None:
            label = g["appointment__service__name"]
        elif g["patient_package__package_id"] is not None:
            label = _("Package: %(name)s") % {"name": g["patient_package__package__name"]}
        else:
            label = _("Other payments (no appointment)")
        rows.append(_row(label, g))
    return sorted(rows, key=lambda r: (-r.net, r.label))


def revenue_by_method(*, clinic, period: Period) -> list[RevenueRow]:
    labels = dict(PaymentMethod.choices)
    rows = [
        _row(str(labels.get(g["method"], g["method"])), g)
        for g in _grouped(_received(clinic, period), "method")
    ]
    return sorted(rows, key=lambda r: (-r.net, r.label))


def revenue_by_day(*, clinic, period: Period) -> list[tuple[date, RevenueRow]]:
    """Day by day, the day the money came in the clinic's time zone (days without payments
    are left out)."""
    queryset = _received(clinic, period).annotate(day=TruncDate("paid_at", tzinfo=period.zone))
    return [(g["day"], _row("", g)) for g in _grouped(queryset, "day")]


# --- Receivables ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivablesSummary:
    count: int
    total: Decimal
    overdue_count: int
    overdue_total: Decimal


def receivables_open(*, clinic):
    """Payments still owed (pending, or a failed charge), soonest due first."""
    return (
        Payment.objects.for_clinic(clinic)
        .filter(status__in=OPEN)
        .select_related("patient")
        .order_by(F("due_date").asc(nulls_last=True), "pk")
    )


def receivables_summary(*, clinic, today: date) -> ReceivablesSummary:
    overdue = Q(due_date__lt=today)
    # What is still owed: a part may have arrived already (``Payment.amount_owed``).
    owed = ExpressionWrapper(F("amount") - F("amount_received"), output_field=_MONEY_OUTPUT)
    data = (
        Payment.objects.for_clinic(clinic)
        .filter(status__in=OPEN)
        .aggregate(
            count=Count("pk"),
            total=Coalesce(Sum(owed), Value(ZERO), output_field=_MONEY_OUTPUT),
            overdue_count=Count("pk", filter=overdue),
            overdue_total=Coalesce(
                Sum(owed, filter=overdue), Value(ZERO), output_field=_MONEY_OUTPUT
            ),
        )
    )
    return ReceivablesSummary(
        count=data["count"],
        total=money(data["total"]),
        overdue_count=data["overdue_count"],
        overdue_total=money(data["overdue_total"]),
    )


# --- Tables: what the page shows and the files export ---------------------------------------
TEXT, INT, MONEY, DATE, BOOL = "text", "int", "money", "date", "bool"


@dataclass(frozen=True)
class Column:
    label: str
    kind: str = TEXT


@dataclass
class Table:
    """A report section: columns, rows of plain values (``Decimal`` for money), and the
    total row. ``links`` (optional, one per row) point the page's first cell somewhere."""

    name: str
    title: str
    columns: list[Column]
    rows: list[list]
    total: list | None = None
    links: list[str | None] = field(default_factory=list)
    highlight: list[bool] = field(default_factory=list)
    note: str = ""

    def display_rows(self) -> list[dict]:
        """Rows formatted for the page: R$ for money, dd/mm/yyyy for dates."""
        links = self.links or [None] * len(self.rows)
        highlight = self.highlight or [False] * len(self.rows)
        return [
            {"cells": self._display(row), "link": link, "highlight": flag}
            for row, link, flag in zip(self.rows, links, highlight, strict=True)
        ]

    def display_total(self) -> list[dict] | None:
        return self._display(self.total) if self.total is not None else None

    def _display(self, row: list) -> list[dict]:
        return [
            {"text": display_value(value, column.kind), "numeric": column.kind in (INT, MONEY)}
            for value, column in zip(row, self.columns, strict=True)
        ]


def display_value(value, kind: str) -> str:
    if value is None or value == "":
        return "—" if kind != TEXT else ""
    if isinstance(value, str):  # a label, e.g. "Total" in the date column
        return value
    if kind == MONEY:
        return brl(value)
    if kind == DATE:
        return value.strftime("%d/%m/%Y")
    if kind == BOOL:
        return _("Yes") if value else _("No")
    return str(value)


def _revenue_columns(first: Column) -> list[Column]:
    return [
        first,
        Column(_("Payments"), INT),
        Column(_("Received"), MONEY),
        Column(_("Refunded"), MONEY),
        Column(_("Net"), MONEY),
    ]


def _revenue_values(row: RevenueRow) -> list:
    return [row.count, row.gross, row.refunded, row.net]


REVENUE_TABLES = ("professional", "service", "method", "day")
TABLES = (*REVENUE_TABLES, "receivables")


def revenue_table(name: str, *, clinic, period: Period, total: RevenueRow | None = None):
    """One revenue breakdown with its total row (the period's total, from its own query:
    the breakdown must add up to it)."""
    total = total or revenue_total(clinic=clinic, period=period)
    total_row = [_("Total"), *_revenue_values(total)]
    if name == "day":
        rows = revenue_by_day(clinic=clinic, period=period)
        return Table(
            name=name,
            title=_("Revenue by day"),
            columns=_revenue_columns(Column(_("Day"), DATE)),
            rows=[[day, *_revenue_values(row)] for day, row in rows],
            total=total_row,
        )
    selector, title, first = {
        "professional": (revenue_by_professional, _("Revenue by professional"), _("Professional")),
        "service": (revenue_by_service, _("Revenue by service"), _("Service")),
        "method": (revenue_by_method, _("Revenue by payment method"), _("Method")),
    }[name]
    rows = selector(clinic=clinic, period=period)
    return Table(
        name=name,
        title=title,
        columns=_revenue_columns(Column(first)),
        rows=[[row.label, *_revenue_values(row)] for row in rows],
        total=total_row,
    )


def receivables_table(
    *,
    clinic,
    today: date,
    limit: int | None = None,
    link=None,
    summary: ReceivablesSummary | None = None,
) -> Table:
    """Open receivables, soonest due first, overdue ones flagged. ``limit`` cuts the rows
    (the page); the total row always covers them all."""
    summary = summary or receivables_summary(clinic=clinic, today=today)
    payments = receivables_open(clinic=clinic)
    if limit is not None:
        payments = payments[:limit]
    statuses = dict(PaymentStatus.choices)
    rows, links, highlight = [], [], []
    for payment in payments:
        overdue = payment.due_date is not None and payment.due_date < today
        rows.append(
            [
                payment.due_date,
                payment.patient.display_name,
                payment.patient.cpf_formatted,
                payment.description,
                str(statuses.get(payment.status, payment.status)),
                payment.amount_owed,
                (today - payment.due_date).days if overdue else 0,
                overdue,
            ]
        )
        links.append(link(payment) if link else None)
        highlight.append(overdue)
    note = ""
    if limit is not None and summary.count > limit:
        note = _("Showing the first %(shown)d of %(count)d; export to see them all.") % {
            "shown": limit,
            "count": summary.count,
        }
    return Table(
        name="receivables",
        title=_("Open receivables"),
        columns=[
            Column(_("Due date"), DATE),
            Column(_("Patient")),
            Column(_("CPF")),
            Column(_("Description")),
            Column(_("Status")),
            Column(_("Amount"), MONEY),
            Column(_("Days overdue"), INT),
            Column(_("Overdue"), BOOL),
        ],
        rows=rows,
        total=[None, _("Total"), "", "", "", summary.total, None, None],
        links=links,
        highlight=highlight,
        note=note,
    )


# --- Files ----------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value) -> str:
    """Text a spreadsheet will not run as a formula (CSV/formula injection): a patient
    named "=HYPERLINK(…)" stays text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_value(value, kind: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _safe_text(value)
    if kind == MONEY:
        return f"{money(value):.2f}".replace(".", ",")  # pt-BR decimal comma, no grouping
    if kind == INT:
        return str(value)
    if kind == DATE:
        return value.strftime("%d/%m/%Y")
    if kind == BOOL:
        return _("Yes") if value else _("No")
    return _safe_text(value)


def table_csv(table: Table) -> bytes:
    """``;``-separated, decimal comma, UTF-8 with a BOM: Excel in Portuguese opens it as
    columns of numbers, accents intact."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([column.label for column in table.columns])
    for row in [*table.rows, *([table.total] if table.total is not None else [])]:
        writer.writerow(
            [
                _csv_value(value, column.kind)
                for value, column in zip(row, table.columns, strict=True)
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


def table_xlsx(table: Table) -> bytes:
    """One sheet: money as numbers with two decimals, dates as dates, a bold total."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _SHEET_TITLE_BAD.sub(" ", table.title)[:31] or "Report"
    sheet.append([column.label for column in table.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    body = [*table.rows, *([table.total] if table.total is not None else [])]
    for row in body:
        sheet.append(
            [
                _xlsx_value(value, column.kind)
                for value, column in zip(row, table.columns, strict=True)
            ]
        )
        for cell, column in zip(sheet[sheet.max_row], table.columns, strict=True):
            if column.kind == MONEY:
                cell.number_format = "#,##0.00"
            elif column.kind == DATE:
                cell.number_format = "DD/MM/YYYY"
    if table.total is not None:
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
    for index, column in enumerate(table.columns, start=1):
        width = max(
            [len(column.label), *(len(display_value(r[index - 1], column.kind)) for r in body)]
        )
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 10), 60)
    sheet.freeze_panes = "A2"
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _xlsx_value(value, kind: str):
    if value is None:
        return None
    if isinstance(value, str):
        # openpyxl stores any string starting with "=" as a formula.
        return _safe_text(value)
    if kind == MONEY:
        return money(value)  # a numeric cell (openpyxl writes Decimal as a number)
    if kind in (INT, DATE):
        return value
    if kind == BOOL:
        return _("Yes") if value else _("No")
    return _safe_text(value)


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
