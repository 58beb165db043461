"""The portal in the admin: who is signed in to the patient portal, from where; a manager
ends a session here (a lost phone, a shared computer). Sign-in codes are not shown: they
only record attempts and are purged after a day."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, search_by_patient

from .models import PortalSession
from .profile import device_label
from .sessions import session_end


class SessionStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", _("Active")), ("ended", _("Ended")))

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(ended_at__isnull=True)
        if self.value() == "ended":
            return queryset.filter(~Q(ended_at__isnull=True))
        return queryset


@admin.register(PortalSession)
class PortalSessionAdmin(ClinicScopedAdmin):
    """Who signed in to the patient portal, from where; a session can be ended here (a lost
    phone, a shared computer)."""

    list_display = ("patient", "device", "ip", "created_at", "last_seen_at", "ended_at")
    list_filter = (SessionStateFilter, "created_at")
    list_select_related = ("patient",)
    search_fields = ("patient__search_name",)  # widened in get_search_results (CPF)
    search_help_text = _("Search by the patient's name or CPF.")
    fields = ("patient", "created_at", "last_seen_at", "ended_at", "ip", "user_agent")
    readonly_fields = fields
    actions = ("end_sessions",)
    list_per_page = 50

    @admin.display(description=_("device"), ordering="user_agent")
    def device(self, obj):
        return device_label(obj.user_agent)

    def get_search_results(self, request, queryset, search_term):
        return search_by_patient(request, queryset, search_term)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=_("End the selected sessions"), permissions=["change"])
    def end_sessions(self, request, queryset):
        sessions = list(queryset.filter(ended_at__isnull=True))
        for session in sessions:
            session_end(session=session)
        self.message_user(
            request,
            gettext("%(count)d session(s) ended.") % {"count": len(sessions)},
            messages.SUCCESS,
        )
