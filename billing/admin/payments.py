"""Payments in the admin: the list (who, how much, how, where it stands), a read-only page
per payment with its refunds and ledger lines, and the actions of the desk. The desk's own
pages (register, charge, receipt, refund) are in ``billing.admin.desk``; every change goes
through ``billing.services``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, ClinicScopedInline
from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient
from clinic.selectors import patient_search

from ..models import FinancialTransaction, Payment, PaymentDiscount, PaymentRefund
from ..money import brl
from . import desk
from .common import ViewOnlyDetailMixin, admin_url, status_badge


# --- Inlines --------------------------------------------------------------------------------
class RefundInline(ClinicScopedInline, admin.TabularInline):
    model = PaymentRefund
    extra = 0
    fields = ("created_at", "amount", "reason", "created_by")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DiscountInline(ClinicScopedInline, admin.TabularInline):
    """A voucher (or other discount) taken off the payment when it was created."""

    model = PaymentDiscount
    extra = 0
    fields = ("gross_amount", "amount", "label", "reference", "created_by")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LedgerLineInline(ClinicScopedInline, admin.TabularInline):
    """The payment's ledger lines (income, refunds); shown to who may see the ledger."""

    model = FinancialTransaction
    fk_name = "payment"
    extra = 0
    fields = ("kind", "category", "description", "amount", "competence_date", "reconciled")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = _("ledger lines")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- The admin ------------------------------------------------------------------------------
class DunningFilter(admin.SimpleListFilter):
    """Overdue charges whose reminders are exhausted: the list a person works through."""

    title = _("collection")
    parameter_name = "collection"

    def lookups(self, request, model_admin):
        return (
            ("person", _("Needs a person (reminders exhausted)")),
            ("reminding", _("Being reminded")),
        )

    def queryset(self, request, queryset):
        if self.value() == "person":
            return queryset.filter(status="pending", dunning_flagged_at__isnull=False)
        if self.value() == "reminding":
            return queryset.filter(
                status="pending", dunning_step__gt=0, dunning_flagged_at__isnull=True
            )
        return queryset


