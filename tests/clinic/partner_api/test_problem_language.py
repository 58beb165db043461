"""Validation reports every field at once, and a problem's title and detail speak the
request's language (``Accept-Language``; pt-BR by default) — issue 17."""

import pytest

from clinic.models import Patient
from tests.clinic.partner_api.helpers import key_client

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"


def test_a_bad_cpf_and_a_missing_phone_are_reported_together(clinic_a):
    client = key_client(clinic_a, "patients:write")
    response = client.post(PATIENTS, {"full_name": "Ana", "cpf": "123"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"cpf", "phone"}
    assert not Patient.objects.exists()


def test_a_bad_phone_on_correction_is_a_field_error(clinic_a, patient_a):
    client = key_client(clinic_a, "patients:write")
    response = client.patch(f"{PATIENTS}{patient_a.pk}/", {"phone": "12"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"phone"}


def problems(client, language=None):
    """A 400, a 403, a 404, a 405 and a 409 (an application error) of one client."""
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    return [
        client.post(PATIENTS, {}, format="json", **headers),
        client.get("/api/v1/payments/", **headers),
        client.get(f"{PATIENTS}999999/", **headers),
        client.delete(f"{PATIENTS}1/", **headers),
    ]


def test_problem_titles_are_portuguese_by_default(clinic_a):
    client = key_client(clinic_a, "patients:write", "patients:read")
    titles = [r.json()["title"] for r in problems(client)]
    assert [r.status_code for r in problems(client)] == [400, 403, 404, 405]
    assert titles == [
        "Requisição inválida",
        "Acesso negado",
        "Não encontrado",
        "Método não permitido",
    ]


def test_problem_titles_follow_accept_language(clinic_a):
    client = key_client(clinic_a, "patients:write", "patients:read")
    answers = problems(client, "en")
    assert [r.json()["title"] for r in answers] == [
        "Invalid request",
        "Forbidden",
        "Not found",
        "Method not allowed",
    ]
    assert answers[0].json()["detail"] == "The request has invalid fields."


def test_an_application_error_title_is_translated_too(clinic_a, patient_a):
    client = key_client(clinic_a, "patients:write")
    body = {"full_name": "Outra", "cpf": patient_a.cpf, "phone": "(11) 98765-4321"}
    pt = client.post(PATIENTS, body, format="json")
    en = client.post(PATIENTS, body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert pt.status_code == en.status_code == 409
    assert pt.json()["title"] == "Conflito"
    assert en.json()["title"] == "Conflict"
