"""Service invoices (NFS-e) in the admin: read-only, with what the provider refused in plain
words, "Issue again" (``services.invoice_retry``) and "Cancel" with the justification the
city hall requires (``services.invoice_cancel``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin

from .. import services
from ..choices import InvoiceStatus
from ..exceptions import BillingError
from ..models import Invoice
from ..money import brl
from .common import (
    ViewOnlyDetailMixin,
    add_service_error,
    admin_url,
    page_context,
    scoped_or_404,
    status_badge,
)

#: What a person can check when a provider's message mentions it (pt-BR and English
#: providers alike).
_HINTS = (
    (("cpf", "cnpj", "tomador", "customer document"), _("Check the patient's CPF.")),
    (
        ("endereco", "endereço", "cep", "logradouro", "municipio", "município", "address"),
        _("Check the patient's address (CEP, street, number, city)."),
    ),
    (
        ("servico", "serviço", "item da lista", "lc 116", "service code", "codigo", "código"),
        _("Check the clinic's NFS-e service code in the billing settings."),
    ),
    (
        ("aliquota", "alíquota", "iss", "tribut"),
        _("Check the clinic's ISS rate and municipal tax code in the billing settings."),
    ),
    (
        ("certificado", "certificate", "credencia", "unauthorized", "401", "403"),
        _("The fiscal provider refused the clinic's credentials: ask the clinic administrator."),
    ),
)


def invoice_error_lines(errors) -> list[str]:
    """The provider's errors as sentences: its own messages (whatever shape it sent them
    in), without our chain's technical prefix."""
    lines = []
    for error in errors or []:
        if isinstance(error, dict):
            text = error.get("message") or error.get("mensagem") or error.get("detail") or ""
            code = error.get("code") or error.get("codigo") or ""
            text = f"{text} ({code})" if code and text else text or str(code) or str(error)
        else:
            text = str(error)
        text = text.split("failed for issue: ", 1)[-1].strip()
        if text:
            lines.append(text)
    return lines


def invoice_error_hints(lines: list[str]) -> list[str]:
    text = " ".join(lines).lower()
    return [str(hint) for words, hint in _HINTS if any(w in text for w in words)]


class InvoiceCancelForm(forms.Form):
    justification = forms.CharField(
        label=_("Reason for cancelling"),
        min_length=15,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70, "maxlength": 255}),
        help_text=_("The city hall requires 15 to 255 characters."),
    )