@admin.register(Payment)
class PaymentAdmin(ViewOnlyDetailMixin, ClinicScopedAdmin):
    """Payments: listed and read here; registered, charged, confirmed, cancelled and
    refunded through the desk pages and actions (``billing.services``)."""

    change_list_template = "billing/admin/change_list.html"
    change_form_template = "billing/admin/change_form.html"
    list_display = (
        "created_at",
        "patient_name",
        "amount_display",
        "method",
        "gateway",
        "status_display",
        "owed_display",
        "due_date",
        "paid_at",
        "pages",
    )
    list_display_links = ("created_at", "patient_name")
    list_filter = (
        DunningFilter,
        "divergence",
        "status",
        "method",
        "gateway",
        "due_date",
        "paid_at",
    )
    list_select_related = ("patient", "clinic")
    list_per_page = 50
    date_hierarchy = "created_at"
    search_fields = ("patient__search_name",)  # widened in get_search_results (CPF)
    search_help_text = _("Search by the patient's name or CPF.")
    inlines = (DiscountInline, RefundInline, LedgerLineInline)
    actions = ("confirm_selected", "cancel_selected", "charge_again_selected", "refund_selected")
    fieldsets = (
        (
            _("Payment"),
            {
                "fields": (
                    "clinic",
                    "patient_link",
                    "description",
                    "amount_display",
                    "received_display",
                    "owed_display",
                    "divergence",
                    "refunded_display",
                    "method",
                    "status_display",
                    "due_date",
                    "paid_at",
                    "appointment_link",
                    "patient_package",
                )
            },
        ),
        (
            _("Gateway"),
            {
                "fields": (
                    "gateway",
                    "gateway_payment_id",
                    "pix_payload_display",
                    "invoice_url",
                    "boleto_url",
                    "last_error",
                )
            },
        ),
        (
            _("Reminders"),
            {"classes": ("collapse",), "fields": ("dunning_step", "dunning_flagged_at")},
        ),
        (
            _("System"),
            {
                "classes": ("collapse",),
                "fields": ("reference", "created_by", "created_at", "updated_at"),
            },
        ),
    )
    readonly_fields = (
        "patient_link",
        "amount_display",
        "received_display",
        "owed_display",
        "divergence",
        "refunded_display",
        "status_display",
        "appointment_link",
        "pix_payload_display",
    )

    # --- Display ----------------------------------------------------------------------------
    @admin.display(description=_("patient"), ordering="patient__full_name")
    def patient_name(self, obj):
        return obj.patient.display_name

    @admin.display(description=_("patient"))
    def patient_link(self, obj):
        url = admin_url(self, "clinic_patient_change", obj.patient_id)
        cpf = obj.patient.cpf_formatted
        return format_html(
            '<a href="{}">{}</a>{}', url, obj.patient.display_name, f" — CPF {cpf}" if cpf else ""
        )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        return brl(obj.amount)

    @admin.display(description=_("received"))
    def received_display(self, obj):
        return brl(obj.amount_received) if obj.amount_received else "—"

    @admin.display(description=_("still owed"))
    def owed_display(self, obj):
        """What is left to pay, with a flag when the gateway reported another amount than
        the charge (the desk checks it: a part paid, or more than charged)."""
        owed = brl(obj.amount_owed) if obj.amount_owed else "—"
        if not obj.divergence:
            return owed
        return format_html(
            '{} <span class="billing-status billing-status-failed" title="{}">⚠ {}</span>',
            owed,
            gettext("Received: %(amount)s") % {"amount": brl(obj.amount_received)},
            obj.get_divergence_display(),
        )

    @admin.display(description=_("refunded"))
    def refunded_display(self, obj):
        return brl(obj.refunded_amount) if obj.refunded_amount else "—"

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("appointment"))
    def appointment_link(self, obj):
        if not obj.appointment_id:
            return "—"
        url = admin_url(self, "scheduling_appointment_change", obj.appointment_id)
        return format_html('<a href="{}">{}</a>', url, gettext("Open the appointment"))

    @admin.display(description=_("PIX copy-and-paste code"))
    def pix_payload_display(self, obj):
        return format_html("<code>{}</code>", obj.pix_payload) if obj.pix_payload else "—"

    @admin.display(description=_("pages"))
    def pages(self, obj):
        links = []
        if desk.has_charge_page(obj):
            links.append((admin_url(self, "billing_payment_charge", obj.pk), gettext("Charge")))
        if desk.has_receipt(obj):
            links.append((admin_url(self, "billing_payment_receipt", obj.pk), gettext("Receipt")))
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "—"

    # --- Search -----------------------------------------------------------------------------
    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        patients = patient_search(
            clinic=current_clinic(request),
            term=search_term,
            queryset=Patient.objects.filter(pk__in=queryset.values("patient_id")),
        )
        return queryset.filter(patient__in=patients.values("pk")), False

    # --- Pages ------------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("register/", view(self.register_view), name="billing_payment_register"),
            path("<int:pk>/charge/", view(self.charge_view), name="billing_payment_charge"),
            path("<int:pk>/receipt/", view(self.receipt_view), name="billing_payment_receipt"),
            path(
                "<int:pk>/receipt/send/",
                view(self.receipt_send_view),
                name="billing_payment_receipt_send",
            ),
            path("<int:pk>/refund/", view(self.refund_view), name="billing_payment_refund"),
            path("<int:pk>/do/<slug:action>/", view(self.do_view), name="billing_payment_do"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        # "Add payment" is the desk's register page: payments are never written by a form.
        url = admin_url(self, "billing_payment_register")
        query = request.GET.urlencode()
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    def changelist_view(self, request, extra_context=None):
        links = []
        if self.has_add_permission(request):
            links.append(
                {"url": admin_url(self, "billing_payment_register"), "label": _("Register payment")}
            )
        return super().changelist_view(request, {"billing_links": links, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        return super().change_view(
            request,
            object_id,
            form_url,
            {**desk.payment_tools(self, request, payment), **(extra_context or {})},
        )

    def register_view(self, request):
        return desk.register_view(self, request)

    def charge_view(self, request, pk):
        return desk.charge_view(self, request, pk)

    def receipt_view(self, request, pk):
        return desk.receipt_view(self, request, pk)

    def receipt_send_view(self, request, pk):
        return desk.receipt_send_view(self, request, pk)

    def refund_view(self, request, pk):
        return desk.refund_view(self, request, pk)

    def do_view(self, request, pk, action):
        return desk.do_view(self, request, pk, action)

    # --- Actions ----------------------------------------------------------------------------
    def _run_each(self, request, queryset, name: str) -> None:
        """One service call per payment (each its own transaction); what was refused is
        listed payment by payment, what was done is counted."""
        op = desk.OPERATIONS[name]
        done = sum(
            desk.run_operation(request, payment, op, quiet=True)
            for payment in queryset.select_related("patient", "clinic").order_by("pk")
        )
        if done:
            self.message_user(request, desk.DONE_MANY[name] % {"count": done}, messages.SUCCESS)

    @admin.action(
        description=_("Confirm received (PIX to the clinic's key, transfer)"),
        permissions=["change"],
    )
    def confirm_selected(self, request, queryset):
        self._run_each(request, queryset, "confirm")

    @admin.action(description=_("Cancel selected payments"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        self._run_each(request, queryset, "cancel")

    @admin.action(description=_("Charge again at the gateway"), permissions=["change"])
    def charge_again_selected(self, request, queryset):
        self._run_each(request, queryset, "charge_again")

    @admin.action(description=_("Refund…"), permissions=["change"])
    def refund_selected(self, request, queryset):
        """Refunds are one payment at a time: the amount is that payment's."""
        payments = list(queryset[:2])
        if len(payments) != 1:
            messages.error(request, gettext("Choose one payment to refund."))
            return None
        return HttpResponseRedirect(admin_url(self, "billing_payment_refund", payments[0].pk))
