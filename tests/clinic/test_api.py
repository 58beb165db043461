"""Partner API: patients (``/api/v1/patients/``)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from clinic.models import Patient
from tests.clinic.factories import PatientFactory
from tests.clinic.partner_api.helpers import key_client

pytestmark = pytest.mark.django_db

LIST = "/api/v1/patients/"
PROBLEM = "application/problem+json"
MARIA = {
    "full_name": "Maria das Dores Silva",
    "cpf": "529.982.247-25",
    "phone": "(11) 98765-4321",
    "email": "maria@example.com",
    "birth_date": "1980-05-17",
    "preferred_channel": "sms",
}


def detail(patient) -> str:
    return f"{LIST}{patient.pk}/"


@pytest.fixture
def partner_a(clinic_a):
    return key_client(clinic_a, "patients:read", "patients:write")


# --- Creating -------------------------------------------------------------------------------
def test_it_creates_a_patient_with_normalised_cpf_and_phone(partner_a, clinic_a):
    response = partner_a.post(LIST, MARIA, format="json")

    assert response.status_code == 201, response.content
    patient = Patient.objects.get()
    assert patient.clinic == clinic_a
    body = response.json()
    assert body["id"] == patient.pk
    assert body["cpf"] == "52998224725"
    assert body["phone"] == "+5511987654321"
    assert body["preferred_channel"] == "sms"
    assert body["birth_date"] == "1980-05-17"
    assert body["first_name"] == "Maria"
    assert body["created_at"].endswith("-03:00")  # ISO 8601 with its offset
    assert response["Location"].endswith(detail(patient))


def test_datetimes_are_in_the_clinics_time_zone(clinic_a):
    clinic_a.time_zone = "America/Manaus"
    clinic_a.save(update_fields=["time_zone"])
    response = key_client(clinic_a, "patients:read", "patients:write").post(
        LIST, MARIA, format="json"
    )
    assert response.json()["created_at"].endswith("-04:00")


def test_it_never_answers_with_clinical_data(partner_a, patient_a):
    Patient.objects.filter(pk=patient_a.pk).update(allergies="Dipirona", notes="VIP")
    body = partner_a.get(detail(patient_a)).json()
    assert not {"allergies", "notes", "medications", "checkin_token"} & set(body)


def test_a_write_only_key_gets_only_the_id_and_first_name_back(clinic_a):
    response = key_client(clinic_a, "patients:write").post(LIST, MARIA, format="json")
    assert response.status_code == 201
    assert response.json() == {"id": Patient.objects.get().pk, "first_name": "Maria"}


def test_it_refuses_an_invalid_cpf_and_phone_as_field_errors(partner_a):
    response = partner_a.post(
        LIST, {**MARIA, "cpf": "111.111.111-11", "phone": "123"}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"cpf", "phone"}
    assert not Patient.objects.exists()


def test_it_refuses_a_body_without_the_required_fields(partner_a):
    response = partner_a.post(LIST, {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"full_name", "phone", "email"}


def test_a_cpf_already_registered_in_the_clinic_is_a_conflict(partner_a, patient_a):
    response = partner_a.post(LIST, {**MARIA, "cpf": patient_a.cpf}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert "cpf" in response.json()["errors"]
    assert Patient.objects.count() == 1


def test_the_same_cpf_may_be_a_patient_of_another_clinic(clinic_b, patient_a):
    partner_b = key_client(clinic_b, "patients:write")
    response = partner_b.post(LIST, {**MARIA, "cpf": patient_a.cpf}, format="json")
    assert response.status_code == 201
    assert Patient.objects.filter(cpf=patient_a.cpf).count() == 2


def test_the_clinic_comes_from_the_key_not_from_the_body(clinic_a, clinic_b):
    response = key_client(clinic_a, "patients:write").post(
        LIST, {**MARIA, "clinic": clinic_b.pk, "clinic_id": clinic_b.pk}, format="json"
    )
    assert response.status_code == 201
    assert Patient.objects.get().clinic == clinic_a


# --- Idempotency ----------------------------------------------------------------------------
def test_a_replayed_post_with_the_same_idempotency_key_creates_one_patient(partner_a):
    first = partner_a.post(LIST, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    again = partner_a.post(LIST, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Patient.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_refused(partner_a):
    partner_a.post(LIST, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    other = partner_a.post(
        LIST, {**MARIA, "full_name": "Outra Pessoa"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-2"
    )
    assert other.status_code == 422
    assert other["Content-Type"] == PROBLEM
    assert Patient.objects.count() == 1


# --- Reading and searching ------------------------------------------------------------------
def test_it_shows_a_patient_of_the_clinic(partner_a, patient_a):
    body = partner_a.get(detail(patient_a)).json()
    assert body["id"] == patient_a.pk
    assert body["full_name"] == "Maria José Araújo"
    assert body["cpf"] == "52998224725"


@pytest.mark.parametrize("typed", ["52998224725", "529.982.247-25", " 529 982 247 25 "])
def test_it_finds_a_patient_by_cpf_typed_any_way(partner_a, patient_a, clinic_a, typed):
    PatientFactory(clinic=clinic_a)
    response = partner_a.get(LIST, {"cpf": typed})
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [patient_a.pk]


@pytest.mark.parametrize(
    "typed",
    [
        "+5511987654321",
        "5511987654321",
        "11987654321",
        "(11) 98765-4321",
        "(11) 8765-4321",  # the old 8-digit mobile
        "+55 11 8765-4321",
    ],
)
def test_it_finds_a_patient_by_phone_with_or_without_country_code_and_9th_digit(
    partner_a, clinic_a, typed
):
    patient = PatientFactory(clinic=clinic_a, phone="+5511987654321")
    PatientFactory(clinic=clinic_a, phone="+5511912345678")
    response = partner_a.get(LIST, {"phone": typed})
    assert response.status_code == 200, response.content
    assert [p["id"] for p in response.json()["results"]] == [patient.pk]


def test_it_finds_a_patient_stored_with_the_old_8_digit_number(partner_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, phone="+551187654321")
    Patient.objects.filter(pk=patient.pk).update(phone="+551187654321")
    response = partner_a.get(LIST, {"phone": "(11) 98765-4321"})
    assert [p["id"] for p in response.json()["results"]] == [patient.pk]


def test_a_search_by_an_invalid_cpf_or_phone_is_a_400(partner_a):
    response = partner_a.get(LIST, {"cpf": "123", "phone": "12"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"cpf", "phone"}


def test_a_write_only_key_finds_a_patient_but_sees_only_the_id_and_first_name(clinic_a, patient_a):
    client = key_client(clinic_a, "patients:write")
    found = client.get(LIST, {"cpf": patient_a.cpf}).json()["results"]
    assert found == [{"id": patient_a.pk, "first_name": "Maria"}]
    assert client.get(detail(patient_a)).json() == {"id": patient_a.pk, "first_name": "Maria"}


def test_a_write_only_key_may_not_list_every_patient(clinic_a, patient_a):
    response = key_client(clinic_a, "patients:write").get(LIST)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_a_read_key_lists_the_clinics_patients_a_page_at_a_time(partner_a, clinic_a):
    PatientFactory.create_batch(3, clinic=clinic_a)
    first = partner_a.get(LIST, {"page_size": 2}).json()
    assert len(first["results"]) == 2
    rest = partner_a.get(first["next"]).json()
    assert len(rest["results"]) == 1
    assert rest["next"] is None


# --- Updating -------------------------------------------------------------------------------
def test_it_updates_the_contact_data_of_a_patient(partner_a, patient_a):
    response = partner_a.patch(
        detail(patient_a),
        {"phone": "(21) 99876-5432", "email": "nova@example.com", "city": "Niterói"},
        format="json",
    )
    assert response.status_code == 200, response.content
    patient_a.refresh_from_db()
    assert patient_a.phone == "+5521998765432"
    assert patient_a.email == "nova@example.com"
    assert patient_a.city == "Niterói"
    assert response.json()["phone"] == "+5521998765432"


def test_patch_refuses_what_is_not_contact_data(partner_a, patient_a):
    response = partner_a.patch(
        detail(patient_a), {"cpf": "39053344705", "full_name": "Outra"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"cpf", "full_name"}
    patient_a.refresh_from_db()
    assert patient_a.cpf == "52998224725"


def test_patch_refuses_an_invalid_phone(partner_a, patient_a):
    response = partner_a.patch(detail(patient_a), {"phone": "abc"}, format="json")
    assert response.status_code == 400
    assert "phone" in response.json()["errors"]


def test_a_write_only_key_cannot_read_a_patient_through_patch(clinic_a, patient_a):
    response = key_client(clinic_a, "patients:write").patch(detail(patient_a), {}, format="json")
    assert response.status_code == 200
    assert response.json() == {"id": patient_a.pk, "first_name": "Maria"}


# --- Tenancy, scopes, authentication --------------------------------------------------------
REQUESTS = [
    ("get", lambda p: detail(p), None),
    ("patch", lambda p: detail(p), {"email": "x@example.com"}),
]


ALL_REQUESTS = [
    ("get", lambda p: LIST, None),
    ("get", lambda p: detail(p), None),
    ("post", lambda p: LIST, MARIA),
    ("patch", lambda p: detail(p), {"email": "x@example.com"}),
]


@pytest.mark.parametrize(("method", "url", "body"), ALL_REQUESTS)
def test_a_key_without_the_scope_gets_403(clinic_a, patient_a, method, url, body):
    client = key_client(clinic_a, "payments:read", "leads:write")
    response = getattr(client, method)(url(patient_a), body, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM


def test_a_read_only_key_cannot_write(clinic_a, patient_a):
    client = key_client(clinic_a, "patients:read")
    assert client.post(LIST, MARIA, format="json").status_code == 403
    assert client.patch(detail(patient_a), {}, format="json").status_code == 403


@pytest.mark.parametrize(("method", "url", "body"), ALL_REQUESTS)
def test_no_key_gets_401(patient_a, method, url, body):
    response = getattr(APIClient(), method)(url(patient_a), body, format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_staff_browse_the_patients_of_their_clinic_read_only(receptionist_a, patient_a, patient_b):
    client = APIClient()
    client.force_login(receptionist_a)
    assert [p["id"] for p in client.get(LIST).json()["results"]] == [patient_a.pk]
    assert client.get(detail(patient_b)).status_code == 404
    assert client.post(LIST, MARIA, format="json").status_code == 403


# --- Query counts ---------------------------------------------------------------------------
@pytest.mark.parametrize("scopes", [("patients:read",), ("patients:write",)])
def test_listing_patients_costs_the_same_queries_for_3_or_30(
    clinic_a, django_assert_max_num_queries, scopes
):
    client = key_client(clinic_a, *scopes)
    PatientFactory.create_batch(3, clinic=clinic_a, phone="+5511987654321")
    params = {"phone": "+5511987654321", "page_size": 50}
    client.get(LIST, params)  # the key's last_used_at is written on its first use
    with CaptureQueriesContext(connection) as three:
        assert len(client.get(LIST, params).json()["results"]) == 3
    PatientFactory.create_batch(27, clinic=clinic_a, phone="+5511987654321")
    with django_assert_max_num_queries(len(three)):
        assert len(client.get(LIST, params).json()["results"]) == 30
