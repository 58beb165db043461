"""The assistant's knowledge base in the admin: the clinic's staff write its entries, and the
changelist's search box finds what the assistant would (its own retrieval, not a plain text
match), so a manager can check what a patient's question finds."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin
from clinic.kernel.tenancy import current_clinic

from .knowledge import KnowledgeEntry, knowledge_search

#: The search box shows this many matches (the assistant itself sends at most three).
ADMIN_SEARCH_LIMIT = 10


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(ClinicScopedAdmin):
    list_display = ("title", "category", "active", "updated_at")
    list_filter = ("category", "active")
    list_select_related = ("clinic",)
    search_fields = ("title",)  # replaced by the assistant's own retrieval below
    search_help_text = _(
        "Type a question as a patient would: the entries the assistant would find are listed."
    )
    fieldsets = ((None, {"fields": ("clinic", "category", "title", "body", "keywords", "active")}),)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        clinic = current_clinic(request)
        if clinic is None:  # a superuser looking at every clinic: a plain title search
            return super().get_search_results(request, queryset, search_term)
        found = knowledge_search(clinic=clinic, question=search_term, limit=ADMIN_SEARCH_LIMIT)
        ids = [s.entry.pk for s in found]
        return queryset.filter(pk__in=ids), False
