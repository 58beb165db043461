"""The audit trail: who read or changed whose data, when and from where — staff opening a
record, an appointment or a patient's messages, or downloading a report; a partner key
reading a patient; a patient signing in and downloading their data; an anonymisation.
Append-only, each clinic sees only its own, and patients see who accessed theirs."""

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from clinic import privacy
from clinic.audit import audit_record
from clinic.models import AuditEntry
from clinic.portal import sessions
from tests.clinic.factories import PatientFactory
from tests.clinic.partner_api.helpers import key_client
from tests.scheduling.factories import AppointmentFactory

pytestmark = pytest.mark.django_db
A = AuditEntry.Actor


def entries(**filters):
    return list(AuditEntry.objects.filter(**filters).order_by("pk"))


def test_staff_opening_a_patient_record_is_recorded(client_for, receptionist_a, patient_a):
    staff = client_for(receptionist_a)
    url = reverse("admin:clinic_patient_change", args=[patient_a.pk])
    assert staff.get(url, REMOTE_ADDR="10.1.2.3").status_code == 200
    [entry] = entries(action="view")
    assert (entry.actor_kind, entry.actor_id, entry.actor_label) == (
        A.STAFF,
        receptionist_a.pk,
        receptionist_a.username,
    )
    assert (entry.clinic_id, entry.patient_id, entry.object_id) == (
        patient_a.clinic_id,
        patient_a.pk,
        str(patient_a.pk),
    )
    assert entry.ip == "10.1.2.3"


def test_the_patient_list_is_not_a_record_reading(client_for, receptionist_a, patient_a):
    client_for(receptionist_a).get(reverse("admin:clinic_patient_changelist"))
    assert entries() == []


def test_a_partner_key_reading_a_patient_is_recorded(clinic_a, patient_a):
    api = key_client(clinic_a, "patients:read", name="Laboratório X")
    assert api.get(f"/api/v1/patients/{patient_a.pk}/").status_code == 200
    [entry] = entries(action="view")
    assert entry.actor_kind == A.API_KEY
    assert entry.actor_label.startswith("Laboratório X")
    assert entry.patient_id == patient_a.pk


def test_a_patient_downloading_their_data_is_recorded(patient_a, client):
    token, _session = sessions.session_start(patient=patient_a)
    client.cookies[sessions.COOKIE_NAME] = token
    assert client.post(reverse("portal:privacy_export_json")).status_code == 200
    [entry] = entries(action="export")
    assert (entry.actor_kind, entry.patient_id, entry.details) == (
        A.PATIENT,
        patient_a.pk,
        {"format": "json"},
    )


def test_an_anonymisation_is_recorded_with_who_did_it(patient_a, manager_a):
    privacy.patient_anonymise(patient=patient_a, by=manager_a)
    [entry] = entries(action="anonymise")
    assert (entry.actor_kind, entry.actor_id, entry.patient_id) == (
        A.STAFF,
        manager_a.pk,
        patient_a.pk,
    )


