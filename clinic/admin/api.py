"""The partner API in the admin: API keys (the secret shown once, at creation) and the
request log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..accounts.sudo import ReauthRequiredAdminMixin
from ..api_framework import api_key_create, api_key_revoke
from ..models import API_SCOPES, ApiKey, ApiRequestLog
from .base import ClinicScopedAdmin, ReadOnlyScopedAdmin


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=[(scope, scope) for scope in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What the partner may do. Give only what it needs."),
    )

    class Meta:
        model = ApiKey
        fields = ("clinic", "name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(ReauthRequiredAdminMixin, ClinicScopedAdmin):
    """Keys are created here; the full key appears once, in the message after saving.
    Keys are never edited (revoke and create another) nor deleted (the log points at them)."""

    form = ApiKeyForm
    list_display = (
        "name",
        "prefix_display",
        "scopes_display",
        "last_used_at",
        "expires_at",
        "state",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix_display", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    @admin.display(description=_("prefix"))
    def prefix_display(self, obj):
        return f"cdr_{obj.prefix}_…" if obj.prefix else "—"

    @admin.display(description=_("scopes"))
    def scopes_display(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.revoked_at:
            return gettext("revoked")
        if not obj.is_usable():
            return gettext("expired")
        return gettext("active")

    def get_fields(self, request, obj=None):
        if obj is None:
            return (
                ("clinic", "name", "scopes", "expires_at")
                if self._shows_clinic(request)
                else (
                    "name",
                    "scopes",
                    "expires_at",
                )
            )
        return (
            "name",
            "scopes",
            "prefix_display",
            "expires_at",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def _shows_clinic(self, request) -> bool:
        return "clinic" not in (self.get_exclude(request) or [])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "name",
            "scopes",
            "prefix_display",
            "expires_at",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are not edited
        key, secret = api_key_create(
            clinic=obj.clinic,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            by=request.user,
        )
        obj.pk = key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            format_html(
                "{} <code>{}</code>",
                gettext("Copy this key now: it will not be shown again."),
                secret,
            ),
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, gettext("%(count)d key(s) revoked.") % {"count": len(queryset)})


@admin.register(ApiRequestLog)
class ApiRequestLogAdmin(ReadOnlyScopedAdmin):
    list_display = ("created_at", "api_key", "method", "path", "status", "latency_ms")
    list_filter = ("method", "status")
    list_select_related = ("api_key",)
    search_fields = ("path",)
    date_hierarchy = "created_at"
