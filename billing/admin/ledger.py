"""The ledger in the admin (managers): expenses added by hand, income from payments (read-
only), the financial reports with their CSV/XLSX files, and reconciling a gateway's
settlement file against the payments it collected."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.accounts.sudo import reauth_required
from clinic.admin.base import ClinicScopedAdmin
from clinic.audit import audit_staff
from clinic.kernel.tenancy import current_clinic
from clinic.kernel.timezones import clinic_today
from clinic.models import AuditEntry

from .. import reports, selectors, services
from ..choices import TransactionCategory, TransactionKind
from ..models import FinancialTransaction
from ..money import brl
from ..selectors import Outcome
from .common import (
    DateInput,
    MoneyField,
    admin_url,
    clinic_or_redirect,
    page_context,
    status_badge,
)

C = TransactionCategory
#: Who may see the financial reports. A dedicated permission would need a model change
#: (see the report of this work); until then, seeing the ledger is what reports need.
REPORTS_PERMISSION = "billing.view_financialtransaction"
RECONCILE_PERMISSION = "billing.change_financialtransaction"
#: Income, package sales and refunds come from payments; people add the other expenses.
EXPENSE_CATEGORIES = [
    (c.value, c.label) for c in C if c not in (C.APPOINTMENTS, C.PACKAGES, C.REFUNDS)
]
RECEIVABLES_SHOWN = 200
UNRECONCILED_SHOWN = 200
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_PERIOD_DAYS = 2 * 366


# --- The ledger -----------------------------------------------------------------------------
class ExpenseForm(forms.ModelForm):
    category = forms.ChoiceField(label=_("category"), choices=EXPENSE_CATEGORIES)
    amount = MoneyField(label=_("amount (R$)"))

    class Meta:
        model = FinancialTransaction
        fields = (
            "clinic",
            "category",
            "description",
            "amount",
            "cost_center",
            "professional",
            "competence_date",
            "payment_date",
        )
        widgets = {"competence_date": DateInput, "payment_date": DateInput}


class CompetenceMonthFilter(admin.SimpleListFilter):
    title = _("competence month")
    parameter_name = "competence"

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).dates("competence_date", "month", order="DESC")
        return [(m.strftime("%Y-%m"), m.strftime("%m/%Y")) for m in months[:36]]

    def queryset(self, request, queryset):
        value = self.value() or ""
        year, _sep, month = value.partition("-")
        if year.isdigit() and month.isdigit():
            return queryset.filter(
                competence_date__year=int(year), competence_date__month=int(month)
            )
        return queryset


def _from_payment(obj) -> bool:
    return obj is not None and (obj.kind == TransactionKind.INCOME or obj.payment_id is not None)


@admin.register(FinancialTransaction)
class FinancialTransactionAdmin(ClinicScopedAdmin):
    """The clinic's ledger. Managers add expenses; lines that come from payments (income,
    refunds) are read-only. Also home of the reports and reconciliation pages."""

    change_list_template = "billing/admin/change_list.html"
    form = ExpenseForm
    list_display = (
        "competence_date",
        "kind_display",
        "category",
        "description",
        "amount_display",
        "payment_date",
        "cost_center",
        "reconciled",
        "payment_link",
    )
    list_display_links = ("competence_date", "description")
    list_filter = ("kind", "category", "cost_center", CompetenceMonthFilter, "reconciled")
    list_select_related = ("clinic",)
    list_per_page = 100
    search_fields = ("description", "cost_center")
    date_hierarchy = "competence_date"
    actions = ("mark_reconciled",)
    fieldsets = (
        (None, {"fields": ("clinic", "category", "description", "amount", "cost_center")}),
        (_("Dates"), {"fields": ("competence_date", "payment_date")}),
        (_("Linked to"), {"fields": ("professional",)}),
    )
    readonly_fieldsets = (
        (
            None,
            {
                "fields": (
                    "clinic",
                    "kind_display",
                    "category",
                    "description",
                    "amount_display",
                    "cost_center",
                )
            },
        ),
        (_("Dates"), {"fields": ("competence_date", "payment_date", "reconciled")}),
        (_("Linked to"), {"fields": ("payment_link", "professional", "service")}),
        (_("System"), {"fields": ("created_by", "created_at")}),
    )

    @admin.display(description=_("kind"), ordering="kind")
    def kind_display(self, obj):
        return status_badge(obj.kind, obj.get_kind_display())

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        sign = "-" if obj.kind == TransactionKind.EXPENSE else ""
        return format_html(
            '<span class="billing-amount-{}">{}{}</span>', obj.kind, sign, brl(obj.amount)
        )

    @admin.display(description=_("payment"))
    def payment_link(self, obj):
        if not obj.payment_id:
            return "—"
        url = admin_url(self, "billing_payment_change", obj.payment_id)
        return format_html('<a href="{}">{}</a>', url, gettext("Open"))

    # --- Permissions: lines from payments are the services' -------------------------------
    def has_change_permission(self, request, obj=None):
        if _from_payment(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if _from_payment(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would reach lines from payments too
        return actions

    def get_fieldsets(self, request, obj=None):
        if _from_payment(obj):
            fieldsets = self.readonly_fieldsets
            if self._clinic_is_implicit(request):
                fieldsets = [
                    (name, {**o, "fields": [f for f in o["fields"] if f != "clinic"]})
                    for name, o in fieldsets
                ]
            return fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if _from_payment(obj):
            return [f for _name, o in self.readonly_fieldsets for f in o["fields"]]
        return super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        services.ledger_expense_save(expense=obj, by=request.user)

    @admin.action(description=_("Mark as reconciled"), permissions=["change"])
    def mark_reconciled(self, request, queryset):
        count = services.ledger_mark_reconciled(
            clinic=current_clinic(request), transaction_ids=queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            gettext("%(count)d ledger line(s) marked as reconciled.") % {"count": count},
            messages.SUCCESS,
        )

    # --- Pages ------------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reports/", view(self.reports_view), name="billing_reports"),
            path(
                "reports/<slug:name>/<slug:fmt>/",
                view(reauth_required(self.report_export_view)),
                name="billing_reports_export",
            ),
            path("reconciliation/", view(self.reconciliation_view), name="billing_reconciliation"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        links = []
        if request.user.has_perm(REPORTS_PERMISSION):
            links.append(
                {"url": admin_url(self, "billing_reports"), "label": _("Financial reports")}
            )
        if request.user.has_perm(RECONCILE_PERMISSION):
            links.append(
                {"url": admin_url(self, "billing_reconciliation"), "label": _("Reconciliation")}
            )
        return super().changelist_view(request, {"billing_links": links, **(extra_context or {})})

    def _period(self, request, clinic):
        default = reports.period_this_month(clinic)
        data = request.GET if "date_from" in request.GET or "date_to" in request.GET else None
        form = ReportPeriodForm(data, initial={"date_from": default.first, "date_to": default.last})
        if data is not None and form.is_valid():
            period = reports.Period(
                form.cleaned_data["date_from"], form.cleaned_data["date_to"], default.zone
            )
            return form, period
        return form, (default if data is None else None)

    def reports_view(self, request):
        """Revenue of a period by professional, service, method and day, and what is still
        owed; each as CSV and XLSX."""
        if not request.user.has_perm(REPORTS_PERMISSION):
            raise PermissionDenied
        clinic, redirect = clinic_or_redirect(self, request)
        if redirect:
            return redirect
        form, period = self._period(request, clinic)
        context = page_context(self, request, title=gettext("Financial reports"), form=form)
        if period is not None:
            query = urlencode(
                {"date_from": period.first.isoformat(), "date_to": period.last.isoformat()}
            )
            total = reports.revenue_total(clinic=clinic, period=period)
            tables = [
                reports.revenue_table(name, clinic=clinic, period=period, total=total)
                for name in reports.REVENUE_TABLES
            ]
            today = clinic_today(clinic)
            summary = reports.receivables_summary(clinic=clinic, today=today)
            receivables = reports.receivables_table(
                clinic=clinic,
                today=today,
                limit=RECEIVABLES_SHOWN,
                summary=summary,
                link=lambda p: admin_url(self, "billing_payment_change", p.pk),
            )
            context.update(
                period=period,
                total={
                    "count": total.count,
                    "gross": brl(total.gross),
                    "refunded": brl(total.refunded),
                    "net": brl(total.net),
                },
                receivables_summary={
                    "count": summary.count,
                    "total": brl(summary.total),
                    "overdue_count": summary.overdue_count,
                    "overdue_total": brl(summary.overdue_total),
                },
                sections=[
                    {
                        "table": table,
                        "csv": self._export_url(table.name, "csv", query),
                        "xlsx": self._export_url(table.name, "xlsx", query),
                    }
                    for table in [*tables, receivables]
                ],
            )
        return TemplateResponse(request, "billing/admin/reports.html", context)

    def _export_url(self, name: str, fmt: str, query: str) -> str:
        return f"{admin_url(self, 'billing_reports_export', name, fmt)}?{query}"

    def report_export_view(self, request, name, fmt):
        if not request.user.has_perm(REPORTS_PERMISSION):
            raise PermissionDenied
        if name not in reports.TABLES or fmt not in ("csv", "xlsx"):
            raise Http404
        clinic, redirect = clinic_or_redirect(self, request)
        if redirect:
            return redirect
        _form, period = self._period(request, clinic)
        if period is None:  # a bad period: the page says why
            return HttpResponseRedirect(
                f"{admin_url(self, 'billing_reports')}?{request.GET.urlencode()}"
            )
        if name == "receivables":
            table = reports.receivables_table(clinic=clinic, today=clinic_today(clinic))
            filename = f"receivables-{clinic_today(clinic):%Y%m%d}"
        else:
            table = reports.revenue_table(name, clinic=clinic, period=period)
            filename = f"revenue-{name}-{period.first:%Y%m%d}-{period.last:%Y%m%d}"
        if fmt == "csv":
            response = HttpResponse(
                reports.table_csv(table), content_type="text/csv; charset=utf-8"
            )
        else:
            response = HttpResponse(
                reports.table_xlsx(table),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
        # A report lists patients (receivables) or the clinic's money: downloads are traced.
        audit_staff(
            request=request,
            clinic=clinic,
            action=AuditEntry.Action.EXPORT,
            details={"report": name, "format": fmt, "file": f"{filename}.{fmt}"},
        )
        return response

    def reconciliation_view(self, request):
        """Upload a gateway's settlement file: lines that match a paid payment (same gateway
        id and amount) reconcile its income line; every other line is listed for a person.
        Also lists the gateway payments no settlement has confirmed yet."""
        if not request.user.has_perm(RECONCILE_PERMISSION):
            raise PermissionDenied
        clinic, redirect = clinic_or_redirect(self, request)
        if redirect:
            return redirect
        posted = request.method == "POST"
        form = SettlementUploadForm(
            request.POST if posted else None, request.FILES if posted else None
        )
        result = None
        if posted and form.is_valid():
            matches = selectors.settlement_match(clinic=clinic, lines=form.lines)
            ids = [m.transaction_id for m in matches if m.matched]
            marked = services.ledger_mark_reconciled(clinic=clinic, transaction_ids=ids)
            review = [
                {
                    "match": m,
                    "why": _outcome_text(m),
                    "amount": brl(m.line.amount) if m.line.amount is not None else "—",
                    "url": self._payment_url(m.payment),
                }
                for m in matches
                if not m.matched
            ]
            result = {"lines": len(matches), "reconciled": marked, "review": review}
        unreconciled = selectors.payments_unreconciled(clinic=clinic)
        context = page_context(
            self,
            request,
            title=gettext("Reconciliation"),
            form=form,
            result=result,
            unreconciled=[
                {
                    "payment": p,
                    "amount": brl(p.amount),
                    "url": self._payment_url(p),
                }
                for p in unreconciled[:UNRECONCILED_SHOWN]
            ],
            unreconciled_count=unreconciled.count(),
            unreconciled_shown=UNRECONCILED_SHOWN,
        )
        return TemplateResponse(request, "billing/admin/reconciliation.html", context)

    def _payment_url(self, payment) -> str | None:
        return admin_url(self, "billing_payment_change", payment.pk) if payment else None


class ReportPeriodForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=DateInput)
    date_to = forms.DateField(label=_("To"), widget=DateInput)

    def clean(self):
        data = super().clean()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last:
            if first > last:
                raise ValidationError(gettext("The period ends before it starts."))
            if last - first > timedelta(days=MAX_PERIOD_DAYS):
                raise ValidationError(gettext("Choose a period of at most two years."))
        return data


class SettlementUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Settlement file (CSV)"),
        help_text=_(
            "Columns: the gateway id (id or gateway_payment_id), the amount (value, amount or "
            "valor) and the date (date or data); separated by ; or ,."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = []

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(gettext("The file is too large (at most 2 MB)."))
        try:
            self.lines = reports.settlement_parse(upload.read())
        except reports.SettlementFileError as exc:
            raise ValidationError(str(exc)) from None
        return upload


def _outcome_text(match) -> str:
    line, payment = match.line, match.payment
    if match.outcome == Outcome.UNREADABLE:
        return line.error
    if match.outcome == Outcome.DUPLICATE:
        return gettext("This gateway id is listed twice in the file.")
    if match.outcome == Outcome.UNKNOWN:
        return gettext("No payment of this clinic has this gateway id.")
    if match.outcome == Outcome.NOT_PAID:
        return gettext("The payment is not paid in Cuidar (%(status)s).") % {
            "status": payment.get_status_display().lower()
        }
    if match.outcome == Outcome.MISMATCH:
        return gettext("Amounts differ: %(file)s in the file, %(ours)s in Cuidar.") % {
            "file": brl(line.amount),
            "ours": brl(payment.amount),
        }
    if match.outcome == Outcome.ALREADY:
        return gettext("Already reconciled.")
    if match.outcome == Outcome.NO_LEDGER:
        return gettext("The payment has no income line in the ledger.")
    return ""
