"""Partner API of the integrations: the clinic's domain events, its webhook subscriptions,
its dead letters and the health of its integrations.

Built on the partner API framework, ``clinic.partner_api``, the one part of clinic below
integrations (with the kernel): this app imports nothing else of clinic (DESIGN.md
"Layers"). The routes are joined in ``config/api.py``.

- ``GET /api/v1/events/`` (``events:read``)
- ``/api/v1/webhooks/`` CRUD and ``POST …/{id}/ping/`` (``webhooks:manage``)
- ``GET /api/v1/dlq/``, ``POST …/{id}/retry/``, ``POST …/{id}/archive/`` (``dlq:manage``)
- ``GET /api/v1/health/integrations`` (any key of the clinic)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.partner_api.fields import ClinicDateTimeField, ClinicTimeField
from clinic.partner_api.models import ApiKey
from clinic.partner_api.views import Cursor, PartnerAPIMixin, created

from . import outbox, subscriptions
from .choices import DeliveryStatus
from .events import EVENT_TYPES
from .health import integrations_health
from .models import DeadLetter, Event, WebhookSubscription

EVENTS = "events:read"
WEBHOOKS = "webhooks:manage"
DLQ = "dlq:manage"


class ClinicAPIMixin(PartnerAPIMixin):
    """Serializers get the key's clinic (datetimes are shown in its time zone)."""

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "clinic": self.clinic}


# --- Events ---------------------------------------------------------------------------------
class EventSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    type = serializers.CharField(source="event_type", read_only=True)
    created_at = ClinicTimeField(read_only=True)
    payload = serializers.JSONField(read_only=True)


class EventFilterInput(serializers.Serializer):
    type = serializers.MultipleChoiceField(choices=sorted(EVENT_TYPES), required=False)
    created_after = ClinicDateTimeField(required=False)
    created_before = ClinicDateTimeField(required=False)


class EventCursor(Cursor):
    # Event ids are UUIDs: their order means nothing, time does.
    ordering = ("-created_at", "-id")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "type", str, many=True, description="Event type; repeat it or separate by commas."
            ),
            OpenApiParameter("created_after", str, description="ISO 8601 date-time."),
            OpenApiParameter("created_before", str, description="ISO 8601 date-time."),
        ]
    )
)
class EventViewSet(ClinicAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The clinic's domain events, newest first (the same the webhooks carry)."""

    serializer_class = EventSerializer
    required_scopes = {"GET": EVENTS, "HEAD": EVENTS}
    pagination_class = EventCursor

    def get_queryset(self):
        return Event.objects.for_clinic(self.clinic)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        types = [
            t.strip()
            for value in self.request.query_params.getlist("type")
            for t in value.split(",")
            if t.strip()
        ]
        raw = {k: v for k, v in self.request.query_params.items() if k != "type"}
        params = EventFilterInput(data={**raw, **({"type": types} if types else {})})
        params.is_valid(raise_exception=True)
        wanted = params.validated_data
        if wanted.get("type"):
            queryset = queryset.filter(event_type__in=wanted["type"])
        if "created_after" in wanted:
            queryset = queryset.filter(created_at__gt=wanted["created_after"])
        if "created_before" in wanted:
            queryset = queryset.filter(created_at__lt=wanted["created_before"])
        return queryset


# --- Webhook subscriptions ------------------------------------------------------------------
class PingSerializer(serializers.Serializer):
    """The last test ping: sent by a worker after ``POST …/ping/`` answered 202."""

    status = serializers.SerializerMethodField()
    requested_at = ClinicTimeField(source="ping_requested_at", read_only=True, allow_null=True)
    answered_at = ClinicTimeField(source="ping_answered_at", read_only=True, allow_null=True)
    ok = serializers.BooleanField(source="ping_ok", read_only=True, allow_null=True)
    detail = serializers.CharField(source="ping_detail", read_only=True)

    @extend_schema_field({"type": "string", "enum": ["never", "pending", "succeeded", "failed"]})
    def get_status(self, subscription) -> str:
        if subscription.ping_requested_at is None:
            return "never"
        if subscription.ping_answered_at is None:
            return "pending"
        return "succeeded" if subscription.ping_ok else "failed"


class WebhookSubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)
    active = serializers.BooleanField(read_only=True)
    created_at = ClinicTimeField(read_only=True)
    updated_at = ClinicTimeField(read_only=True)
    ping = PingSerializer(source="*", read_only=True)


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(source="signing_secret", read_only=True)


class WebhookSubscriptionInput(serializers.Serializer):
    """The URL and event types are checked by ``integrations.subscriptions`` (http/https
    only, event types from the catalogue); empty ``event_types`` means every event."""

    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=len(EVENT_TYPES)
    )
    active = serializers.BooleanField(required=False)


