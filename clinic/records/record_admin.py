"""The encounters in the admin. The list shows what administrative staff may know — that
an encounter took place: date, patient, professional, service, status — never content;
the record's own pages (``pages``) are routed here, and the chain check is an action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.admin.base import ClinicScopedAdmin, ReadOnlyScopedAdmin

from . import pages
from .chain import chain_verify
from .models import BreakGlass, Encounter


@admin.register(Encounter)
class EncounterAdmin(ClinicScopedAdmin):
    list_display = ("started_at", "patient_link", "professional", "service_name", "status")
    list_select_related = ("patient", "professional")
    # Only the professionals of the (clinic-scoped) encounters listed: no other clinic's.
    list_filter = ("status", ("professional", admin.RelatedOnlyFieldListFilter))
    # What administrative staff may know of an encounter; its content is on the record's
    # pages, behind the access rules.
    fields = (
        "started_at",
        "patient",
        "professional",
        "service_name",
        "status",
        "finalized_at",
        "record_link",
    )
    readonly_fields = fields
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    actions = ["verify_chains"]
    search_fields = ()

    def has_add_permission(self, request):
        return False  # encounters open from the professional's day or the patient's record

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("patient"), ordering="patient__full_name")
    def patient_link(self, obj):
        url = reverse("admin:records_encounter_patient", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, obj.patient.display_name)

    @admin.display(description=gettext_lazy("clinical record"))
    def record_link(self, obj):
        # The record's page decides what this user may read of the encounter.
        url = reverse("admin:records_encounter_patient", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, _("Open the patient's clinical record"))

    @admin.action(description=gettext_lazy("Verify the record's hash chains"))
    def verify_chains(self, request, queryset):
        patient_ids = set(queryset.values_list("patient_id", flat=True))
        broken = chain_verify(patient_ids=patient_ids)
        if not broken:
            messages.success(
                request,
                _("%(n)d patients' chains verified: every link holds.") % {"n": len(patient_ids)},
            )
        for link in broken:
            messages.error(
                request,
                _(
                    "Patient %(patient)s: first broken link is entry %(entry)s "
                    "(position %(seq)s): %(reason)s."
                )
                % {
                    "patient": link.patient_id,
                    "entry": link.entry_id,
                    "seq": link.chain_seq,
                    "reason": link.reason,
                },
            )

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(
                lambda request, *args, **kwargs: func(self, request, *args, **kwargs)
            )

        name = "records_encounter_"
        return [
            path(
                "patient/<int:object_id>/", view(pages.patient_record_view), name=f"{name}patient"
            ),
            path(
                "patient/<int:object_id>/walk-in/", view(pages.walk_in_view), name=f"{name}walk_in"
            ),
            path(
                "patient/<int:object_id>/break-glass/",
                view(pages.break_glass_view),
                name=f"{name}break_glass",
            ),
            path("<int:object_id>/record/", view(pages.encounter_view), name=f"{name}record"),
            path("<int:object_id>/autosave/", view(pages.autosave_view), name=f"{name}autosave"),
            path("<int:object_id>/sign/", view(pages.sign_view), name=f"{name}sign"),
            path("<int:object_id>/attach/", view(pages.attach_view), name=f"{name}attach"),
            path("entry/<int:object_id>/correct/", view(pages.correct_view), name=f"{name}correct"),
            path(
                "entry/<int:object_id>/inactivate/",
                view(pages.inactivate_view),
                name=f"{name}inactivate",
            ),
            path(
                "attachment/<int:object_id>/",
                view(pages.attachment_view),
                name=f"{name}attachment",
            ),
            *super().get_urls(),
        ]


@admin.register(BreakGlass)
class BreakGlassAdmin(ReadOnlyScopedAdmin):
    """Emergency accesses, for the clinical director and the clinic's managers to review."""

    list_display = ("at", "user", "patient", "expires_at")
    list_select_related = ("user", "patient")
    fields = ("at", "user", "patient", "reason", "expires_at")
    readonly_fields = fields
    ordering = ("-at",)
