"""Tables: what the reports page shows and the files export, built from the queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.utils.translation import gettext as _

from ..choices import PaymentStatus
from ..money import brl
from .queries import (
    Period,
    ReceivablesSummary,
    RevenueRow,
    receivables_open,
    receivables_summary,
    revenue_by_day,
    revenue_by_method,
    revenue_by_professional,
    revenue_by_service,
    revenue_total,
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