@admin.register(Invoice)
class InvoiceAdmin(ViewOnlyDetailMixin, ClinicScopedAdmin):
    """NFS-e are issued when payments are received (if the clinic enabled it); here they
    are followed, issued again after a correction, or cancelled."""

    change_list_template = "billing/admin/change_list.html"
    change_form_template = "billing/admin/change_form.html"
    list_display = (
        "created_at",
        "payment_display",
        "number_display",
        "status_display",
        "provider",
        "issued_at",
        "files",
    )
    list_display_links = ("created_at", "payment_display")
    list_filter = ("status", "provider", "issued_at")
    list_select_related = ("payment__patient", "clinic")
    search_fields = ("number", "reference", "payment__patient__search_name")
    date_hierarchy = "created_at"
    actions = ("retry_selected", "cancel_selected")
    fieldsets = (
        (
            _("Invoice"),
            {
                "fields": (
                    "clinic",
                    "payment_link",
                    "status_display",
                    "errors_display",
                    "number",
                    "verification_code",
                    "amount_display",
                    "description",
                    "files",
                )
            },
        ),
        (
            _("Provider"),
            {"fields": ("provider", "reference", "attempts", "issued_at")},
        ),
        (_("Cancellation"), {"fields": ("cancel_justification", "cancelled_at")}),
    )
    readonly_fields = (
        "payment_link",
        "status_display",
        "errors_display",
        "amount_display",
        "files",
    )

    @admin.display(description=_("payment"), ordering="payment__patient__full_name")
    def payment_display(self, obj):
        return f"{obj.payment.patient.display_name} — {brl(obj.amount)}"

    @admin.display(description=_("payment"))
    def payment_link(self, obj):
        url = admin_url(self, "billing_payment_change", obj.payment_id)
        return format_html('<a href="{}">{}</a>', url, self.payment_display(obj))

    @admin.display(description=_("number"), ordering="number")
    def number_display(self, obj):
        return obj.number or "—"

    @admin.display(description=_("amount"))
    def amount_display(self, obj):
        return brl(obj.amount)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("files"))
    def files(self, obj):
        links = [(url, label) for url, label in ((obj.pdf_url, "PDF"), (obj.xml_url, "XML")) if url]
        return (
            format_html_join(" · ", '<a href="{}" target="_blank" rel="noopener">{}</a>', links)
            or "—"
        )

    @admin.display(description=_("what the provider said"))
    def errors_display(self, obj):
        lines = invoice_error_lines(obj.errors)
        if not lines:
            return "—"
        hints = invoice_error_hints(lines)
        return format_html(
            "<p>{}</p><ul>{}</ul>{}",
            gettext(
                "The provider refused this invoice. Correct what it says, then use “Issue again”."
            ),
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
            format_html(
                "<p><strong>{}</strong></p><ul>{}</ul>",
                gettext("What to check:"),
                format_html_join("", "<li>{}</li>", ((hint,) for hint in hints)),
            )
            if hints
            else "",
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="billing_invoice_cancel",
            ),
            path(
                "<int:pk>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="billing_invoice_retry",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        links, posts = [], []
        if self.has_change_permission(request):
            if invoice.status == InvoiceStatus.ERROR:
                url = admin_url(self, "billing_invoice_retry", invoice.pk)
                posts.append({"url": url, "label": _("Issue again")})
            if invoice.status == InvoiceStatus.AUTHORIZED:
                url = admin_url(self, "billing_invoice_cancel", invoice.pk)
                links.append({"url": url, "label": _("Cancel…")})
        extra = {"billing_links": links, "billing_posts": posts, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _retry(self, request, invoice) -> None:
        try:
            invoice = services.invoice_retry(invoice=invoice)
        except BillingError as exc:
            messages.error(request, f"{invoice}: {exc.message}")
            return
        if invoice.status == InvoiceStatus.ERROR:
            messages.warning(
                request,
                gettext("%(invoice)s was refused again: %(errors)s")
                % {"invoice": invoice, "errors": "; ".join(invoice_error_lines(invoice.errors))},
            )
        else:
            messages.success(
                request,
                gettext("%(invoice)s sent again: %(status)s.")
                % {"invoice": invoice, "status": invoice.get_status_display()},
            )

    def retry_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        invoice = scoped_or_404(self, request, pk)
        self._retry(request, invoice)
        return HttpResponseRedirect(admin_url(self, "billing_invoice_change", invoice.pk))

    def cancel_view(self, request, pk):
        """Cancel an issued invoice, with the justification (15 to 255 characters)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        invoice = scoped_or_404(
            self, request, pk, self.get_queryset(request).select_related("payment__patient")
        )
        back = admin_url(self, "billing_invoice_change", invoice.pk)
        if invoice.status != InvoiceStatus.AUTHORIZED:
            messages.error(request, gettext("Only an issued invoice can be cancelled."))
            return HttpResponseRedirect(back)
        form = InvoiceCancelForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                services.invoice_cancel(
                    invoice=invoice, justification=form.cleaned_data["justification"]
                )
            except BillingError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request, gettext("Invoice %(invoice)s cancelled.") % {"invoice": invoice}
                )
                return HttpResponseRedirect(back)
        context = page_context(
            self,
            request,
            title=gettext("Cancel invoice %(invoice)s") % {"invoice": invoice},
            invoice=invoice,
            original=invoice,
            payment=self.payment_display(invoice),
            form=form,
            back_url=back,
        )
        return TemplateResponse(request, "billing/admin/invoice_cancel.html", context)

    @admin.action(description=_("Issue again"), permissions=["change"])
    def retry_selected(self, request, queryset):
        for invoice in queryset.order_by("pk"):
            if invoice.status != InvoiceStatus.ERROR:
                messages.error(
                    request,
                    f"{invoice}: {gettext('Only a rejected invoice can be issued again.')}",
                )
                continue
            self._retry(request, invoice)

    @admin.action(description=_("Cancel…"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        """Each cancellation has its own justification: one invoice at a time."""
        invoices = list(queryset[:2])
        if len(invoices) != 1:
            messages.error(request, gettext("Choose one invoice to cancel."))
            return None
        return HttpResponseRedirect(admin_url(self, "billing_invoice_cancel", invoices[0].pk))
