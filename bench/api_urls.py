"""Cuidar's URLs plus the floors the partner API is compared with, served by the same
gunicorn (same process, middleware and database connection):

- ``/bench/floor``: a bare Django JSON view (no DRF, no query): the framework floor.
- ``/bench/partner-floor``: a constant answer behind the partner API's per-request
  machinery (DRF, the key and its scope, the per-key throttle, the request log), and no
  query: what every partner request costs before it does anything.
- ``/bench/list-floor``: a bare Django view that answers what the appointment list answers
  for one professional's week (the same 50 rows, fields and formats), with hand-written SQL
  and no key, throttle, log or pagination: what reading that page from PostgreSQL costs
  at the least, the data floor.
- ``/bench/textbook/appointments/``: the appointment list as the DRF documentation teaches
  it — a ``ReadOnlyModelViewSet`` with a ``ModelSerializer`` of the same fields, the same
  cursor pagination (by start, 50 a page) and the same filters through django-filter's
  ``FilterSet`` — behind the same key, throttle and request log (``PartnerAPIMixin``), on
  the same clinic's rows: what the list would cost written the usual way.
"""

from zoneinfo import ZoneInfo

import django_filters
from django.db import connection
from django.db.models import F
from django.http import JsonResponse
from django.urls import path
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.partner_api.views import PartnerAPIMixin
from config.urls import urlpatterns as cuidar_urlpatterns
from scheduling.api import AppointmentSerializer
from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment

LIST_SQL = """
    SELECT a.id, a.patient_id, a.professional_id, a.service_id, a.room_id, a.start, a."end",
           a.status, a.price, a.booked_via, a.notes, a.confirmed_at, a.cancelled_at,
           a.cancellation_reason, a.late_cancellation, a.replaces_id, r.id, a.created_at,
           a.updated_at
      FROM scheduling_appointment a
      LEFT JOIN scheduling_appointment r ON r.replaces_id = a.id
     WHERE a.clinic_id = %s AND a.professional_id = %s AND a.start >= %s AND a.start < %s
     ORDER BY a.start, a.id
     LIMIT 50"""
FIELDS = (
    *("id", "patient", "professional", "service", "room", "start", "end", "status", "price"),
    *("booked_via", "notes", "confirmed_at", "cancelled_at", "cancellation_reason"),
    *("late_cancellation", "replaces", "replaced_by", "created_at", "updated_at"),
)
DATETIMES = {5, 6, 11, 12, 17, 18}


def floor(request):
    return JsonResponse({"ok": True})


class PartnerFloor(PartnerAPIMixin, APIView):
    required_scopes = {"GET": "appointments:read"}

    def get(self, request):
        return Response({"ok": True})


def list_floor(request):
    query = request.GET
    zone = ZoneInfo("America/Sao_Paulo")
    with connection.cursor() as cursor:
        cursor.execute(
            LIST_SQL,
            [
                int(query["clinic"]),
                int(query["professional"]),
                parse_datetime(query["start_from"]),
                parse_datetime(query["start_to"]),
            ],
        )
        rows = cursor.fetchall()
    results = []
    for row in rows:
        values = list(row)
        for i in DATETIMES:
            if values[i] is not None:
                values[i] = values[i].astimezone(zone).isoformat()
        values[8] = None if values[8] is None else f"{values[8]:.2f}"
        results.append(dict(zip(FIELDS, values, strict=True)))
    return JsonResponse({"next": None, "previous": None, "results": results})


# --- The textbook list ----------------------------------------------------------------------
class TextbookAppointmentSerializer(serializers.ModelSerializer):
    replaced_by = serializers.IntegerField(source="replaced_by_pk", read_only=True)

    class Meta:
        model = Appointment
        fields = AppointmentSerializer.Meta.fields
        read_only_fields = fields


class TextbookAppointmentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AppointmentStatus.choices)
    start_from = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="gte")
    start_to = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="lt")

    class Meta:
        model = Appointment
        fields = ["professional", "patient", "service"]


class TextbookPagination(CursorPagination):
    ordering = ("start", "pk")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class TextbookAppointmentViewSet(PartnerAPIMixin, viewsets.ReadOnlyModelViewSet):
    required_scopes = {"GET": "appointments:read"}
    serializer_class = TextbookAppointmentSerializer
    pagination_class = TextbookPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = TextbookAppointmentFilter

    def get_queryset(self):
        return Appointment.objects.filter(clinic=self.clinic).annotate(
            replaced_by_pk=F("replaced_by__id")
        )


urlpatterns = [
    path(
        "bench/textbook/appointments/",
        TextbookAppointmentViewSet.as_view({"get": "list"}),
    ),
    path("bench/floor", floor),
    path("bench/partner-floor", PartnerFloor.as_view()),
    path("bench/list-floor", list_floor),
    *cuidar_urlpatterns,
]
