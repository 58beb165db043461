"""Partner API of loyalty, read only (``loyalty:read``): each patient's account (balance,
tier, points in 12 months, referral code) at ``/api/v1/loyalty-accounts/`` (filter
``?patient=<id>``), and its ledger at ``/api/v1/loyalty-accounts/{id}/history/``, newest
first, cursor-paginated."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action

from clinic.partner_api.fields import ClinicTimeField
from clinic.partner_api.views import PartnerAPIMixin

from .choices import EntryKind, Tier
from .models import LoyaltyAccount, PointsEntry

SCOPE = "loyalty:read"


class LoyaltyAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    patient_id = serializers.IntegerField(read_only=True)
    balance = serializers.IntegerField(read_only=True)
    tier = serializers.ChoiceField(choices=Tier.choices, read_only=True)
    points_12m = serializers.IntegerField(source="earned_12m", read_only=True)
    referral_code = serializers.CharField(read_only=True)
    created_at = ClinicTimeField(read_only=True)


class PointsEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=EntryKind.choices, read_only=True)
    points = serializers.IntegerField(read_only=True)
    reason = serializers.CharField(read_only=True)
    reference_type = serializers.CharField(read_only=True)
    reference_id = serializers.IntegerField(read_only=True, allow_null=True)
    expires_at = ClinicTimeField(read_only=True, allow_null=True)
    created_at = ClinicTimeField(read_only=True)


class AccountFilterInput(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, required=False)


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("patient", int, description="Patient id.")])
)
class LoyaltyAccountViewSet(PartnerAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Loyalty accounts of the key's clinic."""

    serializer_class = LoyaltyAccountSerializer
    required_scopes = {"GET": SCOPE, "HEAD": SCOPE}

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "clinic": self.clinic}

    def get_queryset(self):
        return LoyaltyAccount.objects.for_clinic(self.clinic)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = AccountFilterInput(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        if "patient" in params.validated_data:
            queryset = queryset.filter(patient_id=params.validated_data["patient"])
        return queryset

    @extend_schema(responses=PointsEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """The account's ledger, newest first."""
        account = self.get_object()
        entries = PointsEntry.objects.for_clinic(self.clinic).filter(account=account)
        page = self.paginate_queryset(entries)
        serializer = PointsEntrySerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)
