"""Admin: backups, verifications, restores and restore drills of the installation.

Operators only (superusers, or whoever is given ``integrations.view_backuprun``): a backup
holds every clinic's data. The list shows how recent the last backup and drill are, with
the problems ``/health/integrations`` reports; two buttons queue a backup or a drill (for
the worker that runs the backup jobs, docs/backups.md).
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..backups.services import backups_health
from ..backups.tasks import backup_drill_task, backup_run_task
from ..models import BackupRun


def _size(value) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(value)


def _seconds(value) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


@admin.register(BackupRun)
class BackupRunAdmin(admin.ModelAdmin):
    """Every run, newest first; read-only (runs are written by the jobs and commands)."""

    change_list_template = "admin/integrations/backuprun/change_list.html"
    list_display = (
        "started_at",
        "kind",
        "status",
        "label",
        "size_display",
        "duration_display",
        "rto_display",
        "rpo_display",
        "triggered_by",
    )
    list_filter = ("kind", "status", "method")
    date_hierarchy = "started_at"
    search_fields = ("label", "triggered_by")
    fieldsets = (
        (None, {"fields": ("kind", "method", "status", "label", "triggered_by")}),
        (
            _("When"),
            {"fields": ("started_at", "finished_at", "duration_display", "target")},
        ),
        (
            _("Measured"),
            {
                "fields": (
                    "size_display",
                    "checksum",
                    "restored_until",
                    "rto_display",
                    "rpo_display",
                )
            },
        ),
        (_("Drill checks"), {"fields": ("checks_display",)}),
        (_("Outcome"), {"fields": ("error", "details_display")}),
    )
    readonly_fields = (
        "kind",
        "method",
        "status",
        "label",
        "triggered_by",
        "started_at",
        "finished_at",
        "duration_display",
        "target",
        "size_display",
        "checksum",
        "restored_until",
        "rto_display",
        "rpo_display",
        "checks_display",
        "error",
        "details_display",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("size"))
    def size_display(self, obj):
        return _size(obj.size_bytes)

    @admin.display(description=_("took"))
    def duration_display(self, obj):
        return _seconds(obj.seconds)

    @admin.display(description=_("RTO"), ordering="rto_seconds")
    def rto_display(self, obj):
        return _seconds(obj.rto_seconds)

    @admin.display(description=_("RPO"), ordering="rpo_seconds")
    def rpo_display(self, obj):
        return _seconds(obj.rpo_seconds)

    @admin.display(description=_("checks"))
    def checks_display(self, obj):
        checks = (obj.details or {}).get("checks") or []
        if not checks:
            return "—"
        return format_html(
            "<ul style='margin:0;padding-left:1em'>{}</ul>",
            format_html_join(
                "",
                "<li>{} <strong>{}</strong>: {}</li>",
                ((("✔" if c["ok"] else "✘"), c["name"], c["detail"]) for c in checks),
            ),
        )

    @admin.display(description=_("details"))
    def details_display(self, obj):
        return format_html(
            '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
            json.dumps(obj.details, indent=2, ensure_ascii=False, sort_keys=True),
        )

    # --- Summary and buttons ----------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "backups_health": backups_health(),
            "can_run": self._can_run(request),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def _can_run(self, request) -> bool:
        return request.user.is_superuser

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "run/<str:what>/",
                self.admin_site.admin_view(self.run_view),
                name="{}_{}_run".format(*info),
            ),
            *super().get_urls(),
        ]

    def run_view(self, request, what: str):
        """Queue a backup or a drill now (POST, superusers)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_run(request) or what not in ("backup", "drill"):
            raise PermissionDenied
        by = f"admin: {request.user.get_username()}"
        if what == "backup":
            backup_run_task.apply_async(kwargs={"triggered_by": by})
            self.message_user(request, _("A backup was queued."), messages.SUCCESS)
        else:
            backup_drill_task.apply_async(kwargs={"triggered_by": by})
            self.message_user(request, _("A restore drill was queued."), messages.SUCCESS)
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))
