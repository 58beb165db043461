"""The admin's one tenancy mechanism: every ModelAdmin of a clinic-owned model uses
:class:`ClinicScopedAdmin`.

It limits changelists, change/delete/history views (404 for another clinic's row),
autocomplete results and foreign-key choices to the clinic the user is working in, and
sets ``clinic`` on rows created there. Superusers working in "all clinics" see everything
and choose the clinic in the form.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404

from .. import selectors
from ..kernel.tenancy import current_clinic
from ..models import Patient


def _is_clinic_owned(model) -> bool:
    """Any model with a ``clinic`` foreign key to Clinic (ClinicOwned rows, and the
    integrations app's rows, which point at clinics by string FK)."""
    try:
        field = model._meta.get_field("clinic")
    except Exception:
        return False
    return field.is_relation and field.related_model._meta.label == "clinic.Clinic"


def scope_queryset(request, queryset):
    """Limit a queryset of a clinic-owned model to the request's clinic."""
    clinic = current_clinic(request)
    if clinic is None and request.user.is_superuser:
        return queryset
    if clinic is None:
        return queryset.none()
    return queryset.filter(clinic=clinic)


def search_by_patient(request, queryset, search_term):
    """``get_search_results`` of a changelist of a patient's rows (privacy requests, portal
    sessions): rows whose patient matches by name (accents ignored) or CPF, as on the
    patient list, among the request clinic's patients."""
    term = (search_term or "").strip()
    if not term:
        return queryset, False
    patients = selectors.patient_search(
        clinic=current_clinic(request),
        term=term,
        queryset=scope_queryset(request, Patient.objects.all()),
    )
    return queryset.filter(patient__in=patients.values("pk")), False


class ClinicScopedAdminMixin:
    """Shared by ModelAdmins and inlines."""

    def get_queryset(self, request):
        return scope_queryset(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if _is_clinic_owned(db_field.related_model) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(
                request, db_field.related_model._default_manager.all()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if _is_clinic_owned(db_field.related_model) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(
                request, db_field.related_model._default_manager.all()
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if self._clinic_is_implicit(request):
            exclude.append("clinic")
        return exclude

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self._clinic_is_implicit(request):
            fields = [f for f in fields if f != "clinic"]
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._clinic_is_implicit(request):
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "clinic"]})
            for name, opts in fieldsets
        ]

    def _clinic_is_implicit(self, request) -> bool:
        """Staff always work in their current clinic; only a superuser viewing all clinics
        picks one in the form."""
        return not (request.user.is_superuser and current_clinic(request) is None)


class ClinicScopedAdmin(ClinicScopedAdminMixin, admin.ModelAdmin):
    """Base ModelAdmin for clinic-owned models."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Another clinic's row, or no row: the same 404, so ids reveal nothing.
            raise Http404
        return obj

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if not self._clinic_is_implicit(request):
            filters.insert(0, "clinic")
        return filters

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if not self._clinic_is_implicit(request):
            display.append("clinic")
        return display

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        clinic = current_clinic(request) if self._clinic_is_implicit(request) else None
        if clinic is None:
            return form

        class ClinicBoundForm(form):
            """Sets the clinic before validation, so that per-clinic unique constraints
            (e.g. CPF) are checked by the form rather than failing on save."""

            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if self.instance.clinic_id is None:
                    self.instance.clinic = clinic

            def _get_validation_exclusions(self):
                exclusions = super()._get_validation_exclusions()
                exclusions.discard("clinic")
                return exclusions

        ClinicBoundForm.__name__ = form.__name__
        return ClinicBoundForm

    def save_model(self, request, obj, form, change):
        if obj.clinic_id is None:
            obj.clinic = current_clinic(request)
        super().save_model(request, obj, form, change)


class ClinicScopedInline(ClinicScopedAdminMixin):
    """Mix into TabularInline/StackedInline of clinic-owned children; the parent's clinic
    is given to new rows in ``save_formset`` of the parent admin."""

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        exclude.append("clinic")  # always the parent's
        return exclude


class ReadOnlyScopedAdmin(ClinicScopedAdmin):
    """A clinic's records that nobody edits in the admin (logs, the audit trail): listed
    and opened, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
