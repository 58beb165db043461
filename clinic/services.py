"""Every write of the clinic app: patients, consents, memberships.

Edges (admin forms, later portal and API serializers) validate input; these functions
assume valid data, run atomically and enforce the rules that span rows.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from integrations.events import publish

from .choices import ConsentLegalBasis, ConsentSource, ConsentStatus
from .models import Clinic, Consent, Membership, Patient, new_checkin_token
from .roles import ROLE_GROUPS

PATIENT_EDITABLE_FIELDS = frozenset(
    f.name
    for f in Patient._meta.get_fields()
    if getattr(f, "editable", False) and f.concrete and f.name not in {"id", "clinic"}
)


@transaction.atomic
def patient_create(*, clinic: Clinic, **fields) -> Patient:
    """Register a patient in a clinic."""
    unknown = set(fields) - PATIENT_EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"patient_create() got unknown fields: {sorted(unknown)}")
    patient = Patient(clinic=clinic, **fields)
    patient.full_clean()
    patient.save()
    publish("patient.created", clinic=clinic, payload={"patient_id": patient.pk})
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, **fields) -> Patient:
    """Change a patient's data; only the given fields are written."""
    unknown = set(fields) - PATIENT_EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"patient_update() got unknown fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(patient, name, value)
    patient.full_clean()
    patient.save(update_fields=[*fields, "updated_at"])
    # Which fields changed, never their values (payloads carry no personal data).
    publish(
        "patient.updated",
        clinic=patient.clinic_id,
        payload={"patient_id": patient.pk, "fields": sorted(fields)},
    )
    return patient


@transaction.atomic
def patient_rotate_checkin_token(*, patient: Patient) -> Patient:
    """Issue a new check-in QR token; the old QR code stops working at once."""
    patient.checkin_token = new_checkin_token()
    patient.save(update_fields=["checkin_token", "updated_at"])
    return patient


@transaction.atomic
def consent_record(
    *,
    patient: Patient,
    channel: str,
    purpose: str,
    status: str,
    source: str = ConsentSource.RECEPTION,
    legal_basis: str = ConsentLegalBasis.CONSENT,
    text_version: str = "",
    recorded_by=None,
) -> Consent:
    """Record a patient's decision (grant or revoke) for a channel and purpose.

    Consents are append-only: revoking writes a new row and the latest row is in force.
    """
    consent = Consent(
        clinic_id=patient.clinic_id,
        patient=patient,
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        legal_basis=legal_basis,
        text_version=text_version,
        recorded_by=recorded_by,
        recorded_at=timezone.now(),
    )
    consent.full_clean()
    consent.save()
    return consent


def consent_revoke(*, patient: Patient, channel: str, purpose: str, **kwargs) -> Consent:
    """Shorthand for recording a revocation."""
    return consent_record(
        patient=patient, channel=channel, purpose=purpose, status=ConsentStatus.REVOKED, **kwargs
    )


def membership_sync_groups(*, user) -> None:
    """Make the user's role groups and staff flag match their active memberships.

    A user with roles in two clinics holds the permissions of both roles; what rows they see
    is still limited to the clinic they are working in (tenancy scoping).
    """
    roles = set(
        Membership.objects.filter(user=user, is_active=True, clinic__is_active=True).values_list(
            "role", flat=True
        )
    )
    role_groups = Group.objects.filter(name__in=ROLE_GROUPS.values())
    wanted = [g for g in role_groups if g.name in {ROLE_GROUPS[r] for r in roles}]
    user.groups.remove(*[g for g in role_groups if g not in wanted])
    user.groups.add(*wanted)
    is_staff = bool(roles) or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def membership_save(*, membership: Membership) -> Membership:
    """Create or change a membership and bring the user's groups in line."""
    membership.full_clean()
    membership.save()
    membership_sync_groups(user=membership.user)
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership) -> None:
    """Remove a user from a clinic; they lose its role's permissions at once."""
    user = membership.user
    membership.delete()
    membership_sync_groups(user=user)