def test_an_entry_cannot_be_changed_or_deleted_through_the_orm(clinic_a):
    entry = audit_record(clinic=clinic_a, action="view", actor_kind=A.SYSTEM)
    entry.action = "nothing happened"
    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_delete_an_entry(clinic_a):
    entry = audit_record(clinic=clinic_a, action="view", actor_kind=A.SYSTEM)
    for sql in (
        "UPDATE clinic_auditentry SET action = 'x' WHERE id = %s",
        "DELETE FROM clinic_auditentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == "view"


def test_a_manager_sees_only_the_clinic_s_trail_and_cannot_edit_it(
    client_for, manager_a, clinic_b, patient_a
):
    mine = audit_record(clinic=patient_a.clinic, action="view", actor_kind=A.SYSTEM)
    theirs = audit_record(clinic=clinic_b, action="view", actor_kind=A.SYSTEM)
    staff = client_for(manager_a)
    listing = staff.get(reverse("admin:clinic_auditentry_changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [mine]
    assert staff.get(reverse("admin:clinic_auditentry_change", args=[theirs.pk])).status_code == 404
    assert staff.get(reverse("admin:clinic_auditentry_add")).status_code == 403
    assert (
        staff.post(reverse("admin:clinic_auditentry_delete", args=[mine.pk]), {"post": "yes"})
    ).status_code == 403
    assert AuditEntry.objects.count() == 2


def test_receptionists_do_not_see_the_trail(client_for, receptionist_a):
    response = client_for(receptionist_a).get(reverse("admin:clinic_auditentry_changelist"))
    assert response.status_code == 403


# --- The admin's other pages that show clinical or personal data ----------------------------
def test_staff_opening_an_appointment_with_its_notes_is_recorded(
    client_for, receptionist_a, patient_a
):
    booked = AppointmentFactory(clinic=patient_a.clinic, patient=patient_a)
    staff = client_for(receptionist_a)
    url = reverse("admin:scheduling_appointment_change", args=[booked.pk])
    assert staff.get(url).status_code == 200
    [entry] = entries(action="view")
    assert (entry.actor_kind, entry.actor_id, entry.patient_id) == (
        A.STAFF,
        receptionist_a.pk,
        patient_a.pk,
    )
    assert (entry.object_type, entry.object_id) == ("scheduling.appointment", str(booked.pk))


def test_another_clinics_appointment_is_not_found_in_the_admin_and_nothing_is_recorded(
    client_for, receptionist_a, patient_b
):
    theirs = AppointmentFactory(clinic=patient_b.clinic, patient=patient_b)
    url = reverse("admin:scheduling_appointment_change", args=[theirs.pk])
    response = client_for(receptionist_a).get(url)
    assert response.status_code == 404
    assert entries() == []


def test_staff_opening_a_patients_messages_is_recorded(client_for, receptionist_a, patient_a):
    staff = client_for(receptionist_a)
    assert (
        staff.get(reverse("admin:messaging_patient_messages", args=[patient_a.pk])).status_code
        == 200
    )
    [entry] = entries(action="view")
    assert (entry.patient_id, entry.details) == (patient_a.pk, {"page": "messages"})


def test_staff_downloading_a_report_is_recorded(client_for, manager_a, clinic_a):
    staff = client_for(manager_a)
    response = staff.get(reverse("admin:billing_reports_export", args=["receivables", "csv"]))
    assert response.status_code == 200
    [entry] = entries(action="export")
    assert (entry.actor_id, entry.clinic_id, entry.patient_id) == (manager_a.pk, clinic_a.pk, None)
    assert entry.details["report"] == "receivables"
    assert entry.details["format"] == "csv"


# --- What the patient sees ------------------------------------------------------------------
def test_the_patient_sees_who_accessed_their_data_without_staff_names(
    client_for, receptionist_a, patient_a, clinic_a, clinic_b
):
    client_for(receptionist_a).get(reverse("admin:clinic_patient_change", args=[patient_a.pk]))
    key_client(clinic_a, "patients:read", name="Laboratório X").get(
        f"/api/v1/patients/{patient_a.pk}/"
    )
    someone_else = PatientFactory(clinic=clinic_a)
    audit_record(clinic=clinic_a, action="view", actor_kind=A.SYSTEM, patient=someone_else)
    audit_record(clinic=clinic_b, action="view", actor_kind=A.SYSTEM, patient=patient_a.pk)
    token, _session = sessions.session_start(patient=patient_a)
    portal = Client()
    portal.cookies[sessions.COOKIE_NAME] = token

    page = portal.get(reverse("portal:privacy"))

    accesses = page.context["accesses"]
    # Newest first: her own sign-in is not recorded here (session_start is not sign_in).
    assert [(a["who"], a["what"]) for a in accesses] == [
        ("Sistema parceiro: Laboratório X", "consultou seu cadastro"),
        ("Equipe da clínica", "consultou seu cadastro"),
    ]
    html = page.content.decode()
    assert "Quem acessou seus dados" in html
    assert receptionist_a.username not in html
    assert "cdr_" not in html
