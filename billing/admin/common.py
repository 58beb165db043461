"""Pieces every billing admin shares: money typed the Brazilian way, coloured statuses,
read-only admins, page contexts and turning a service's error into form errors."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import scope_queryset
from clinic.kernel import views as kernel_views
from clinic.kernel.tenancy import current_clinic

from ..reports import amount_parse, decimal_places

#: Payment.amount holds 12 digits, 2 of them decimals.
MAX_AMOUNT = Decimal("9999999999.99")


class MoneyField(forms.CharField):
    """Reais as people type them: ``150,50``, ``1.234,56``, ``R$ 80`` or ``150.50``.
    Positive, at most two decimal places."""

    default_error_messages = {
        "invalid": _("Enter an amount such as 150,50."),
        "positive": _("Enter an amount greater than zero."),
        "decimals": _("Use at most two decimal places (centavos)."),
        "too_large": _("This amount is too large."),
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"inputmode": "decimal", "autocomplete": "off", "size": 12, "maxlength": 20}
        )

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return formats.number_format(value, decimal_pos=2)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        try:
            amount = amount_parse(text)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if decimal_places(amount) > 2:
            raise ValidationError(self.error_messages["decimals"], code="decimals")
        if amount <= 0:
            raise ValidationError(self.error_messages["positive"], code="positive")
        if amount > MAX_AMOUNT:
            raise ValidationError(self.error_messages["too_large"], code="too_large")
        return amount.quantize(Decimal("0.01"))


class DateInput(forms.DateInput):
    """The browser's date picker (it sends ISO dates, which Django always accepts)."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def status_badge(status: str, label) -> str:
    return format_html('<span class="billing-status billing-status-{}">{}</span>', status, label)


def add_service_error(form: forms.Form, exc) -> None:
    """Show an ``ApplicationError`` on the form: on its fields when the form has them,
    otherwise above the form."""
    placed = False
    for name, errors in (getattr(exc, "fields", None) or {}).items():
        if name in form.fields:
            for error in errors:
                form.add_error(name, error)
            placed = True
    if not placed:
        form.add_error(None, getattr(exc, "message", str(exc)))


def add_validation_error(form: forms.Form, exc: ValidationError) -> None:
    """A model's ``full_clean`` inside a service: field errors where the form has the field."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class ReadOnlyAdminMixin:
    """Rows written by services only: no add, change or delete from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ViewOnlyDetailMixin:
    """The change permission is kept for actions and custom views, but the object's page
    is read-only: no form writes the row behind the services' back."""

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def clinic_or_redirect(model_admin, request):
    """The clinic a desk page works in, or a redirect to the dashboard for a superuser
    viewing all clinics."""
    return kernel_views.clinic_or_redirect(
        model_admin,
        request,
        current_clinic(request),
        gettext("Choose a clinic at the top of the page first."),
    )


def scoped_or_404(model_admin, request, pk, queryset=None):
    """The row ``pk`` of the request's clinic (another clinic's id is simply not found)."""
    queryset = queryset if queryset is not None else model_admin.get_queryset(request)
    try:
        obj = queryset.filter(pk=int(pk)).first()
    except (TypeError, ValueError):
        obj = None
    if obj is None:
        raise Http404
    return obj


def page_context(model_admin, request, **extra) -> dict:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        **extra,
    }


def admin_url(model_admin, name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args, current_app=model_admin.admin_site.name)


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related filter listing only the current clinic's rows (the plain one lists every
    clinic's)."""

    def field_choices(self, field, request, model_admin):
        rows = scope_queryset(request, field.related_model._default_manager.all())
        return [(row.pk, str(row)) for row in rows]
