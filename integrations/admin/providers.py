"""Admin: provider accounts (the clinic's chains), the outbound call log, and what console
providers would have sent.

Credentials are write-only here: the page shows each stored value masked (``••••1234``) and
takes a whole new JSON object to replace them, checked against the provider's
``credentials_schema``. Nothing in this module ever renders a stored secret in full.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import HealthResult, ProviderError
from ..choices import ProviderKind
from ..crypto import mask
from ..http import redact
from ..models import ConsoleRecord, ExternalCall, ProviderAccount
from .base import ClinicScopedAdmin

#: Long strings (a stored file's base64) are cut in the detail pages.
JSON_STRING_DISPLAY_MAX = 500


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted: a form
    sent back with an error must not echo the secrets typed into it."""

    def format_value(self, value):
        return None


def _provider_class(kind: str, name: str):
    try:
        return registry.get(kind, name)
    except registry.UnknownProvider:
        return None


class ProviderAccountForm(forms.ModelForm):
    """Picks a registered provider for the kind; replaces the credentials only when new
    ones are typed, after checking them against the provider's schema."""

    provider = forms.ChoiceField(label=_("provider"))
    new_credentials = forms.CharField(
        label=_("new credentials (JSON object)"),
        required=False,
        strip=True,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            'Replaces every stored credential, e.g. {"token": "…"}. Leave empty to keep the '
            "current ones. Never shown again after saving."
        ),
    )

    class Meta:
        model = ProviderAccount
        # Never "credentials": the stored secrets must not reach a form widget.
        fields = ("clinic", "kind", "provider", "label", "priority", "enabled", "settings")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._new_credentials: dict | None = None
        groups = [
            (label, registry.choices(kind))
            for kind, label in ProviderKind.choices
            if registry.choices(kind)
        ]
        current = self.instance.provider if self.instance.pk else ""
        known = {name for _label, options in groups for name, _ in options}
        if current and current not in known:
            groups.append((gettext("Not installed"), [(current, current)]))
        if "provider" in self.fields:
            self.fields["provider"].choices = [("", "---------"), *groups]
            self.fields["provider"].help_text = gettext(
                "Each kind lists its own providers; console providers send nothing."
            )

    def clean(self):
        cleaned = super().clean()
        kind, name = cleaned.get("kind"), cleaned.get("provider")
        if not kind or not name:
            return cleaned
        provider_class = _provider_class(kind, name)
        if provider_class is None:
            self.add_error(
                "provider",
                gettext("No installed provider %(provider)s serves %(kind)s.")
                % {"provider": name, "kind": ProviderKind(kind).label},
            )
            return cleaned
        schema = provider_class.credentials_schema
        raw = cleaned.get("new_credentials") or ""
        if raw:
            self._new_credentials = self._parse_credentials(raw, schema)
        elif self.instance.pk:
            # Switching provider keeps no credentials the new one would not understand.
            stale = set(self.instance.credentials or {}) - set(schema)
            if stale:
                self.add_error(
                    "new_credentials",
                    gettext("The stored credentials do not fit %(provider)s: enter its own.")
                    % {"provider": name},
                )
        return cleaned

    def _parse_credentials(self, raw: str, schema: dict[str, str]) -> dict | None:
        expected = ", ".join(sorted(schema)) or gettext("no credentials")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            # The decoder's message names a position, never the text itself.
            self.add_error(
                "new_credentials",
                gettext("This is not valid JSON (%(error)s).") % {"error": exc.args[0]},
            )
            return None
        if not isinstance(data, dict):
            self.add_error(
                "new_credentials",
                gettext('Enter a JSON object, e.g. {"token": "…"}. Expected keys: %(keys)s.')
                % {"keys": expected},
            )
            return None
        unknown = sorted(set(data) - set(schema))
        if unknown:
            self.add_error(
                "new_credentials",
                gettext("Unknown keys: %(unknown)s. This provider expects: %(keys)s.")
                % {"unknown": ", ".join(unknown), "keys": expected},
            )
            return None
        not_text = sorted(key for key, value in data.items() if not isinstance(value, str))
        if not_text:
            self.add_error(
                "new_credentials",
                gettext("Values must be text (in quotes): %(keys)s.")
                % {"keys": ", ".join(not_text)},
            )
            return None
        return {key: value for key, value in data.items() if value}

    def save(self, commit=True):
        if self._new_credentials is not None:
            self.instance.credentials = self._new_credentials
        return super().save(commit)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(ClinicScopedAdmin):
    """The clinic's chains: which provider serves each kind, in which order."""

    form = ProviderAccountForm
    list_display = ("__str__", "kind", "provider_display", "priority", "enabled")
    list_filter = ("kind", "enabled", "provider")
    list_select_related = ("clinic",)
    ordering = ("kind", "priority", "pk")
    search_fields = ("label", "provider")
    actions = ("run_health_check",)
    exclude = ("credentials",)
    readonly_fields = ("credentials_masked", "webhook_path", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("clinic", "kind", "provider", "label", "priority", "enabled")}),
        (
            _("Credentials"),
            {
                "fields": ("credentials_masked", "new_credentials"),
                "description": _("Stored encrypted; only the last characters are shown."),
            },
        ),
        (_("Settings"), {"fields": ("settings",)}),
        (_("Inbound webhook"), {"fields": ("webhook_path", "created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        may_write = (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        )
        if may_write:
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "new_credentials"]})
            for name, opts in fieldsets
        ]

    @admin.display(description=_("provider"), ordering="provider")
    def provider_display(self, obj):
        provider_class = _provider_class(obj.kind, obj.provider)
        if provider_class is None:
            return format_html("{} <em>({})</em>", obj.provider, gettext("not installed"))
        return provider_class.label or provider_class.name

    @admin.display(description=_("stored credentials"))
    def credentials_masked(self, obj):
        stored = (obj.credentials or {}) if obj else {}
        provider_class = _provider_class(obj.kind, obj.provider) if obj and obj.pk else None
        keys = list(provider_class.credentials_schema) if provider_class else []
        keys += [key for key in sorted(stored) if key not in keys]
        if not keys:
            return gettext("none")
        return format_html_join(
            "",
            "<div><code>{}</code>: {}</div>",
            ((key, mask(stored[key]) if stored.get(key) else gettext("not set")) for key in keys),
        )

    @admin.display(description=_("webhook URL path"))
    def webhook_path(self, obj):
        if not obj or not obj.pk:
            return gettext("Shown after saving.")
        # The route of integrations/urls.py: /webhooks/<provider>/<webhook_token>/.
        return format_html("<code>/webhooks/{}/{}/</code>", obj.provider, obj.webhook_token)

    @admin.action(description=_("Run health check"), permissions=["change"])
    def run_health_check(self, request, queryset):
        """Calls each selected account's ``health()`` probe and reports what it said."""
        for account in queryset:
            provider_class = _provider_class(account.kind, account.provider)
            if provider_class is None:
                self.message_user(
                    request,
                    gettext("%(account)s: provider %(provider)s is not installed.")
                    % {"account": account, "provider": account.provider},
                    messages.ERROR,
                )
                continue
            provider = provider_class(account)
            try:
                result = provider.health()
            except ProviderError as exc:
                result = HealthResult(ok=False, detail=str(exc))
            except NotImplementedError:
                result = HealthResult(ok=False, detail=gettext("This provider has no probe."))
            detail = redact(result.detail, provider.secrets())
            if result.ok:
                text = gettext("%(account)s: healthy. %(detail)s")
            else:
                text = gettext("%(account)s: failing. %(detail)s")
            self.message_user(
                request,
                (text % {"account": account, "detail": detail}).strip(),
                messages.SUCCESS if result.ok else messages.ERROR,
            )


