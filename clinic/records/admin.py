"""The clinical record's staff pages that are clinic.records' building blocks: the CID-10
table (read-only reference data) with its JSON search for the diagnosis widget, and the
clinic's clinical templates."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import path

from clinic.choices import MembershipRole
from clinic.kernel.tenancy import current_clinic
from clinic.models import Membership

from . import cid10
from .models import Cid10Code

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