@extend_schema_view(
    create=extend_schema(
        request=WebhookSubscriptionInput, responses={201: WebhookSubscriptionCreatedSerializer}
    ),
    partial_update=extend_schema(
        request=WebhookSubscriptionInput, responses=WebhookSubscriptionSerializer
    ),
)
class WebhookSubscriptionViewSet(ClinicAPIMixin, viewsets.ModelViewSet):
    """Where the clinic's events are posted. The signing secret is shown once, in the
    answer to the ``POST`` that creates the subscription."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    serializer_class = WebhookSubscriptionSerializer
    required_scopes = {
        "GET": WEBHOOKS,
        "HEAD": WEBHOOKS,
        "POST": WEBHOOKS,
        "PATCH": WEBHOOKS,
        "DELETE": WEBHOOKS,
    }

    def get_queryset(self):
        return WebhookSubscription.objects.for_clinic(self.clinic)

    def create(self, request):
        data = WebhookSubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data
        subscription = subscriptions.subscription_create(
            clinic=self.clinic,
            name=wanted.get("name") or urlsplit(wanted["url"]).hostname or "",
            url=wanted["url"],
            event_types=wanted.get("event_types", []),
            active=wanted.get("active", True),
        )
        context = self.get_serializer_context()
        return created(WebhookSubscriptionCreatedSerializer(subscription, context=context).data)

    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        data = WebhookSubscriptionInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data
        subscription = subscriptions.subscription_update(
            subscription=subscription,
            name=wanted.get("name") or subscription.name,
            url=wanted.get("url", subscription.url),
            event_types=wanted.get("event_types", subscription.event_types),
            active=wanted.get("active", subscription.active),
        )
        return Response(self.get_serializer(subscription).data)

    def perform_destroy(self, instance):
        subscriptions.subscription_delete(subscription=instance)

    @extend_schema(request=None, responses={202: PingSerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Have a worker post a signed ``ping`` event to the URL: 202 at once, with the
        ping ``pending``; its answer then shows in the subscription's ``ping`` (GET)."""
        subscription = subscriptions.subscription_ping_request(subscription=self.get_object())
        return Response(PingSerializer(subscription).data, status=status.HTTP_202_ACCEPTED)


# --- Dead letters ---------------------------------------------------------------------------
class DeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(read_only=True)
    subscriber = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    last_error = serializers.CharField(read_only=True)
    payload = serializers.JSONField(source="event.payload", read_only=True)
    event_created_at = ClinicTimeField(source="event.created_at", read_only=True)
    dead_at = ClinicTimeField(read_only=True, allow_null=True)
    updated_at = ClinicTimeField(read_only=True)


class DeadLetterFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[DeliveryStatus.DEAD, DeliveryStatus.ARCHIVED], default=DeliveryStatus.DEAD
    )
    event_type = serializers.ChoiceField(choices=sorted(EVENT_TYPES), required=False)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["dead", "archived"], default="dead"),
            OpenApiParameter("event_type", str),
        ]
    )
)
class DeadLetterViewSet(ClinicAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Deliveries that ran out of attempts. Retrying gives one a fresh set of attempts;
    archiving takes it off the list (its history is kept)."""

    serializer_class = DeadLetterSerializer
    required_scopes = {"GET": DLQ, "HEAD": DLQ, "POST": DLQ}

    def get_queryset(self):
        return (
            DeadLetter.objects.for_clinic(self.clinic)
            .filter(status__in=[DeliveryStatus.DEAD, DeliveryStatus.ARCHIVED])
            .select_related("event")
        )

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = DeadLetterFilterInput(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        queryset = queryset.filter(status=params.validated_data["status"])
        if "event_type" in params.validated_data:
            queryset = queryset.filter(event_type=params.validated_data["event_type"])
        return queryset

    @extend_schema(request=None, responses={202: DeadLetterSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Deliver it again (from a first attempt, starting now)."""
        delivery = outbox.delivery_retry(delivery=self.get_object())
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Take it off the dead-letter list without delivering it."""
        delivery = self.get_object()
        if delivery.status != DeliveryStatus.ARCHIVED:
            delivery = outbox.delivery_archive(delivery=delivery)
        return Response(self.get_serializer(delivery).data)


# --- Health ---------------------------------------------------------------------------------
class AnyKeyOfTheClinic(BasePermission):
    """Any valid key (whatever its scopes); staff sessions read only."""

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff) and (
            request.method in SAFE_METHODS
        )


class IntegrationsHealthView(PartnerAPIMixin, APIView):
    """How the clinic's providers and outbox are doing (``/health/integrations``, for this
    clinic only)."""

    permission_classes = [AnyKeyOfTheClinic]

    @extend_schema(responses={200: dict})
    def get(self, request):
        clinic_ids = [self.clinic.pk] if self.clinic is not None else []
        return Response(integrations_health(clinic_ids=clinic_ids))
