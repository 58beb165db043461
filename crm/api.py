"""Partner API of the CRM: leads from the clinic's site or a marketing partner
(``POST /api/v1/leads/``, ``leads:write``), read (``GET``, ``leads:read``) and moved through
the funnel (``PATCH /api/v1/leads/{id}/``, ``leads:write``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from clinic.api import drf_validation_error
from clinic.partner_api.fields import ClinicTimeField
from clinic.partner_api.views import PartnerAPIMixin, created

from . import services
from .choices import InterestType, LeadStatus, LossReason
from .models import Lead

SCOPE = "leads:write"
READ_SCOPE = "leads:read"


def _text(max_length: int | None = None) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True)


class LeadInput(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    message = _text(5000)
    source = _text(50)
    utm_source = _text(255)
    utm_medium = _text(255)
    utm_campaign = _text(255)
    utm_term = _text(255)
    utm_content = _text(255)
    landing_page = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    interest_type = serializers.ChoiceField(
        choices=InterestType.choices, required=False, allow_blank=True
    )
    gclid = _text(255)
    fbclid = _text(255)
    referrer = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    referral_code = _text(32)
    marketing_consent = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if not attrs.get("phone") and not attrs.get("email"):
            raise serializers.ValidationError(
                {"phone": [_("Give a phone number or an e-mail to reach this person.")]}
            )
        return attrs


class LeadSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)
    source = serializers.CharField(read_only=True)
    utm_source = serializers.CharField(read_only=True)
    utm_medium = serializers.CharField(read_only=True)
    utm_campaign = serializers.CharField(read_only=True)
    utm_term = serializers.CharField(read_only=True)
    utm_content = serializers.CharField(read_only=True)
    landing_page = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    loss_reason = serializers.CharField(read_only=True)
    interest_type = serializers.CharField(read_only=True)
    last_source = serializers.CharField(read_only=True)
    referral_code = serializers.CharField(read_only=True)
    marketing_consent = serializers.BooleanField(read_only=True)
    score = serializers.IntegerField(read_only=True)
    temperature = serializers.CharField(read_only=True)
    patient_id = serializers.IntegerField(read_only=True, allow_null=True)
    converted_at = ClinicTimeField(read_only=True, allow_null=True)
    created_at = ClinicTimeField(read_only=True)


class LeadUpdate(serializers.Serializer):
    status = serializers.ChoiceField(choices=LeadStatus.choices)
    loss_reason = serializers.ChoiceField(
        choices=LossReason.choices, required=False, allow_blank=True
    )


class LeadViewSet(PartnerAPIMixin, viewsets.GenericViewSet):
    """Leads of the key's clinic: created here (deduplicated by phone and e-mail), read,
    and moved through the funnel."""

    required_scopes = {
        "POST": SCOPE,
        "PATCH": SCOPE,
        "GET": READ_SCOPE,
        "HEAD": READ_SCOPE,
    }
    serializer_class = LeadSerializer

    def get_queryset(self):
        return Lead.objects.for_clinic(self.clinic).filter(anonymised_at__isnull=True)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "clinic": self.clinic}

    def list(self, request):
        leads = self.get_queryset()
        status = request.query_params.get("status")
        if status:
            leads = leads.filter(status=status)
        page = self.paginate_queryset(leads)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=LeadUpdate, responses={200: LeadSerializer})
    def partial_update(self, request, pk=None):
        lead = self.get_object()
        data = LeadUpdate(data=request.data)
        data.is_valid(raise_exception=True)
        services.lead_transition(
            lead=lead,
            to=data.validated_data["status"],
            loss_reason=data.validated_data.get("loss_reason", ""),
        )
        lead.refresh_from_db()
        return Response(self.get_serializer(lead).data)

    @extend_schema(request=LeadInput, responses={201: LeadSerializer})
    def create(self, request):
        data = LeadInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            lead = services.lead_create(clinic=self.clinic, **data.validated_data)
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return created(LeadSerializer(lead, context={"clinic": self.clinic}).data)
