"""Admin: domain events, their deliveries, and the dead-letter list."""

import json
from datetime import timedelta

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..choices import DeliveryStatus
from ..models import DeadLetter, Delivery, DeliveryAttempt, Event
from ..outbox import delivery_archive, delivery_retry
from .base import ClinicScopedAdmin


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ("subscriber", "status", "attempts", "next_attempt_at", "last_error")
    readonly_fields = fields
    show_change_link = False


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, ClinicScopedAdmin):
    """Every published event, with where it went."""

    list_display = ("created_at", "event_type", "id")
    list_filter = ("event_type", "created_at")
    search_fields = ("=id", "event_type")
    date_hierarchy = "created_at"
    fields = ("id", "clinic", "event_type", "created_at", "payload_pretty")
    readonly_fields = fields
    inlines = (DeliveryInline,)
    show_full_result_count = False

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj):
        return _pretty_json(obj.payload)


class DeadSinceFilter(admin.SimpleListFilter):
    title = _("dead since")
    parameter_name = "age"

    RANGES = {
        "hour": (None, timedelta(hours=1)),
        "day": (timedelta(hours=1), timedelta(days=1)),
        "week": (timedelta(days=1), timedelta(days=7)),
        "older": (timedelta(days=7), None),
    }

    def lookups(self, request, model_admin):
        return (
            ("hour", _("less than an hour")),
            ("day", _("1 to 24 hours")),
            ("week", _("1 to 7 days")),
            ("older", _("more than 7 days")),
        )

    def queryset(self, request, queryset):
        if self.value() not in self.RANGES:
            return queryset
        newer_than, older_than = self.RANGES[self.value()]
        now = timezone.now()
        if newer_than is not None:
            queryset = queryset.filter(dead_at__lte=now - newer_than)
        if older_than is not None:
            queryset = queryset.filter(dead_at__gt=now - older_than)
        return queryset


class SubscriberFilter(admin.SimpleListFilter):
    title = _("subscriber")
    parameter_name = "subscriber"

    def lookups(self, request, model_admin):
        names = (
            model_admin.get_queryset(request)
            .order_by("subscriber")
            .values_list("subscriber", flat=True)
            .distinct()
        )
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(subscriber=self.value()) if self.value() else queryset


class AttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ("number", "started_at", "duration_ms", "succeeded", "error")
    readonly_fields = fields


@admin.register(DeadLetter)
class DeadLetterAdmin(ClinicScopedAdmin):
    """Deliveries that failed every attempt: retry them once the cause is fixed, or
    archive them."""

    list_display = ("dead_at", "event_type", "subscriber", "attempts", "short_error")
    list_filter = ("event_type", SubscriberFilter, DeadSinceFilter)
    search_fields = ("=event__id", "subscriber", "last_error")
    list_select_related = ("event",)
    actions = ("retry", "archive")
    fields = (
        "clinic",
        "event_link",
        "event_type",
        "subscriber",
        "attempts",
        "dead_at",
        "last_error",
        "payload_pretty",
    )
    readonly_fields = fields
    inlines = (AttemptInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=DeliveryStatus.DEAD)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return (obj.last_error or "")[:120]

    @admin.display(description=_("event"))
    def event_link(self, obj):
        return f"{obj.event.event_type} {obj.event_id}"

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj):
        return _pretty_json(obj.event.payload)

    @admin.action(description=_("Retry the selected dead letters"), permissions=["change"])
    def retry(self, request, queryset):
        with transaction.atomic():
            count = 0
            for delivery in queryset.select_for_update():
                delivery_retry(delivery=delivery)
                count += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery will be tried again.",
                "%(count)d deliveries will be tried again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Archive the selected dead letters"), permissions=["change"])
    def archive(self, request, queryset):
        with transaction.atomic():
            count = 0
            for delivery in queryset.select_for_update():
                delivery_archive(delivery=delivery)
                count += 1
        self.message_user(
            request,
            ngettext("%(count)d dead letter archived.", "%(count)d dead letters archived.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        """Nothing on a dead letter is edited by hand: every field is read-only, and the
        "change" permission only gates the retry and archive actions."""
