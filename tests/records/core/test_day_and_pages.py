"""The professional's day starts the encounter of an arrived patient, signing completes the
appointment; the record's pages keep a constant number of queries; attachments are
sniffed and limited; autosave keeps drafts; a signed encounter refuses new forms."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clinic.records import services
from clinic.records.exceptions import AttachmentRefused
from clinic.records.models import Encounter, Entry, EntryKind
from integrations.models import Delivery
from integrations.outbox import delivery_run
from scheduling.choices import AppointmentStatus as S
from scheduling.models import Appointment
from tests.records.core.conftest import sign_complete, write_complete
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

K = EntryKind
pytestmark = pytest.mark.django_db


@pytest.fixture
def arrived(doctor_a, record_patient):
    service = ServiceFactory(clinic=record_patient.clinic, name="Consulta clínica")
    now = timezone.now()
    return AppointmentFactory(
        service=service,
        professional=doctor_a,
        patient=record_patient,
        start=now - timedelta(minutes=5),
        status=S.ARRIVED,
        arrived_at=now - timedelta(minutes=12),
    )


def test_the_dashboard_leads_a_professional_to_their_day_in_one_click(doctor_a, client_for):
    body = client_for(doctor_a.user).get(reverse("admin:index")).content.decode()
    assert reverse("admin:scheduling_my_day") in body


def test_the_day_lists_arrivals_with_waiting_time_and_one_click_starts_the_encounter(
    arrived, doctor_a, client_for, cid_codes
):
    client = client_for(doctor_a.user)
    page = client.get(reverse("admin:scheduling_my_day"))
    body = page.content.decode()
    assert arrived.patient.display_name in body
    assert "12 min" in body
    response = client.post(reverse("admin:scheduling_my_day_start", args=[arrived.pk]))
    encounter = Encounter.objects.get(appointment=arrived)
    assert response.url == reverse("admin:records_encounter_record", args=[encounter.pk])
    arrived.refresh_from_db()
    assert arrived.status == S.IN_PROGRESS
    assert encounter.service_name == "Consulta clínica"
    write_complete(encounter, doctor_a.user)
    client.post(reverse("admin:records_encounter_sign", args=[encounter.pk]))
    encounter.refresh_from_db()
    assert encounter.is_finalized
    # The outbox delivers encounter.finalized to scheduling, which completes the appointment.
    delivery = Delivery.objects.get(
        event__event_type="encounter.finalized", subscriber__endswith="complete_signed_encounter"
    )
    delivery_run(delivery_id=delivery.pk)
    arrived.refresh_from_db()
    assert arrived.status == S.COMPLETED


def test_another_professional_cannot_start_someone_elses_appointment(
    arrived, psychologist_a, client_for
):
    response = client_for(psychologist_a.user).post(
        reverse("admin:scheduling_my_day_start", args=[arrived.pk])
    )
    assert response.status_code == 404
    arrived.refresh_from_db()
    assert arrived.status == S.ARRIVED and not Encounter.objects.exists()


def test_drafts_unsigned_after_24_hours_are_pending(doctor_a, record_patient, client_for):
    old = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    Encounter.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(hours=30))
    services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    body = client_for(doctor_a.user).get(reverse("admin:scheduling_my_day")).content.decode()
    assert body.count(reverse("admin:records_encounter_record", args=[old.pk])) == 1
    pending = body.split('id="pending-title"')[1]
    assert reverse("admin:records_encounter_record", args=[old.pk]) in pending


def test_autosave_keeps_drafts_and_the_form_refuses_unknown_cid_codes(
    doctor_a, record_patient, client_for, cid_codes
):
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    client = client_for(doctor_a.user)
    url = reverse("admin:records_encounter_autosave", args=[encounter.pk])
    saved = client.post(url, {"chief_complaint": "Tosse seca", "cid_principal": "j069"})
    assert saved.json()["saved"] is True
    draft = Entry.objects.get(encounter=encounter, kind=K.CHIEF_COMPLAINT)
    assert draft.content == {"text": "Tosse seca"} and draft.status == "draft"
    assert Entry.objects.get(kind=K.DIAGNOSIS).content["items"][0]["code"] == "J06.9"
    refused = client.post(url, {"cid_principal": "Z99.99"})
    assert refused.status_code == 422 and "cid_principal" in refused.json()["errors"]


def test_a_signed_encounter_refuses_the_form_and_autosave(doctor_a, record_patient, client_for):
    encounter = sign_complete(doctor_a, record_patient)
    client = client_for(doctor_a.user)
    url = reverse("admin:records_encounter_autosave", args=[encounter.pk])
    assert client.post(url, {"plan": "novo"}).status_code == 409
    response = client.post(
        reverse("admin:records_encounter_record", args=[encounter.pk]), {"plan": "novo"}
    )
    assert response.status_code == 403
    assert Entry.objects.filter(encounter=encounter).count() == 5


def test_correction_through_the_page_shows_both_versions(doctor_a, record_patient, client_for):
    encounter = sign_complete(doctor_a, record_patient)
    plan = Entry.objects.get(encounter=encounter, kind=K.PLAN)
    client = client_for(doctor_a.user)
    url = reverse("admin:records_encounter_correct", args=[plan.pk])
    client.post(url, {"text": "Retorno em 10 dias", "justification": ""})
    assert Entry.objects.filter(supersedes=plan).count() == 0
    client.post(url, {"text": "Retorno em 10 dias", "justification": "Data errada"})
    body = client.get(reverse("admin:records_encounter_record", args=[encounter.pk])).content
    body = body.decode()
    assert "Retorno em 10 dias" in body and "retorno em 7 dias" in body
    assert "Data errada" in body


def test_attachments_are_sniffed_limited_and_stored_under_random_keys(doctor_a, record_patient):
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    fake = SimpleUploadedFile("laudo.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    with pytest.raises(AttachmentRefused):
        services.attachment_add(encounter=encounter, upload=fake, by=doctor_a.user)
    big = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * (services.ATTACHMENT_MAX_BYTES + 1))
    with pytest.raises(AttachmentRefused):
        services.attachment_add(encounter=encounter, upload=big, by=doctor_a.user)
    png = SimpleUploadedFile(
        f"{record_patient.full_name}.png", b"\x89PNG\r\n\x1a\n" + b"1" * 50, content_type="text/x"
    )
    attachment = services.attachment_add(encounter=encounter, upload=png, by=doctor_a.user)
    assert attachment.content_type == "image/png"
    assert len(attachment.sha256) == 64
    assert "Joana" not in attachment.file.name and record_patient.cpf not in attachment.file.name


@pytest.mark.parametrize("encounters", [3, 12])
def test_the_clinical_and_encounter_pages_take_a_constant_number_of_queries(
    encounters, doctor_a, record_patient, client_for, django_assert_max_num_queries
):
    for _ in range(encounters):
        last = sign_complete(doctor_a, record_patient)
    client = client_for(doctor_a.user)
    client.get(reverse("admin:index"))  # session, clinic: warm
    with django_assert_max_num_queries(22):
        assert client.get(reverse("admin:records_encounter_patient", args=[record_patient.pk]))
    with django_assert_max_num_queries(24):
        assert client.get(reverse("admin:records_encounter_record", args=[last.pk]))


def test_appointment_still_in_progress_is_completed_by_the_signed_encounter_event(
    arrived, doctor_a
):
    from scheduling.services import appointment_complete_after_encounter, appointment_start

    appointment_start(appointment=arrived)
    appointment_complete_after_encounter(appointment_id=arrived.pk)
    appointment_complete_after_encounter(appointment_id=arrived.pk)  # twice: same effect
    assert Appointment.objects.get(pk=arrived.pk).status == S.COMPLETED


def test_the_encounter_form_refuses_impossible_vitals_and_keeps_scales(
    doctor_a, record_patient, client_for
):
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    client = client_for(doctor_a.user)
    url = reverse("admin:records_encounter_record", args=[encounter.pk])
    refused = client.post(url, {"vital_heart_rate": "700", "scale_pain": "6"})
    assert refused.status_code == 200
    assert "vital_heart_rate" in refused.context["form"].errors
    assert not Entry.objects.filter(encounter=encounter).exists()  # nothing half-written
    client.post(
        url,
        {
            "vital_heart_rate": "112",
            "vital_weight": "70",
            "vital_height": "170",
            "scale_pain": "6",
            "scale_mood": "8",
        },
    )
    vitals = Entry.objects.get(encounter=encounter, kind=K.VITALS)
    assert vitals.content == {"heart_rate": 112.0, "weight": 70.0, "height": 170.0, "bmi": 24.2}
    assert Entry.objects.get(encounter=encounter, kind=K.SCALES).content == {"pain": 6, "mood": 8}
    body = client.get(url).content.decode()
    assert 'value="112' in body  # the draft comes back into the form


def test_a_diagnosis_restricted_to_the_other_sex_warns(doctor_a, record_patient, client_for, db):
    from clinic.records.models import Cid10Code

    Cid10Code.objects.update_or_create(
        code="N40",
        defaults={
            "compact": "N40",
            "level": "category",
            "description": "Hiperplasia da próstata",
            "sex_restriction": "M",
            "search_text": "n40 hiperplasia da prostata",
        },
    )
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    url = reverse("admin:records_encounter_autosave", args=[encounter.pk])
    answer = client_for(doctor_a.user).post(url, {"cid_principal": "N40"}).json()
    assert answer["saved"] and "N40" in answer["message"]
