"""Admin: inbound webhooks (read-only, with "process again") and partner webhook
subscriptions (secret shown once, rotation, test ping)."""

from __future__ import annotations

import contextlib
import json

from django import forms
from django.contrib import admin, messages
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..choices import InboundWebhookStatus
from ..crypto import mask
from ..events import EVENT_TYPES
from ..inbound import QUERY_KEY, inbound_webhook_retry
from ..models import InboundWebhook, WebhookSubscription
from ..subscriptions import (
    ROTATION_GRACE,
    InvalidSubscription,
    subscription_create,
    subscription_ping_request,
    subscription_secret_rotate,
    subscription_update,
    subscription_validate,
)
from .base import ClinicScopedAdmin

#: Bodies beyond this are cut in the detail page (the stored body stays whole).
BODY_DISPLAY_MAX = 100_000


def _pretty(raw: bytes) -> str:
    """A stored body as text: indented JSON when it is JSON, else the text itself."""
    text = raw.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):  # not JSON: shown as it came
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    if len(text) > BODY_DISPLAY_MAX:
        text = text[:BODY_DISPLAY_MAX] + "\n…"
    return text


@admin.register(InboundWebhook)
class InboundWebhookAdmin(ClinicScopedAdmin):
    """What providers sent us, as they sent it. Read-only: the stored request is the
    evidence of what happened; the only action is to process a failed one again."""

    list_display = ("received_at", "provider", "status", "attempts", "dedupe_key")
    list_filter = ("provider", "status", "received_at")
    search_fields = ("dedupe_key",)
    date_hierarchy = "received_at"
    list_per_page = 50
    actions = ("process_again",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "clinic",
                    "provider",
                    "account",
                    "path",
                    "status",
                    "error",
                    "attempts",
                    "next_attempt_at",
                    "received_at",
                    "processed_at",
                    "dedupe_key",
                )
            },
        ),
        (gettext_lazy("Request"), {"fields": ("content_type", "headers_display", "body_display")}),
    )
    readonly_fields = (
        "clinic",
        "provider",
        "account",
        "path",
        "status",
        "error",
        "attempts",
        "next_attempt_at",
        "received_at",
        "processed_at",
        "dedupe_key",
        "content_type",
        "headers_display",
        "body_display",
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and (obj.status == InboundWebhookStatus.FAILED or obj.attempts):
            return fieldsets
        # The reason only means something for failed webhooks (or ones waiting for a retry).
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "error"]})
            for name, opts in fieldsets
        ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_process_permission(self, request):
        # Processing again changes state, so it takes the model's change permission even
        # though the admin never edits a stored request.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.display(description=gettext_lazy("headers"))
    def headers_display(self, obj: InboundWebhook) -> str:
        headers = dict(obj.headers or {})
        query = headers.pop(QUERY_KEY, None)
        text = json.dumps(headers, indent=2, ensure_ascii=False, sort_keys=True)
        if query:
            text += "\n\n" + _("Query string:") + "\n"
            text += json.dumps(query, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description=gettext_lazy("body"))
    def body_display(self, obj: InboundWebhook) -> str:
        return format_html("<pre>{}</pre>", _pretty(bytes(obj.body or b"")))

    @admin.action(description=gettext_lazy("Process again"), permissions=["process"])
    def process_again(self, request, queryset):
        failed = list(
            queryset.filter(status=InboundWebhookStatus.FAILED).values_list("pk", flat=True)
        )
        skipped = queryset.count() - len(failed)
        results = [inbound_webhook_retry(webhook_id=pk) for pk in failed]
        still_failed = [w for w in results if w and w.status == InboundWebhookStatus.FAILED]
        done = len(results) - len(still_failed)
        if done:
            messages.success(
                request,
                ngettext(
                    "%(count)d webhook processed again.",
                    "%(count)d webhooks processed again.",
                    done,
                )
                % {"count": done},
            )
        for webhook in still_failed:
            messages.error(
                request,
                _("Webhook %(key)s failed again: %(error)s")
                % {"key": webhook.dedupe_key, "error": webhook.error},
            )
        if skipped:
            messages.info(
                request,
                ngettext(
                    "%(count)d webhook skipped: only failed webhooks are processed again.",
                    "%(count)d webhooks skipped: only failed webhooks are processed again.",
                    skipped,
                )
                % {"count": skipped},
            )


