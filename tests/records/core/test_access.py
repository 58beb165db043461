"""Who reads what of the clinical record (SBIS NGS1.03 profiles): every page of the record
× every role, another clinic, another unit and confidential notes — no clinical text
reaches anyone who may not read it, and every read leaves an audit row without it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import AuditEntry, Membership
from clinic.records import services
from clinic.records.models import BreakGlass, Entry, EntryKind
from integrations.models import Event
from tests.clinic.factories import UserFactory
from tests.records.core.conftest import make_professional, sign_complete

K = EntryKind
pytestmark = pytest.mark.django_db

#: Clinical text that must reach no one but those who may read the record.
SECRET = "Orofaringe hiperemiada"
CONFIDENTIAL = "Relata ideação de fuga do casamento"
PDF = b"%PDF-1.4\n% test\n" + b"0" * 64


@pytest.fixture
def record(doctor_a, psychologist_a, record_patient, cid_codes):
    """A signed encounter by doctor A, an attachment on a draft, and a confidential signed
    note by the psychologist (who then also has the patient in care)."""
    signed = sign_complete(doctor_a, record_patient)
    draft = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=doctor_a,
        by=doctor_a.user,
    )
    attachment = services.attachment_add(
        encounter=draft,
        upload=SimpleUploadedFile("exame-joana.pdf", PDF, content_type="application/pdf"),
        by=doctor_a.user,
    )
    return {"signed": signed, "draft": draft, "attachment": attachment}


def content_urls(record, patient):
    plan = Entry.objects.get(encounter=record["signed"], kind=K.PLAN)
    return {
        "patient": ("get", reverse("admin:records_encounter_patient", args=[patient.pk])),
        "encounter": ("get", reverse("admin:records_encounter_record", args=[record["signed"].pk])),
        "draft": ("get", reverse("admin:records_encounter_record", args=[record["draft"].pk])),
        "autosave": (
            "post",
            reverse("admin:records_encounter_autosave", args=[record["draft"].pk]),
        ),
        "sign": ("post", reverse("admin:records_encounter_sign", args=[record["draft"].pk])),
        "correct": ("get", reverse("admin:records_encounter_correct", args=[plan.pk])),
        "inactivate": ("post", reverse("admin:records_encounter_inactivate", args=[plan.pk])),
        "attach": ("post", reverse("admin:records_encounter_attach", args=[record["draft"].pk])),
        "attachment": (
            "get",
            reverse("admin:records_encounter_attachment", args=[record["attachment"].pk]),
        ),
        "changelist": ("get", reverse("admin:records_encounter_changelist")),
    }


def fetch(client, method, url):
    response = getattr(client, method)(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body.decode("utf-8", "replace")


@pytest.mark.parametrize("role", ["receptionist", "manager", "admin"])
def test_administrative_staff_see_that_encounters_exist_never_their_content(
    role, record, record_patient, client_for, receptionist_a, manager_a, admin_a
):
    user = {"receptionist": receptionist_a, "manager": manager_a, "admin": admin_a}[role]
    client = client_for(user)
    before = AuditEntry.objects.count()
    for name, (method, url) in content_urls(record, record_patient).items():
        status, body = fetch(client, method, url)
        assert SECRET not in body, name
        assert status in (200, 302, 403, 404, 405), (name, status)
        assert "Dipirona" not in body, name  # the allergy is clinical too
        assert PDF.decode() not in body, name
        if name in ("patient", "changelist"):
            assert status == 200, name
            assert "Dra. Helena Martins" in body  # who and when: yes
        else:
            assert status in (403, 404, 405), (name, status)
    assert AuditEntry.objects.count() == before  # nothing was read


def test_the_professional_in_care_reads_and_each_read_is_audited_without_clinical_text(
    record, record_patient, doctor_a, client_for
):
    client = client_for(doctor_a.user)
    urls = content_urls(record, record_patient)
    for name in ("patient", "encounter", "attachment"):
        method, url = urls[name]
        assert fetch(client, method, url)[0] == 200, name
    assert SECRET in fetch(client, *urls["encounter"])[1]
    entries = AuditEntry.objects.filter(patient_id=record_patient.pk, actor_id=doctor_a.user.pk)
    assert {e.object_type for e in entries} >= {
        "clinic.patient",
        "records.encounter",
        "records.attachment",
    }
    for entry in entries:
        text = f"{entry.details} {entry.actor_label} {entry.object_id}"
        assert SECRET not in text and record_patient.full_name not in text


def test_another_professional_must_break_the_glass_and_the_director_is_told(
    record, record_patient, client_for, clinic_a
):
    other = make_professional(clinic_a, "otavio", number="654321", name="Dr. Otávio")
    client = client_for(other.user)
    urls = content_urls(record, record_patient)
    glass_url = reverse("admin:records_encounter_break_glass", args=[record_patient.pk])
    status, body = fetch(client, *urls["patient"])
    assert status == 200 and glass_url in body and SECRET not in body
    assert fetch(client, *urls["encounter"])[0] == 403
    refused = client.post(glass_url, {"reason": "curto"})
    assert refused.status_code == 200 and not BreakGlass.objects.exists()
    client.post(glass_url, {"reason": "Paciente desacordada no pronto atendimento"})
    assert BreakGlass.objects.filter(user=other.user, patient=record_patient).exists()
    assert Event.objects.filter(event_type="record.emergency_access").count() == 1
    status, body = fetch(client, *urls["encounter"])
    assert status == 200 and SECRET in body
    audit = AuditEntry.objects.filter(actor_id=other.user.pk, object_type="records.encounter")
    assert audit.get().details == {"page": "encounter", "via": "break_glass"}


def test_confidential_notes_are_their_authors_only(
    record, record_patient, doctor_a, psychologist_a, client_for
):
    encounter = services.open_encounter(
        clinic=record_patient.clinic,
        patient=record_patient,
        professional=psychologist_a,
        by=psychologist_a.user,
    )
    services.entry_save_draft(
        encounter=encounter,
        kind=K.EVOLUTION,
        content={"text": CONFIDENTIAL},
        by=psychologist_a.user,
        confidential=True,
    )
    url = reverse("admin:records_encounter_record", args=[encounter.pk])
    # The doctor has the patient in care, so reads the encounter — but not the note.
    status, body = fetch(client_for(doctor_a.user), "get", url)
    assert status == 200 and CONFIDENTIAL not in body
    status, body = fetch(client_for(psychologist_a.user), "get", url)
    assert status == 200 and CONFIDENTIAL in body


def test_another_clinic_sees_nothing_not_even_existence(
    record, record_patient, doctor_b, client_for, receptionist_b
):
    for user in (doctor_b.user, receptionist_b):
        client = client_for(user)
        for name, (method, url) in content_urls(record, record_patient).items():
            status, body = fetch(client, method, url)
            assert SECRET not in body and record_patient.full_name not in body, name
            if name != "changelist":
                assert status in (404, 405), (name, status)


def test_a_professional_of_another_unit_sees_only_existence_here(
    record, record_patient, clinic_a, clinic_b, client_for
):
    """Two units of one group are two clinics: a professional of unit B who is also on unit
    A's desk reads nothing clinical of A's patients while working in A."""
    other_unit = make_professional(clinic_b, "ubaldo", name="Dr. Ubaldo (unidade B)")
    clinic_services.membership_save(
        membership=Membership(
            user=other_unit.user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST
        )
    )
    client = client_for(other_unit.user)
    client.post(reverse("admin:switch_clinic"), {"clinic": clinic_a.pk})
    for name, (method, url) in content_urls(record, record_patient).items():
        status, body = fetch(client, method, url)
        assert SECRET not in body, name
        assert status in (200, 302, 403, 404, 405), (name, status)


def test_an_inactive_user_reads_nothing(record, record_patient, client_for):
    user = UserFactory(username="ex_func", is_staff=True)
    client = client_for(user)
    for name, (method, url) in content_urls(record, record_patient).items():
        assert SECRET not in fetch(client, method, url)[1], name
