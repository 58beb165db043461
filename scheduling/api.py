"""The agenda in the partner API (``/api/v1/``): services, professionals, free slots and
appointments.

Built on ``clinic.partner_api`` (keys, scopes, throttling, cursors, problem+json,
idempotency). Every queryset starts from the key's clinic (``self.clinic``): another
clinic's id is a 404 on a detail route, absent from a list, and a field error in a body or
a query string. Every write goes through ``scheduling.services`` with ``via=Channel.API``.

Datetimes leave in the clinic's time zone with their offset (``2026-03-02T09:00:00-03:00``)
and must arrive with an offset: a partner's "09:00" is never guessed.
"""

from __future__ import annotations

import decimal
import functools
from datetime import timedelta

from django.db import models
from django.db.models import F, Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from clinic.api import ClinicRelatedField
from clinic.choices import Council
from clinic.kernel.timezones import clinic_zone
from clinic.models import Patient, Professional, Room
from clinic.partner_api.fields import ClinicDateTimeField, StrictPrimaryKeyRelatedField
from clinic.partner_api.problems import problem_exception_handler
from clinic.partner_api.views import Cursor, PartnerAPIMixin, created

from .agenda_setup import agenda_setup
from .availability import slot_list_available
from .availability_cache import availability_answer_get, availability_answer_set
from .choices import AppointmentStatus, Channel
from .exceptions import SlotUnavailable, wrong_pair_message
from .models import Appointment, Service
from .services import (
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_reschedule,
)

#: The longest range one availability request may ask for.
AVAILABILITY_MAX_DAYS = 31


def _reads(scope: str) -> dict[str, str]:
    return {"GET": scope, "HEAD": scope}


# --- Fields ---------------------------------------------------------------------------------
class CommaSeparatedChoicesField(serializers.MultipleChoiceField):
    """``?status=scheduled,confirmed`` or ``?status=scheduled&status=confirmed``."""

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        if isinstance(value, list | tuple):
            return [part.strip() for item in value for part in str(item).split(",") if part]
        return value


def _active_services(clinic):
    return Service.objects.for_clinic(clinic).filter(is_active=True)


def _active_professionals(clinic):
    return Professional.objects.for_clinic(clinic).filter(is_active=True)