class ReadOnlyAdmin(ClinicScopedAdmin):
    """Logs: nobody adds, edits or deletes them here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _shorten(value):
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, str) and len(value) > JSON_STRING_DISPLAY_MAX:
        return value[:JSON_STRING_DISPLAY_MAX] + "…"
    return value


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(_shorten(value), indent=2, ensure_ascii=False, sort_keys=True),
    )


@admin.register(ExternalCall)
class ExternalCallAdmin(ReadOnlyAdmin):
    """Every attempt of every outbound call: status, latency, error. No bodies, no
    secrets, host only."""

    list_display = (
        "created_at",
        "provider",
        "operation",
        "method",
        "host",
        "status_code",
        "succeeded",
        "latency_ms",
        "attempt",
        "error_class",
        "account",
    )
    list_filter = ("provider", "operation", "succeeded", "created_at")
    list_select_related = ("clinic", "account")
    search_fields = ("=correlation_id",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = (
        "clinic",
        "account",
        "created_at",
        "provider",
        "operation",
        "method",
        "host",
        "status_code",
        "succeeded",
        "latency_ms",
        "attempt",
        "error_class",
        "error_message",
        "correlation_id",
    )
    readonly_fields = fields


@admin.register(ConsoleRecord)
class ConsoleRecordAdmin(ReadOnlyAdmin):
    """What the console (sandbox) providers would have sent."""

    list_display = ("created_at", "kind", "operation", "recipient")
    list_filter = ("kind", "operation", "created_at")
    list_select_related = ("clinic",)
    search_fields = ("recipient",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "clinic",
        "created_at",
        "kind",
        "provider",
        "operation",
        "recipient",
        "payload_pretty",
        "response_pretty",
    )
    readonly_fields = fields

    @admin.display(description=_("what would have been sent"))
    def payload_pretty(self, obj):
        return _pretty_json(obj.payload)

    @admin.display(description=_("what the console answered"))
    def response_pretty(self, obj):
        return _pretty_json(obj.response)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": gettext("Console records: what would have been sent"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)
