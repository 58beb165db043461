import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from clinic import selectors, services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.models import Consent

pytestmark = pytest.mark.django_db


def grant(patient, purpose=ConsentPurpose.MARKETING, channel=ContactChannel.WHATSAPP):
    return services.consent_record(
        patient=patient, channel=channel, purpose=purpose, status=ConsentStatus.GRANTED
    )


def test_the_latest_decision_is_the_one_in_force(patient_a):
    grant(patient_a)
    assert selectors.consent_is_granted(
        patient=patient_a, channel=ContactChannel.WHATSAPP, purpose=ConsentPurpose.MARKETING
    )
    services.consent_revoke(
        patient=patient_a, channel=ContactChannel.WHATSAPP, purpose=ConsentPurpose.MARKETING
    )
    assert not selectors.consent_is_granted(
        patient=patient_a, channel=ContactChannel.WHATSAPP, purpose=ConsentPurpose.MARKETING
    )
    # Both decisions stay as evidence.
    assert Consent.objects.filter(patient=patient_a).count() == 2


def test_consent_for_one_channel_says_nothing_of_another(patient_a):
    grant(patient_a, channel=ContactChannel.WHATSAPP)
    assert not selectors.consent_is_granted(
        patient=patient_a, channel=ContactChannel.SMS, purpose=ConsentPurpose.MARKETING
    )


def test_a_consent_cannot_be_edited_or_deleted(patient_a):
    consent = grant(patient_a)
    consent.status = ConsentStatus.REVOKED
    with pytest.raises(ValidationError):
        consent.save()
    with pytest.raises(ValidationError):
        consent.delete()
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.GRANTED


def test_a_consent_is_kept_in_the_patients_clinic(patient_a):
    assert grant(patient_a).clinic_id == patient_a.clinic_id


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_of_consents(patient_a):
    consent = grant(patient_a)
    for sql in (
        "UPDATE clinic_consent SET status = 'revoked' WHERE id = %s",
        "DELETE FROM clinic_consent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [consent.pk])
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.GRANTED


def test_consent_admin_offers_no_change_or_delete(patient_a, manager_a, client_for):
    from django.urls import reverse

    consent = grant(patient_a)
    client = client_for(manager_a)
    delete = reverse("admin:clinic_consent_delete", args=[consent.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:clinic_consent_change", args=[consent.pk])
    response = client.post(change, {"status": "revoked"})
    assert response.status_code == 403
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.GRANTED
