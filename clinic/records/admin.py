"""The clinical record's staff pages that are clinic.records' building blocks: the CID-10
table (read-only reference data) with its JSON search for the diagnosis widget, and the
clinic's clinical templates."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import JsonResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin
from clinic.choices import MembershipRole
from clinic.kernel.tenancy import current_clinic
from clinic.models import Membership

from . import cid10
from .models import Cid10Code, ClinicalTemplate, ClinicalTemplateVersion
from .template_engine import validate_schema
from .template_services import latest_version, new_version

#: Roles that write the clinical record and so code diagnoses (issue 20's access profiles:
#: professionals; the clinic's other roles only see that an encounter exists).
CLINICAL_ROLES = (MembershipRole.PROFESSIONAL,)


def has_clinical_role(request) -> bool:
    """Whether the user works as a clinician in the clinic they are working in now."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    clinic = current_clinic(request)
    if clinic is None:
        return False
    return Membership.objects.filter(
        user=user, clinic=clinic, is_active=True, role__in=CLINICAL_ROLES
    ).exists()


@admin.register(Cid10Code)
class Cid10CodeAdmin(admin.ModelAdmin):
    """CID-10 as loaded from DATASUS: read-only for everyone (``manage.py load_cid10``
    refreshes it). Global reference data: the operator's in the admin; clinicians reach it
    through the search (``search/``) of the diagnosis widget."""

    list_display = ("code", "description", "level", "sex_restriction", "group")
    list_filter = ("level", "sex_restriction", "group__chapter")
    list_select_related = ("group",)
    search_fields = ("code", "compact", "search_text")
    fields = (
        "code",
        "compact",
        "level",
        "category",
        "group",
        "description",
        "short_description",
        "sex_restriction",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = (search_term or "").strip()
        if not term:
            return queryset, False
        found = [c.pk for c in cid10.search(term, limit=200)]
        return queryset.filter(pk__in=found), False

    def get_urls(self):
        return [
            path(
                "search/",
                self.admin_site.admin_view(self.search_view),
                name="records_cid10code_search",
            ),
            *super().get_urls(),
        ]

    def search_view(self, request):
        """``GET …/search/?q=asma[&sex=female]``: up to 20 codes as JSON for the diagnosis
        widget, each with the sex-restriction warning for a patient of ``sex`` (the choices
        of Patient.sex), if any. Clinical roles only."""
        if not has_clinical_role(request):
            raise PermissionDenied
        query = request.GET.get("q", "")[:100]
        sex = request.GET.get("sex", "")
        results = [
            {
                "code": code.code,
                "description": code.description,
                "level": code.level,
                "sex_restriction": code.sex_restriction,
                "warning": cid10.sex_conflict(code, sex),
            }
            for code in cid10.search(query)
        ]
        return JsonResponse({"query": query, "results": results})


# --- Clinical templates ---------------------------------------------------------------------
FIELDS_HELP = _(
    "The template's fields as a JSON list, in display order. Each field: "
    '{"type": …, "key": …, "label": …, "required": true/false, "help": …}. Types: '
    '"text", "long_text", "number" (with "unit", "min", "max", "decimals"), '
    '"choice" and "multiple_choice" (with "choices": ["…", "…"]), "scale" (0–10, with '
    '"min_label" and "max_label"), "yes_no", "date", and "heading" (a section title, no key). '
    "Keys: lower-case letters, digits and _. Saving writes a new version: encounters already "
    "written keep the version they used."
)


class ClinicalTemplateForm(forms.ModelForm):
    """The template and its fields (the latest version's, as JSON), validated with the
    template engine's schema before anything is saved."""

    fields_json = forms.CharField(
        label=_("fields"),
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false"}),
        help_text=FIELDS_HELP,
    )

    class Meta:
        model = ClinicalTemplate
        fields = ("name", "kind", "specialty", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        latest = latest_version(self.instance) if self.instance.pk else None
        if latest is not None and not self.is_bound:
            self.initial["fields_json"] = json.dumps(latest.fields, ensure_ascii=False, indent=2)

    def clean_fields_json(self):
        try:
            fields = json.loads(self.cleaned_data["fields_json"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                _("This is not valid JSON (line %(line)s, column %(column)s): %(message)s")
                % {"line": error.lineno, "column": error.colno, "message": error.msg}
            ) from None
        errors = validate_schema(fields)
        if errors:
            raise forms.ValidationError(errors)
        return fields


class ClinicalTemplateVersionInline(admin.TabularInline):
    """The versions written so far, newest first: read-only (a version is never changed)."""

    model = ClinicalTemplateVersion
    fields = ("number", "created_at", "created_by", "field_count")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("-number",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description=_("fields"))
    def field_count(self, obj):
        return len([f for f in obj.fields if f.get("type") != "heading"])


@admin.register(ClinicalTemplate)
class ClinicalTemplateAdmin(ClinicScopedAdmin):
    """A clinic's anamnesis and evolution templates. Editing the fields writes a new version;
    templates are deactivated, never deleted (encounters keep their versions)."""

    form = ClinicalTemplateForm
    list_display = ("name", "specialty", "kind", "is_active", "current_version")
    list_filter = ("specialty", "kind", "is_active")
    search_fields = ("name",)
    fields = ("name", "kind", "specialty", "is_active", "fields_json")
    inlines = [ClinicalTemplateVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(latest_number=Max("versions__number"))

    @admin.display(description=_("version"), ordering="latest_number")
    def current_version(self, obj):
        return obj.latest_number

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        new_version(obj, form.cleaned_data["fields_json"], by=request.user)