# --- Serializers ----------------------------------------------------------------------------
class ServiceSerializer(serializers.ModelSerializer):
    """A service the clinic books; ``professionals``: the active ones who perform it."""

    professionals = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = ["id", "name", "category", "duration_minutes", "price", "professionals"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_professionals(self, service: Service) -> list[int]:
        return [professional.pk for professional in service.professionals.all()]


class ProfessionalSerializer(serializers.ModelSerializer):
    """``registration`` as printed on documents, e.g. ``CRM 123456/SP``."""

    name = serializers.CharField(source="full_name", read_only=True)
    # Declared: a read-only model field loses allow_blank, and the schema would then
    # promise a council to professionals who have none ("").
    council = serializers.ChoiceField(choices=Council.choices, allow_blank=True, read_only=True)
    registration = serializers.CharField(source="registration_display", read_only=True)

    class Meta:
        model = Professional
        fields = ["id", "name", "specialty", "council", "registration"]
        read_only_fields = fields


class SlotSerializer(serializers.Serializer):
    start = ClinicDateTimeField()
    end = ClinicDateTimeField()
    professional = serializers.IntegerField(source="professional_id")
    room = serializers.IntegerField(source="room_id", allow_null=True)


class AvailabilityAnswerSerializer(serializers.Serializer):
    """What ``/availability`` answers: the free slots under ``results``, earliest first
    (not paginated: at most 31 days of one service). Describes the schema only."""

    results = SlotSerializer(many=True)


class SetupRelatedField(StrictPrimaryKeyRelatedField):
    """A primary key looked up in the agenda setup's active services or professionals
    (``context["setup"]``, ``choices``: which) instead of the database, with DRF's own
    messages. ``queryset`` still describes the field (schema, browsable API)."""

    def __init__(self, *, choices: str, **kwargs):
        self.choices_name = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool | float):  # never truncated: 3.9 is not service 3
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            pk = int(data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        found = getattr(self.context["setup"], self.choices_name).get(pk)
        if found is None:
            self.fail("does_not_exist", pk_value=data)
        return found


class AvailabilityQuerySerializer(serializers.Serializer):
    """The query string of ``/availability``, checked against the clinic's agenda setup
    (``context["setup"]``): no query while a process keeps it current."""

    service = SetupRelatedField(choices="services", queryset=Service.objects.none())
    professional = SetupRelatedField(
        choices="professionals",
        queryset=Professional.objects.none(),
        required=False,
        allow_null=True,
    )
    start = ClinicDateTimeField()
    end = ClinicDateTimeField()

    def validate(self, attrs):
        errors = {}
        if attrs["end"] <= attrs["start"]:
            errors["end"] = [_("Must be after the start.")]
        elif attrs["end"] - attrs["start"] > timedelta(days=AVAILABILITY_MAX_DAYS):
            errors["end"] = [
                _("At most %(days)d days after the start.") % {"days": AVAILABILITY_MAX_DAYS}
            ]
        professional = attrs.get("professional")
        setup = self.context["setup"]
        if professional is not None and not setup.performs(attrs["service"].pk, professional.pk):
            errors["professional"] = [_("This professional does not perform this service.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AppointmentSerializer(serializers.ModelSerializer):
    """An appointment as partners see it (internal notes stay inside the clinic).
    ``replaces``/``replaced_by``: the appointment it was rescheduled from / to."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: ClinicDateTimeField,
    }
    replaced_by = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "professional",
            "service",
            "room",
            "start",
            "end",
            "status",
            "price",
            "booked_via",
            "notes",
            "confirmed_at",
            "cancelled_at",
            "cancellation_reason",
            "late_cancellation",
            "replaces",
            "replaced_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_replaced_by(self, appointment: Appointment) -> int | None:
        # Annotated by the view's queryset: no query per row.
        return getattr(appointment, "replaced_by_pk", None)

    def to_representation(self, instance) -> dict:
        """What the declared fields would give (the schema describes those; a test holds
        the two equal), without DRF's per-field machinery: a page of 50 appointments is
        950 field values. ``instance``: an Appointment, or a row of ``LIST_COLUMNS``."""
        get = instance.__getitem__ if isinstance(instance, dict) else instance.__getattribute__
        when = self._datetime
        price = get("price")
        return {
            "id": get("id"),
            "patient": get("patient_id"),
            "professional": get("professional_id"),
            "service": get("service_id"),
            "room": get("room_id"),
            "start": when(get("start")),
            "end": when(get("end")),
            "status": get("status"),
            "price": None if price is None else f"{price.quantize(_CENTS, context=_PRICE):f}",
            "booked_via": get("booked_via"),
            "notes": get("notes"),
            "confirmed_at": when(get("confirmed_at")),
            "cancelled_at": when(get("cancelled_at")),
            "cancellation_reason": get("cancellation_reason"),
            "late_cancellation": bool(get("late_cancellation")),
            "replaces": get("replaces_id"),
            "replaced_by": get("replaced_by_pk")
            if isinstance(instance, dict)
            else getattr(instance, "replaced_by_pk", None),
            "created_at": when(get("created_at")),
            "updated_at": when(get("updated_at")),
        }

    def _datetime(self, value) -> str | None:
        """As ClinicDateTimeField writes it: ISO 8601 in the clinic's zone, ``Z`` for UTC."""
        if not value:
            return None
        zone = self.__dict__.get("_zone")
        if zone is None:
            clinic = self.context.get("clinic")
            zone = clinic_zone(clinic) if clinic else timezone.get_current_timezone()
            self._zone = zone
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


#: The columns a listed appointment is read from (plain rows: no model instances).
LIST_COLUMNS = (
    *("id", "patient_id", "professional_id", "service_id", "room_id", "start", "end"),
    *("status", "price", "booked_via", "notes", "confirmed_at", "cancelled_at"),
    *("cancellation_reason", "late_cancellation", "replaces_id", "replaced_by_pk"),
    *("created_at", "updated_at"),
)


@functools.cache
def _list_rows():
    """The appointment list's query before its filters, built once per process: resolving
    19 columns and a join is a tenth of the list's CPU. Never evaluated itself (it spans
    every clinic): each request filters a copy (``for_clinic`` first)."""
    return Appointment.objects.annotate(replaced_by_pk=F("replaced_by__id")).values(*LIST_COLUMNS)


_CENTS = decimal.Decimal("0.01")
_PRICE = decimal.Context(prec=Appointment._meta.get_field("price").max_digits)


class AppointmentBookSerializer(serializers.Serializer):
    """A booking; the professional and the service are checked against the clinic's agenda
    setup (``context["setup"]``), as ``/availability`` checks them."""

    patient = ClinicRelatedField(queryset=Patient.objects.all())
    professional = SetupRelatedField(choices="professionals", queryset=Professional.objects.none())
    service = SetupRelatedField(choices="services", queryset=Service.objects.none())
    start = ClinicDateTimeField()
    room = ClinicRelatedField(
        queryset=Room.objects.filter(is_active=True), required=False, allow_null=True, default=None
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs):
        setup = self.context["setup"]
        professional, service = attrs["professional"], attrs["service"]
        if not setup.performs(service.pk, professional.pk):
            offered = [s for s in setup.services.values() if setup.performs(s.pk, professional.pk)]
            raise serializers.ValidationError(
                {"professional": [wrong_pair_message(professional, service, offered)]}
            )
        return attrs


class AppointmentCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class AppointmentRescheduleSerializer(serializers.Serializer):
    start = ClinicDateTimeField()


class AppointmentFilterSerializer(serializers.Serializer):
    """The query string of the appointment list."""

    status = CommaSeparatedChoicesField(choices=AppointmentStatus.choices, required=False)
    professional = serializers.IntegerField(required=False, min_value=1)
    patient = serializers.IntegerField(required=False, min_value=1)
    service = serializers.IntegerField(required=False, min_value=1)
    start_from = ClinicDateTimeField(required=False, help_text="Starting at or after this.")
    start_to = ClinicDateTimeField(required=False, help_text="Starting before this.")


# --- Views ----------------------------------------------------------------------------------
class ByName(Cursor):
    ordering = ("name", "pk")


class ByFullName(Cursor):
    ordering = ("full_name", "pk")


class ByStart(Cursor):
    ordering = ("start", "pk")


class ClinicContextMixin:
    """Serializers see the clinic: its querysets, and its time zone for datetimes."""

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "clinic": self.clinic}


class ServiceViewSet(ClinicContextMixin, PartnerAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The clinic's active services."""

    queryset = Service.objects.none()
    serializer_class = ServiceSerializer
    pagination_class = ByName
    required_scopes = _reads("availability:read")
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        performers = _active_professionals(self.clinic).order_by("pk")
        return _active_services(self.clinic).prefetch_related(
            Prefetch("professionals", queryset=performers)
        )


class ProfessionalViewSet(ClinicContextMixin, PartnerAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The clinic's active professionals."""

    queryset = Professional.objects.none()
    serializer_class = ProfessionalSerializer
    pagination_class = ByFullName
    required_scopes = _reads("availability:read")
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return _active_professionals(self.clinic)


class AvailabilityView(PartnerAPIMixin, APIView):
    """Free slots of a service (of one professional, or of anyone who performs it) starting
    in ``[start, end)``, at most 31 days."""

    required_scopes = _reads("availability:read")

    def get_serializer_context(self):
        return {"request": self.request, "view": self, "clinic": self.clinic}

    @extend_schema(
        # The name it had while the answer was declared as a bare array: partners' generated
        # clients call it by this name (availability.availability_list in Python).
        operation_id="availability_list",
        parameters=[AvailabilityQuerySerializer],
        responses=AvailabilityAnswerSerializer,
    )
    def get(self, request):
        # The cached answer first: the versions must be read before the database is.
        place, kept, setup_version = availability_answer_get(
            clinic=self.clinic, params=request.query_params
        )
        if kept is not None:
            return Response({"results": kept})
        if self.clinic is None:  # staff working in no clinic
            raise serializers.ValidationError(
                {"service": [_("Choose a clinic at the top of the page first.")]}
            )
        now = timezone.now()
        setup = agenda_setup(self.clinic.pk, **({"version": setup_version} if place else {}))
        context = {**self.get_serializer_context(), "setup": setup}
        query = AvailabilityQuerySerializer(data=request.query_params, context=context)
        query.is_valid(raise_exception=True)
        slots = slot_list_available(
            clinic=self.clinic, now=now, setup=setup, **query.validated_data
        )
        results = SlotSerializer(slots, many=True, context=context).data
        wanted = query.validated_data
        availability_answer_set(
            place,
            service=wanted["service"],
            start=wanted["start"],
            end=wanted["end"],
            now=now,
            slots=slots,
            results=results,
        )
        return Response({"results": results})


def _problem_with_conflicts(exc, context):
    """problem+json, plus what clashes (professional, room, patient, hours) for a slot."""
    response = problem_exception_handler(exc, context)
    if response is not None and isinstance(exc, SlotUnavailable) and exc.conflicts:
        response.data["conflicts"] = list(exc.conflicts)
    return response


class AppointmentViewSet(
    ClinicContextMixin,
    PartnerAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The clinic's appointments: list (filters in the query string), retrieve, book,
    confirm, cancel, reschedule."""

    queryset = Appointment.objects.none()
    serializer_class = AppointmentSerializer
    pagination_class = ByStart
    required_scopes = {**_reads("appointments:read"), "POST": "appointments:write"}
    lookup_value_regex = r"\d+"

    def get_exception_handler(self):
        return _problem_with_conflicts

    def get_queryset(self):
        appointments = Appointment.objects.for_clinic(self.clinic).annotate(
            replaced_by_pk=F("replaced_by__id")
        )
        if self.action in ("confirm", "cancel", "reschedule"):
            # What the services read (clinic, patient, service …): loaded with the row.
            appointments = appointments.select_related(
                "clinic", "patient", "professional", "service", "room"
            )
        return appointments

    def _data(self, appointment: Appointment) -> dict:
        return AppointmentSerializer(appointment, context=self.get_serializer_context()).data

    @extend_schema(parameters=[AppointmentFilterSerializer])
    def list(self, request, *args, **kwargs):
        query = AppointmentFilterSerializer(
            data=request.query_params, context=self.get_serializer_context()
        )
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        conditions = {}  # one filter() call: each call copies the query
        if wanted.get("status"):
            conditions["status__in"] = sorted(wanted["status"])
        for name in ("professional", "patient", "service"):
            if name in wanted:
                conditions[f"{name}_id"] = wanted[name]
        if "start_from" in wanted:
            conditions["start__gte"] = wanted["start_from"]
        if "start_to" in wanted:
            conditions["start__lt"] = wanted["start_to"]
        rows = _list_rows().for_clinic(self.clinic).filter(**conditions)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=AppointmentBookSerializer, responses={201: AppointmentSerializer})
    def create(self, request, *args, **kwargs):
        """Book a free slot (as ``/availability`` lists them); 409 when it is taken."""
        setup = agenda_setup(self.clinic.pk)
        context = {**self.get_serializer_context(), "setup": setup}
        body = AppointmentBookSerializer(data=request.data, context=context)
        body.is_valid(raise_exception=True)
        appointment = appointment_book(
            clinic=self.clinic,
            booked_via=Channel.API,
            check_availability=True,
            setup=setup,
            **body.validated_data,
        )
        location = reverse("appointment-detail", args=[appointment.pk], request=request)
        return created(self._data(appointment), headers={"Location": location})

    @extend_schema(request=None, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """The patient confirmed they will come."""
        appointment = appointment_confirm(appointment=self.get_object(), via=Channel.API)
        return Response(self._data(appointment))

    @extend_schema(request=AppointmentCancelSerializer, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel; inside the service's cancellation window it is flagged
        ``late_cancellation`` (not refused)."""
        appointment = self.get_object()
        body = AppointmentCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        appointment = appointment_cancel(
            appointment=appointment, via=Channel.API, reason=body.validated_data["reason"]
        )
        return Response(self._data(appointment))

    @extend_schema(request=AppointmentRescheduleSerializer, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def reschedule(self, request, pk=None):
        """Move to another start: answers the new appointment (``replaces`` the old one,
        which ends ``rescheduled``); 409 when the new time is taken."""
        appointment = self.get_object()
        body = AppointmentRescheduleSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        body.is_valid(raise_exception=True)
        new = appointment_reschedule(
            appointment=appointment,
            start=body.validated_data["start"],
            via=Channel.API,
            check_availability=True,
        )
        return Response(self._data(new))
