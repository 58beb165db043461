"""The report queries, aggregated in the database: periods in the clinic's time zone,
revenue (cash received, less refunds) by professional, service, method and day, and
receivables."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_today, clinic_zone

from ..choices import PaymentMethod, PaymentStatus
from ..models import Payment
from ..money import money

P = PaymentStatus
#: Statuses of money that came in (a refunded payment was paid first).
RECEIVED = (P.PAID, P.REFUNDED)
#: Statuses of money still owed (a failed charge can still be paid).
OPEN = (P.PENDING, P.FAILED)
ZERO = Decimal("0.00")
_MONEY_OUTPUT = DecimalField(max_digits=14, decimal_places=2)


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
