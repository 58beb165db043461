"""Partner API of the clinic app: patients (``/api/v1/patients/``).

Who sees what: a key with ``patients:read`` gets the full record (identity, contact and
address; never clinical data or reception notes). A key with only ``patients:write`` may
create and correct patients and look one up by CPF or phone, but every answer it gets is
the minimal ``{id, first_name}``: enough to link the patient it just created, not enough
to read the clinic's register through a write key.
"""

from __future__ import annotations

import re
from typing import NoReturn

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response

from . import services
from .audit import audit_api_read
from .choices import ContactChannel, Sex, State
from .exceptions import ClinicError
from .models import Patient
from .partner_api.fields import ClinicTimeField, StrictPrimaryKeyRelatedField
from .partner_api.models import ApiKey
from .partner_api.views import PartnerAPIMixin, created
from .validators import cpf_normalize, cpf_validate, phone_normalize, phone_variants

READ = "patients:read"
WRITE = "patients:write"

ADDRESS_FIELDS = ("postal_code", "street", "number", "complement", "district", "city", "state")
#: What ``PATCH`` may change: how to reach the patient. Identity (name, CPF, birth date) is
#: corrected at the reception desk, where a document can be checked.
CONTACT_FIELDS = ("phone", "email", "preferred_channel", *ADDRESS_FIELDS)


class PatientConflict(ClinicError):
    status_code = 409
    code = "patient_exists"
    title = gettext_lazy("Patient already registered")


