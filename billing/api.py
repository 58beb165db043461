"""Partner API of billing: payments, read only (``/api/v1/payments/``, ``payments:read``).

Amounts are decimal strings (``"150.00"``, reais); datetimes are ISO 8601 with their offset.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from clinic.kernel.timezones import clinic_zone
from clinic.partner_api.fields import ClinicDateTimeField, ClinicTimeField
from clinic.partner_api.views import PartnerAPIMixin

from .choices import PaymentStatus
from .models import MONEY, Payment

SCOPE = "payments:read"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- Serializers ----------------------------------------------------------------------------
class InvoiceSummarySerializer(serializers.Serializer):
    """The NFS-e of a payment, when one was requested."""

    number = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    issued_at = ClinicTimeField(read_only=True, allow_null=True)
    pdf_url = serializers.CharField(read_only=True)


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    reference = serializers.CharField(read_only=True)
    patient_id = serializers.IntegerField(read_only=True)
    appointment_id = serializers.IntegerField(read_only=True, allow_null=True)
    patient_package_id = serializers.IntegerField(read_only=True, allow_null=True)
    description = serializers.CharField(read_only=True)
    amount = serializers.DecimalField(read_only=True, **MONEY)
    refunded_amount = serializers.DecimalField(read_only=True, **MONEY)
    method = serializers.CharField(read_only=True)
    gateway = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    due_date = serializers.DateField(read_only=True, allow_null=True)
    paid_at = ClinicTimeField(read_only=True, allow_null=True)
    payment_url = serializers.CharField(source="invoice_url", read_only=True)
    boleto_url = serializers.CharField(read_only=True)
    pix_payload = serializers.CharField(read_only=True)
    invoice = InvoiceSummarySerializer(read_only=True, allow_null=True)
    created_at = ClinicTimeField(read_only=True)
    updated_at = ClinicTimeField(read_only=True)


class DateOrDateTimeField(serializers.Field):
    """``2026-03-01`` (a whole day in the clinic's time zone) or an ISO 8601 date-time with
    its offset (the API never guesses the zone of a time)."""

    def to_internal_value(self, data):
        # A bare date first: Python's fromisoformat would read it as midnight.
        if isinstance(data, str) and _DATE.fullmatch(data.strip()):
            return serializers.DateField().to_internal_value(data.strip())
        return ClinicDateTimeField().to_internal_value(data)


class PaymentFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
    patient = serializers.IntegerField(min_value=1, required=False)
    paid_from = DateOrDateTimeField(required=False)
    paid_to = DateOrDateTimeField(required=False)


def _start_of(value: date | datetime, zone) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=zone)


# --- Views ----------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=PaymentStatus.values),
            OpenApiParameter("patient", int, description="Patient id."),
            OpenApiParameter(
                "paid_from", str, description="Paid at or after: a date or an ISO date-time."
            ),
            OpenApiParameter(
                "paid_to", str, description="Paid up to: a date (the whole day) or a date-time."
            ),
        ]
    )
)
class PaymentViewSet(PartnerAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Payments of the key's clinic, newest first."""

    serializer_class = PaymentSerializer
    required_scopes = {"GET": SCOPE, "HEAD": SCOPE}

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "clinic": self.clinic}

    def get_queryset(self):
        return Payment.objects.for_clinic(self.clinic).select_related("invoice")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        zone = clinic_zone(self.clinic) if self.clinic else timezone.get_current_timezone()
        params = PaymentFilterInput(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        wanted = params.validated_data
        if "status" in wanted:
            queryset = queryset.filter(status=wanted["status"])
        if "patient" in wanted:
            queryset = queryset.filter(patient_id=wanted["patient"])
        if "paid_from" in wanted:
            queryset = queryset.filter(paid_at__gte=_start_of(wanted["paid_from"], zone))
        if "paid_to" in wanted:
            until = wanted["paid_to"]
            if isinstance(until, datetime):
                queryset = queryset.filter(paid_at__lte=until)
            else:  # the whole day
                queryset = queryset.filter(paid_at__lt=_start_of(until + timedelta(days=1), zone))
        return queryset
