"""Financial reports: the queries (selectors, aggregated in the database), the tables they
make, their CSV and XLSX files, and reading the money and settlement files people upload.

Revenue is cash received: payments paid (or later refunded) whose ``paid_at`` falls in the
period, counted in the clinic's time zone, less what was given back of each of them. A
refund is subtracted from the payment it returns, on the day that payment was paid, so
every breakdown (by professional, service, method, day) adds up to the same total.

Modules: ``queries`` (periods, revenue, receivables), ``tables`` (what the page shows),
``renderers`` (CSV and XLSX files), ``parsing`` (amounts and settlement files uploaded).
"""

from .parsing import (
    MAX_SETTLEMENT_LINES,
    SettlementFileError,
    SettlementLine,
    amount_parse,
    decimal_places,
    settlement_parse,
)
from .queries import (
    OPEN,
    RECEIVED,
    ZERO,
    Period,
    ReceivablesSummary,
    RevenueRow,
    clinic_today,
    clinic_zone,
    period_this_month,
    receivables_open,
    receivables_summary,
    revenue_by_day,
    revenue_by_method,
    revenue_by_professional,
    revenue_by_service,
    revenue_total,
)
from .renderers import table_csv, table_xlsx
from .tables import (
    REVENUE_TABLES,
    TABLES,
    Column,
    Table,
    display_value,
    receivables_table,
    revenue_table,
)

__all__ = [
    "MAX_SETTLEMENT_LINES",
    "OPEN",
    "RECEIVED",
    "REVENUE_TABLES",
    "TABLES",
    "ZERO",
    "Column",
    "Period",
    "ReceivablesSummary",
    "RevenueRow",
    "SettlementFileError",
    "SettlementLine",
    "Table",
    "amount_parse",
    "clinic_today",
    "clinic_zone",
    "decimal_places",
    "display_value",
    "period_this_month",
    "receivables_open",
    "receivables_summary",
    "receivables_table",
    "revenue_by_day",
    "revenue_by_method",
    "revenue_by_professional",
    "revenue_by_service",
    "revenue_table",
    "revenue_total",
    "settlement_parse",
    "table_csv",
    "table_xlsx",
]