class WebhookSubscriptionForm(forms.ModelForm):
    """The subscription as a clinic admin edits it; the secret is never a form field."""

    # assume_scheme: a partner URL typed without a scheme is meant to be https.
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Event types"),
        choices=[(name, name) for name in sorted(EVENT_TYPES)],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=gettext_lazy("Leave all unchecked to receive every event."),
    )

    class Meta:
        model = WebhookSubscription
        fields = ("clinic", "name", "url", "event_types", "active")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned["event_types"] = subscription_validate(
                name=cleaned.get("name", ""),
                url=cleaned.get("url", ""),
                event_types=list(cleaned.get("event_types") or []),
            )
        except InvalidSubscription as exc:
            for field, errors in exc.fields.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return cleaned


def _secret_message(subscription: WebhookSubscription, secret: str) -> str:
    return format_html(
        "{} <code>{}</code>",
        _(
            "Signing secret of %(name)s — copy it now and give it to the partner: it will "
            "not be shown again."
        )
        % {"name": subscription.name},
        secret,
    )


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ClinicScopedAdmin):
    """Partner systems that receive the clinic's events, signed with a per-subscription
    secret that is shown in full exactly once (on creation or rotation)."""

    form = WebhookSubscriptionForm
    list_display = (
        "name",
        "url",
        "event_types_display",
        "active",
        "secret_display",
        "ping_display",
    )
    list_filter = ("active",)
    search_fields = ("name", "url")
    actions = ("rotate_secret", "send_test_ping")
    fieldsets = (
        (None, {"fields": ("clinic", "name", "url", "active")}),
        (gettext_lazy("Events"), {"fields": ("event_types",)}),
        (gettext_lazy("Signing"), {"fields": ("secret_display", "created_at", "updated_at")}),
        (gettext_lazy("Test ping"), {"fields": ("ping_display",)}),
    )
    readonly_fields = ("secret_display", "created_at", "updated_at", "ping_display")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            # Nothing to show before it exists: the secret is generated on save.
            hidden = ("secret_display", "ping_display")
            return [fs for fs in fieldsets if not set(hidden) & set(fs[1]["fields"])]
        return fieldsets

    @admin.display(description=gettext_lazy("event types"))
    def event_types_display(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.event_types) if obj.event_types else _("all events")

    @admin.display(description=gettext_lazy("signing secret"))
    def secret_display(self, obj: WebhookSubscription) -> str:
        return mask(obj.signing_secret) if obj.signing_secret else "—"

    @admin.display(description=gettext_lazy("last ping"))
    def ping_display(self, obj: WebhookSubscription) -> str:
        if obj.ping_requested_at is None:
            return "—"
        if obj.ping_answered_at is None:
            return _("waiting for the answer (asked %(when)s)") % {
                "when": date_format(localtime(obj.ping_requested_at), "SHORT_DATETIME_FORMAT")
            }
        return obj.ping_detail

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            subscription_update(
                subscription=obj,
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
                active=data["active"],
            )
            return
        saved = subscription_create(
            clinic=obj.clinic,
            name=data["name"],
            url=data["url"],
            event_types=data["event_types"],
            active=data["active"],
        )
        # The admin goes on with the form's instance (history entry, redirect): make it
        # the saved row.
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db
        request._cuidar_new_secret = saved.signing_secret

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        secret = getattr(request, "_cuidar_new_secret", "")
        if secret:
            messages.warning(request, _secret_message(obj, secret))
        return response

    @admin.action(description=gettext_lazy("Rotate the signing secret"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            secret = subscription_secret_rotate(subscription=subscription)
            messages.warning(request, _secret_message(subscription, secret))
        hours = int(ROTATION_GRACE.total_seconds() // 3600)
        messages.info(
            request,
            _(
                "The previous secret keeps signing alongside the new one for %(hours)d hours, "
                "so the partner can switch without losing events."
            )
            % {"hours": hours},
        )

    @admin.action(description=gettext_lazy("Send a test ping"), permissions=["change"])
    def send_test_ping(self, request, queryset):
        # A worker sends it (a slow partner must not hold this web request); the answer
        # appears in the "last ping" column.
        count = 0
        for subscription in queryset:
            subscription_ping_request(subscription=subscription)
            count += 1
        messages.info(
            request,
            ngettext(
                "A test ping to %(count)d subscription is on its way: its answer appears in "
                "the “last ping” column in a few seconds (reload the page).",
                "Test pings to %(count)d subscriptions are on their way: their answers appear "
                "in the “last ping” column in a few seconds (reload the page).",
                count,
            )
            % {"count": count},
        )
