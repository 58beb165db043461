"""A table rendered as a CSV or XLSX file, safe to open in a spreadsheet (no formulas)."""

from __future__ import annotations

import csv
import io
import re

from django.utils.translation import gettext as _

from ..money import money
from .tables import BOOL, DATE, INT, MONEY, Table, display_value

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
