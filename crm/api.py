"""Partner API of the CRM: leads from the clinic's site or a marketing partner
(``POST /api/v1/leads/``, ``leads:write``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets

from clinic.api import drf_validation_error
from clinic.partner_api.fields import ClinicTimeField
from clinic.partner_api.views import PartnerAPIMixin, created

from . import services

SCOPE = "leads:write"


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
    created_at = ClinicTimeField(read_only=True)


class LeadViewSet(PartnerAPIMixin, viewsets.GenericViewSet):
    """Leads of the key's clinic: created here, worked on in the CRM."""

    required_scopes = {"POST": SCOPE}
    serializer_class = LeadSerializer

    @extend_schema(request=LeadInput, responses={201: LeadSerializer})
    def create(self, request):
        data = LeadInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            lead = services.lead_create(clinic=self.clinic, **data.validated_data)
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return created(LeadSerializer(lead, context={"clinic": self.clinic}).data)
