"""Packages of sessions in the admin: what the clinic sells (managers), what patients bought
(read-only, with the sessions they used) and the desk's "Sell a package" page."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, ClinicScopedInline, scope_queryset
from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient
from clinic.selectors import patient_search
from scheduling.models import Service

from .. import services
from ..exceptions import BillingError
from ..models import Package, PackageItem, PackageSessionUse, PatientPackage
from ..money import brl
from .common import (
    MoneyField,
    ScopedRelatedFilter,
    ViewOnlyDetailMixin,
    add_service_error,
    add_validation_error,
    admin_url,
    clinic_or_redirect,
    page_context,
    scoped_or_404,
    status_badge,
)
from .desk_forms import CHARGE, RECEIVE, PaymentChoiceForm, patient_field, submitted_mode


# --- Packages the clinic sells --------------------------------------------------------------
class PackageItemFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or not data.get("service"):
                continue
            if data["service"] in seen:
                form.add_error("service", gettext("This service is already in the package."))
            seen.add(data["service"])
            if not data.get("quantity"):
                form.add_error("quantity", gettext("At least one session."))


class PackageItemInline(admin.TabularInline):
    model = PackageItem
    formset = PackageItemFormSet
    fields = ("service", "quantity")
    extra = 1
    min_num = 1
    verbose_name = _("service in the package")
    verbose_name_plural = _("services in the package (sessions of each)")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "service":
            kwargs["queryset"] = scope_queryset(request, Service.objects.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PackageForm(forms.ModelForm):
    price = MoneyField(label=_("package price (R$)"))
    regular_price = MoneyField(
        label=_("regular price (R$)"),
        required=False,
        help_text=_("What the sessions cost one by one, to show the discount."),
    )

    class Meta:
        model = Package
        fields = ("clinic", "name", "price", "regular_price", "validity_days", "is_active")

    def clean_regular_price(self):
        return self.cleaned_data.get("regular_price") or Decimal("0")


@admin.register(Package)
class PackageAdmin(ClinicScopedAdmin):
    """A package's services and sessions; its total of sessions is computed on save
    (``services.package_save_items``)."""

    list_display = (
        "name",
        "total_sessions",
        "price_display",
        "regular_price_display",
        "validity_days",
        "is_active",
    )
    list_filter = ("is_active",)
    list_select_related = ("clinic",)  # the clinic column of a superuser viewing all
    search_fields = ("name",)
    form = PackageForm
    fields = ("clinic", "name", "price", "regular_price", "validity_days", "is_active")
    readonly_fields = ("total_sessions",)
    inlines = (PackageItemInline,)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [*fields, "total_sessions"] if obj is not None else fields

    @admin.display(description=_("package price"), ordering="price")
    def price_display(self, obj):
        return brl(obj.price)

    @admin.display(description=_("regular price"), ordering="regular_price")
    def regular_price_display(self, obj):
        return brl(obj.regular_price) if obj.regular_price else "—"

    def save_related(self, request, form, formsets, change):
        form.save_m2m()
        for formset in formsets:
            if formset.model is not PackageItem:
                continue
            items = [
                (f.cleaned_data["service"], f.cleaned_data["quantity"])
                for f in formset.forms
                if f.cleaned_data
                and not f.cleaned_data.get("DELETE")
                and f.cleaned_data.get("service")
            ]
            services.package_save_items(package=form.instance, items=items)
            # The admin's change message reads these, as after a normal formset.save().
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


# --- Packages patients bought ---------------------------------------------------------------
class SessionUseInline(ClinicScopedInline, admin.TabularInline):
    model = PackageSessionUse
    extra = 0
    fields = ("used_at", "appointment", "reason")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PackageSellForm(PaymentChoiceForm):
    package = forms.ModelChoiceField(label=_("Package"), queryset=Package.objects.none())

    def __init__(self, *args, clinic, patient=None, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.for_clinic(clinic).filter(
            is_active=True, total_sessions__gt=0
        )
        self.fields["package"].label_from_instance = lambda p: (
            gettext("%(name)s — %(sessions)d sessions, %(price)s")
            % {"name": p.name, "sessions": p.total_sessions, "price": brl(p.price)}
        )
        fields = {"package": self.fields.pop("package")}
        if patient is None:
            fields = {"patient": patient_field(clinic, admin_site), **fields}
        self.fields = {**fields, **self.fields}


@admin.register(PatientPackage)
class PatientPackageAdmin(ViewOnlyDetailMixin, ClinicScopedAdmin):
    """Who bought which package, how many sessions are left and until when. Sold from the
    "Sell a package" page (``services.package_sell``); sessions are spent by appointments."""

    change_list_template = "billing/admin/change_list.html"
    list_display = (
        "patient_name",
        "package",
        "usage",
        "remaining",
        "expires_at",
        "status_display",
        "purchased_at",
    )
    list_filter = ("status", ("package", ScopedRelatedFilter), "expires_at")
    list_select_related = ("patient", "package", "clinic")
    search_fields = ("patient__search_name",)
    search_help_text = _("Search by the patient's name or CPF.")
    date_hierarchy = "purchased_at"
    fields = (
        "clinic",
        "patient",
        "package",
        "usage",
        "remaining",
        "price",
        "purchased_at",
        "expires_at",
        "status_display",
        "expiry_warned_at",
    )
    readonly_fields = ("usage", "remaining", "status_display")
    inlines = (SessionUseInline,)

    @admin.display(description=_("patient"), ordering="patient__full_name")
    def patient_name(self, obj):
        return obj.patient.display_name

    @admin.display(description=_("used / total"))
    def usage(self, obj):
        return f"{obj.sessions_used} / {obj.sessions_total}"

    @admin.display(description=_("remaining"))
    def remaining(self, obj):
        return obj.sessions_remaining

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        patients = patient_search(
            clinic=current_clinic(request),
            term=search_term,
            queryset=Patient.objects.filter(pk__in=queryset.values("patient_id")),
        )
        return queryset.filter(patient__in=patients.values("pk")), False

    def may_sell(self, request) -> bool:
        return request.user.has_perm("billing.add_patientpackage") and request.user.has_perm(
            "billing.add_payment"
        )

    def get_urls(self):
        return [
            path(
                "sell/",
                self.admin_site.admin_view(self.sell_view),
                name="billing_patientpackage_sell",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        url = admin_url(self, "billing_patientpackage_sell")
        query = request.GET.urlencode()
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    def changelist_view(self, request, extra_context=None):
        links = []
        if self.may_sell(request):
            url = admin_url(self, "billing_patientpackage_sell")
            links.append({"url": url, "label": _("Sell a package")})
        return super().changelist_view(request, {"billing_links": links, **(extra_context or {})})

    def sell_view(self, request):
        """Sell a package to a patient: paid now at the desk, or charged."""
        if not self.may_sell(request):
            raise PermissionDenied
        clinic, redirect = clinic_or_redirect(self, request)
        if redirect:
            return redirect
        patient = None
        if request.GET.get("patient"):
            patient = scoped_or_404(
                self, request, request.GET["patient"], Patient.objects.for_clinic(clinic)
            )
        mode = submitted_mode(request.POST) if request.method == "POST" else RECEIVE
        initial = {"package": request.GET["package"]} if request.GET.get("package") else {}
        form = PackageSellForm(
            request.POST if request.method == "POST" else None,
            mode=mode,
            clinic=clinic,
            patient=patient,
            admin_site=self.admin_site,
            initial=initial,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            buyer = patient or data["patient"]
            try:
                sold, payment = services.package_sell(
                    clinic=clinic,
                    patient=buyer,
                    package=data["package"],
                    method=data["charge_method"] if mode == CHARGE else data["method"],
                    paid=mode != CHARGE,
                    by=request.user,
                )
            except BillingError as exc:
                add_service_error(form, exc)
            except ValidationError as exc:
                add_validation_error(form, exc)
            else:
                return self._sold(request, sold, payment, mode)
        context = page_context(
            self,
            request,
            title=gettext("Sell a package"),
            form=form,
            patient=patient,
            media=self.media + form.media,
        )
        return TemplateResponse(request, "billing/admin/sell.html", context)

    def _sold(self, request, sold, payment, mode):
        label = gettext("%(package)s sold to %(patient)s.") % {
            "package": sold.package,
            "patient": sold.patient.display_name,
        }
        if mode == CHARGE:
            messages.success(request, label)
            return HttpResponseRedirect(admin_url(self, "billing_payment_charge", payment.pk))
        messages.success(
            request,
            format_html(
                '{} <a href="{}" target="_blank">{}</a>',
                label,
                admin_url(self, "billing_payment_receipt", payment.pk),
                gettext("Print the receipt"),
            ),
        )
        return HttpResponseRedirect(admin_url(self, "billing_patientpackage_change", sold.pk))