# --- Errors from services -------------------------------------------------------------------
def drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A model's ``ValidationError`` (``full_clean`` in a service) as the API's 400 with a
    field map."""
    if hasattr(exc, "error_dict"):
        detail = {
            ("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
            for name, messages in exc.message_dict.items()
        }
    else:
        detail = {"non_field_errors": exc.messages}
    return exceptions.ValidationError(detail)


def _duplicate_cpf_message() -> str:
    constraint = next(
        c for c in Patient._meta.constraints if c.name == "patient_unique_cpf_per_clinic"
    )
    return str(constraint.get_violation_error_message())


def _raise_for(exc: DjangoValidationError) -> NoReturn:
    message = _duplicate_cpf_message()
    if hasattr(exc, "error_dict") and message in exc.message_dict.get(NON_FIELD_ERRORS, []):
        raise PatientConflict(message, fields={"cpf": [message]}) from None
    raise drf_validation_error(exc) from None


# --- Serializers ----------------------------------------------------------------------------
class ClinicRelatedField(StrictPrimaryKeyRelatedField):
    """A primary key among the rows of the request's clinic (``context["clinic"]``):
    ``queryset`` says which rows (all clinics'), each request sees its own clinic's, and
    another clinic's id "does not exist". Scoped when a value is looked up, not when the
    serializer is built."""

    def get_queryset(self):
        return super().get_queryset().for_clinic(self.context.get("clinic"))


class PatientSummarySerializer(serializers.Serializer):
    """What a key without ``patients:read`` is told about a patient."""

    id = serializers.IntegerField(read_only=True)
    first_name = serializers.CharField(read_only=True)


class PatientSerializer(serializers.Serializer):
    """The full partner view of a patient (needs ``patients:read``)."""

    id = serializers.IntegerField(read_only=True)
    full_name = serializers.CharField(read_only=True)
    social_name = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    cpf = serializers.CharField(read_only=True)
    birth_date = serializers.DateField(read_only=True, allow_null=True)
    sex = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    preferred_channel = serializers.CharField(read_only=True)
    lead_source = serializers.CharField(read_only=True)
    postal_code = serializers.CharField(read_only=True)
    street = serializers.CharField(read_only=True)
    number = serializers.CharField(read_only=True)
    complement = serializers.CharField(read_only=True)
    district = serializers.CharField(read_only=True)
    city = serializers.CharField(read_only=True)
    state = serializers.CharField(read_only=True)
    created_at = ClinicTimeField(read_only=True)
    updated_at = ClinicTimeField(read_only=True)


def _text(max_length: int) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True)


class PatientContactInput(serializers.Serializer):
    """``PATCH``: contact data only. CPF and phone are checked (and normalised) by the
    model, in the service."""

    phone = serializers.CharField(max_length=32, required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    preferred_channel = serializers.ChoiceField(choices=ContactChannel.choices, required=False)
    postal_code = _text(9)
    street = _text(255)
    number = _text(20)
    complement = _text(100)
    district = _text(100)
    city = _text(100)
    state = serializers.ChoiceField(choices=State.choices, required=False, allow_blank=True)

    # Checked here as well as by the model (in the service): a field error found at the
    # edge is reported with every other one, not after them.
    def validate_phone(self, value: str) -> str:
        _django_check(phone_normalize, value)
        return value

    def validate(self, attrs):
        fixed = sorted(set(self.initial_data) - set(self.fields))
        if fixed:
            message = _("This field cannot be changed through the API.")
            raise serializers.ValidationError({name: [message] for name in fixed})
        return attrs


class PatientCreateInput(PatientContactInput):
    full_name = serializers.CharField(max_length=255)
    social_name = _text(255)
    cpf = serializers.CharField(max_length=20, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32)
    lead_source = _text(50)

    def validate_cpf(self, value: str) -> str:
        if value:
            _django_check(cpf_validate, value)
        return value

    def validate(self, attrs):
        return attrs  # every field of the body is known here; unknown ones are ignored


def _django_check(check, value) -> None:
    try:
        check(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


class PatientSearchInput(serializers.Serializer):
    """``?cpf=`` (any punctuation) and ``?phone=`` (with or without +55, with or without
    the mobile 9th digit)."""

    cpf = serializers.CharField(required=False, allow_blank=False)
    phone = serializers.CharField(required=False, allow_blank=False)

    def validate_cpf(self, value: str) -> str:
        try:
            cpf_validate(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return cpf_normalize(value)

    def validate_phone(self, value: str) -> list[str]:
        return phone_lookup_variants(value)


_NON_DIGITS = re.compile(r"\D")


def phone_lookup_variants(raw: str) -> list[str]:
    """Every stored form a typed phone may match: E.164 with and without the 9th digit.

    Old 8-digit mobiles ("(11) 8765-4321") are no longer valid numbers, so they are read
    as Brazilian by their digits when the phone library refuses them.
    """
    try:
        e164 = phone_normalize(raw)
    except DjangoValidationError as exc:
        digits = _NON_DIGITS.sub("", raw)
        if raw.strip().startswith("+") and len(digits) >= 10:
            e164 = f"+{digits}"
        elif len(digits) in (10, 11) and not digits.startswith("0"):
            e164 = f"+55{digits}"
        elif len(digits) in (12, 13) and digits.startswith("55"):
            e164 = f"+{digits}"
        else:
            raise serializers.ValidationError(exc.messages) from None
    return phone_variants(e164)


# --- Views ----------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("cpf", str, description="CPF, with or without punctuation."),
            OpenApiParameter("phone", str, description="Phone, with or without +55 / 9th digit."),
        ],
        responses=PatientSerializer(many=True),
    ),
    retrieve=extend_schema(responses=PatientSerializer),
    create=extend_schema(request=PatientCreateInput, responses={201: PatientSerializer}),
    partial_update=extend_schema(request=PatientContactInput, responses=PatientSerializer),
)
class PatientViewSet(PartnerAPIMixin, viewsets.GenericViewSet):
    """Patients of the key's clinic."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = PatientSerializer

    @property
    def required_scopes(self) -> dict[str, str]:
        # A write-only key may look patients up (minimal answers, see the module docstring).
        key = getattr(self.request, "auth", None)
        write_only = isinstance(key, ApiKey) and READ not in key.scopes and WRITE in key.scopes
        read = WRITE if write_only else READ
        return {"GET": read, "HEAD": read, "POST": WRITE, "PATCH": WRITE}

    @property
    def full_view(self) -> bool:
        key = self.request.auth
        return not isinstance(key, ApiKey) or READ in key.scopes

    def get_queryset(self):
        return Patient.objects.for_clinic(self.clinic)

    def represent(self, patient_or_page, *, many: bool = False):
        serializer = PatientSerializer if self.full_view else PatientSummarySerializer
        return serializer(patient_or_page, many=many, context={"clinic": self.clinic}).data

    def list(self, request):
        params = PatientSearchInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        cpf, phones = params.validated_data.get("cpf"), params.validated_data.get("phone")
        if not self.full_view and not (cpf or phones):
            raise exceptions.ValidationError(
                [_("Search by cpf or phone: this key may not list patients.")]
            )
        queryset = self.get_queryset()
        if cpf:
            queryset = queryset.filter(cpf=cpf)
        if phones:
            queryset = queryset.filter(phone__in=phones)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.represent(page, many=True))

    def retrieve(self, request, pk=None):
        patient = self.get_object()
        audit_api_read(request=request, clinic=self.clinic, patient=patient)
        return Response(self.represent(patient))

    def create(self, request):
        data = PatientCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            patient = services.patient_create(clinic=self.clinic, **data.validated_data)
        except DjangoValidationError as exc:
            _raise_for(exc)
        except IntegrityError:
            # Two requests with one CPF at once: the constraint refused the second.
            message = _duplicate_cpf_message()
            raise PatientConflict(message, fields={"cpf": [message]}) from None
        location = request.build_absolute_uri(reverse("patient-detail", args=[patient.pk]))
        return created(self.represent(patient), headers={"Location": location})

    def partial_update(self, request, pk=None):
        patient = self.get_object()
        data = PatientContactInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            patient = services.patient_update(patient=patient, **data.validated_data)
        except DjangoValidationError as exc:
            _raise_for(exc)
        return Response(self.represent(patient))
