"""What a receptionist does with patients in the admin."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic.models import Consent, Patient
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:clinic_patient_changelist")
ADD = reverse("admin:clinic_patient_add")


def patient_form(**overrides):
    data = {
        "full_name": "Joana Dark Pereira",
        "social_name": "",
        "cpf": "390.533.447-05",
        "birth_date": "1990-05-17",
        "sex": "female",
        "gender_identity": "",
        "phone": "(11) 98765-4321",
        "email": "joana@example.com",
        "preferred_channel": "whatsapp",
        "postal_code": "",
        "street": "",
        "number": "",
        "complement": "",
        "district": "",
        "city": "",
        "state": "",
        "blood_type": "",
        "allergies": "",
        "chronic_conditions": "",
        "medications": "",
        "lead_source": "",
        "notes": "",
        "consents-TOTAL_FORMS": "0",
        "consents-INITIAL_FORMS": "0",
        "consents-MIN_NUM_FORMS": "0",
        "consents-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def found(client, term):
    return list(client.get(CHANGELIST, {"q": term}).context["cl"].result_list)


@pytest.mark.parametrize("term", ["52998224725", "529.982.247-25", "529982"])
def test_it_finds_a_patient_by_cpf_typed_any_way(term, patient_a, receptionist_a, client_for):
    assert found(client_for(receptionist_a), term) == [patient_a]


@pytest.mark.parametrize("term", ["maria jose", "MARIA JOSÉ", "araujo", "José Araújo"])
def test_it_finds_a_patient_by_name_ignoring_accents_and_case(
    term, patient_a, receptionist_a, client_for
):
    assert found(client_for(receptionist_a), term) == [patient_a]


def test_it_finds_a_patient_by_phone_as_typed(clinic_a, receptionist_a, client_for):
    patient = PatientFactory(clinic=clinic_a, phone="+5511976543210")
    PatientFactory(clinic=clinic_a, phone="+5521999998888")
    assert found(client_for(receptionist_a), "(11) 97654-3210") == [patient]


def test_a_receptionist_registers_a_patient_in_her_clinic(clinic_a, receptionist_a, client_for):
    response = client_for(receptionist_a).post(ADD, patient_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    patient = Patient.objects.get()
    assert patient.clinic == clinic_a
    assert patient.cpf == "39053344705"
    assert patient.phone == "+5511987654321"


def test_the_form_has_no_clinic_field_for_staff(receptionist_a, client_for):
    form = client_for(receptionist_a).get(ADD).context["adminform"].form
    assert "clinic" not in form.fields


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpf", "123.456.789-00", "Informe um CPF válido"),
        ("cpf", "111.111.111-11", "Informe um CPF válido"),
        ("phone", "1234", "Informe um telefone válido com DDD"),
        ("email", "joana@", "Insira um endereço de email válido"),
    ],
)
def test_it_refuses_invalid_data_with_a_clear_message_and_saves_nothing(
    field, value, message, receptionist_a, client_for
):
    response = client_for(receptionist_a).post(ADD, patient_form(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert Patient.objects.count() == 0


def test_it_refuses_a_cpf_already_registered_in_the_clinic(patient_a, receptionist_a, client_for):
    response = client_for(receptionist_a).post(ADD, patient_form(cpf=patient_a.cpf_formatted))
    assert response.status_code == 200
    assert "Já existe um paciente com este CPF nesta clínica." in response.content.decode()
    assert Patient.objects.count() == 1


def test_the_same_cpf_may_exist_in_another_clinic(patient_a, receptionist_b, client_for):
    response = client_for(receptionist_b).post(ADD, patient_form(cpf=patient_a.cpf))
    assert response.status_code == 302
    assert Patient.objects.filter(cpf=patient_a.cpf).count() == 2


def test_consent_given_at_registration_is_recorded_with_who_did_it(receptionist_a, client_for):
    data = patient_form(
        **{
            "consents-TOTAL_FORMS": "1",
            "consents-0-channel": "whatsapp",
            "consents-0-purpose": "marketing",
            "consents-0-status": "granted",
            "consents-0-legal_basis": "consent",
            "consents-0-source": "reception",
            "consents-0-text_version": "2026-01",
        }
    )
    response = client_for(receptionist_a).post(ADD, data)
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert consent.patient == Patient.objects.get()
    assert consent.clinic == consent.patient.clinic
    assert consent.recorded_by == receptionist_a


def test_an_invalid_consent_row_saves_neither_patient_nor_consent(receptionist_a, client_for):
    data = patient_form(
        **{
            "consents-TOTAL_FORMS": "1",
            "consents-0-channel": "whatsapp",
            "consents-0-purpose": "",  # missing
            "consents-0-status": "granted",
            "consents-0-legal_basis": "consent",
            "consents-0-source": "reception",
        }
    )
    response = client_for(receptionist_a).post(ADD, data)
    assert response.status_code == 200
    assert Patient.objects.count() == 0
    assert Consent.objects.count() == 0


def test_editing_a_patient_keeps_the_clinic_and_updates_the_search(
    patient_a, receptionist_a, client_for
):
    url = reverse("admin:clinic_patient_change", args=[patient_a.pk])
    data = patient_form(full_name="Maria José Araújo Lima", cpf=patient_a.cpf)
    response = client_for(receptionist_a).post(url, data)
    assert response.status_code == 302
    patient_a.refresh_from_db()
    assert patient_a.full_name == "Maria José Araújo Lima"
    assert found(client_for(receptionist_a), "lima") == [patient_a]


def test_rotating_the_checkin_token_invalidates_the_old_one(patient_a, receptionist_a, client_for):
    old = patient_a.checkin_token
    response = client_for(receptionist_a).post(
        CHANGELIST, {"action": "rotate_checkin_token", "_selected_action": [patient_a.pk]}
    )
    assert response.status_code == 302
    patient_a.refresh_from_db()
    assert patient_a.checkin_token != old


def test_a_professional_cannot_delete_patients(clinic_a, patient_a, client_for):
    from clinic import services
    from clinic.models import Membership
    from tests.clinic.factories import UserFactory

    user = UserFactory()
    services.membership_save(membership=Membership(user=user, clinic=clinic_a, role="professional"))
    url = reverse("admin:clinic_patient_delete", args=[patient_a.pk])
    assert client_for(user).post(url, {"post": "yes"}).status_code == 403
    assert Patient.objects.filter(pk=patient_a.pk).exists()


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST).status_code == 200
    return len(queries)


def test_the_patient_changelist_runs_a_constant_number_of_queries(
    clinic_a, receptionist_a, client_for, django_assert_max_num_queries
):
    client = client_for(receptionist_a)
    PatientFactory.create_batch(10, clinic=clinic_a)
    with_10 = _changelist_queries(client)
    PatientFactory.create_batch(90, clinic=clinic_a)
    with_100 = _changelist_queries(client)
    assert with_10 == with_100
    with django_assert_max_num_queries(12):
        client.get(CHANGELIST)


@pytest.mark.parametrize(
    ("model", "factory_path"),
    [
        ("professional", "ProfessionalFactory"),
        ("room", "RoomFactory"),
        ("consent", "ConsentFactory"),
    ],
)
def test_other_changelists_run_a_constant_number_of_queries(
    model, factory_path, clinic_a, patient_a, manager_a, client_for
):
    from tests.clinic import factories

    factory = getattr(factories, factory_path)
    kwargs = {"patient": patient_a} if model == "consent" else {"clinic": clinic_a}
    url = reverse(f"admin:clinic_{model}_changelist")
    client = client_for(manager_a)
    factory.create_batch(3, **kwargs)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    factory.create_batch(30, **kwargs)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few) == len(many)


def test_registering_and_changing_a_patient_publish_events_without_personal_data(clinic_a):
    from clinic import services
    from integrations.models import Event

    patient = services.patient_create(
        clinic=clinic_a, full_name="Ana Evento", phone="+5511987650000"
    )
    services.patient_update(patient=patient, email="ana@example.com")

    created, updated = Event.objects.order_by("created_at")
    assert (created.event_type, created.payload) == ("patient.created", {"patient_id": patient.pk})
    assert updated.event_type == "patient.updated"
    assert updated.payload == {"patient_id": patient.pk, "fields": ["email"]}
