"""The patient's own progress on the portal, and a request for a copy of the record."""

import pytest
from django.urls import reverse

from clinic.models import AuditEntry, PrivacyRequest
from clinic.records import services
from clinic.records.models import EntryKind
from tests.records.core.conftest import write_complete

pytestmark = pytest.mark.django_db


def test_the_patient_sees_their_progress_and_requests_a_copy(
    doctor_a, record_patient, portal_client_for
):
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    write_complete(encounter, doctor_a.user, evolution="Texto clínico que o portal não mostra")
    services.entry_save_draft(
        encounter=encounter, kind=EntryKind.SCALES, content={"pain": 6}, by=doctor_a.user
    )
    services.encounter_finalize(encounter=encounter, by=doctor_a.user)
    client = portal_client_for(record_patient)
    page = client.get(reverse("portal:my_record"))
    body = page.content.decode()
    assert page.status_code == 200 and "<svg" in body
    assert "Texto clínico" not in body
    assert AuditEntry.objects.filter(
        patient_id=record_patient.pk, details__page="clinical_record"
    ).exists()
    client.post(reverse("portal:my_record"))
    request = PrivacyRequest.objects.get(patient=record_patient)
    assert request.kind == "export" and "prontuário" in request.details
