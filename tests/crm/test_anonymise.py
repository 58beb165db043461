"""A patient anonymised at their request (LGPD): the clinic's leads with their phone or
e-mail are erased too, in the same transaction; other leads and other clinics' are not."""

import pytest

from clinic import privacy
from crm import services
from crm.models import Lead
from integrations.models import Event

pytestmark = pytest.mark.django_db


def lead(clinic, **fields):
    return services.lead_create(clinic=clinic, name=fields.pop("name", "Maria"), **fields)


def test_the_patient_s_leads_are_erased_with_their_contact_data(
    clinic_a, clinic_b, patient_a, manager_a, django_capture_on_commit_callbacks
):
    patient_a.email = "maria@example.com"
    patient_a.save()
    phone = patient_a.phone
    with django_capture_on_commit_callbacks(execute=True):
        by_phone = lead(clinic_a, phone=patient_a.phone, utm_source="instagram")
        by_email = lead(clinic_a, email="MARIA@example.com", message="Quero agendar")
        someone_else = lead(clinic_a, name="João", phone="+5511987650000")
        other_clinic = lead(clinic_b, phone=patient_a.phone)

        privacy.patient_anonymise(patient=patient_a, by=manager_a)

    for erased in (by_phone, by_email):
        erased.refresh_from_db()
        assert (erased.name, erased.phone, erased.email, erased.message) == ("—", "", "", "")
    by_phone.refresh_from_db()
    assert by_phone.utm_source == "instagram"  # where it came from is not personal
    someone_else.refresh_from_db()
    other_clinic.refresh_from_db()
    assert someone_else.name == "João" and someone_else.phone
    assert other_clinic.phone == phone
    updated = Event.objects.filter(event_type="lead.updated").values_list("payload", flat=True)
    assert sorted(p["lead_id"] for p in updated) == sorted([by_phone.pk, by_email.pk])
    assert Lead.objects.count() == 4
