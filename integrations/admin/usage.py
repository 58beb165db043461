"""Admin: what providers cost the clinic — language-model calls (tokens in/out, latency) and
WhatsApp/SMS messages — per month and provider, above the list of every priced call.

The summary sums the changelist's own rows (so its filters and date drill-down apply) and is
scoped to the clinic like the list.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import Avg, Count, Sum
from django.db.models.functions import TruncMonth

from ..models import ProviderUsage
from .providers import ReadOnlyAdmin

#: Months shown in the summary (newest first).
SUMMARY_MONTHS = 12


def usage_by_month(queryset) -> list[dict]:
    """The last ``SUMMARY_MONTHS`` months of ``queryset``, newest first: each a dict with
    ``month``, its ``lines`` per (kind, provider) — calls, messages, tokens in/out, mean
    latency (ms), cost (R$) — and its ``total`` cost."""
    rows = list(
        queryset.order_by()
        .annotate(month=TruncMonth("created_at"))
        .values("month", "kind", "provider")
        .annotate(
            calls=Count("id"),
            messages=Sum("messages"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            latency=Avg("latency_ms"),
            cost=Sum("cost"),
        )
        .order_by("-month", "kind", "provider")
    )
    months = list(dict.fromkeys(row["month"] for row in rows))[:SUMMARY_MONTHS]
    summary = []
    for month in months:
        lines = [dict(r, latency=round(r["latency"] or 0)) for r in rows if r["month"] == month]
        total = sum((line["cost"] or Decimal(0) for line in lines), Decimal(0))
        summary.append({"month": month, "lines": lines, "total": total})
    return summary


@admin.register(ProviderUsage)
class ProviderUsageAdmin(ReadOnlyAdmin):
    """Every priced provider call, with the monthly cost report on top."""

    change_list_template = "admin/integrations/providerusage/change_list.html"
    list_display = (
        "created_at",
        "kind",
        "provider",
        "model_name",
        "operation",
        "tokens_in",
        "tokens_out",
        "messages",
        "latency_ms",
        "cost",
    )
    list_filter = ("kind", "provider", "created_at")
    list_select_related = ("clinic",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = (
        "clinic",
        "account",
        "created_at",
        "kind",
        "provider",
        "model_name",
        "operation",
        "tokens_in",
        "tokens_out",
        "messages",
        "latency_ms",
        "cost",
    )
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["usage_summary"] = usage_by_month(context["cl"].queryset)
        return response
