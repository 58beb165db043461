"""Validation reports every field at once, and a problem's title and detail speak the
request's language (``Accept-Language``; pt-BR by default) — issue 17."""

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from clinic.models import Patient
from clinic.partner_api.problems import problem_exception_handler
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
        "Permissão negada",
        "Não encontrado",
        "Método não permitido",
    ]


def test_problem_titles_follow_accept_language(clinic_a):
    client = key_client(clinic_a, "patients:write", "patients:read")
    answers = problems(client, "en")
    assert [r.json()["title"] for r in answers] == [
        "Invalid request",
        "Permission denied",
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
    assert pt.json()["title"] == "Paciente já cadastrado"
    assert en.json()["title"] == "Patient already registered"


def test_problems_of_one_status_but_different_types_have_different_titles(clinic_a):
    """A title summarises the problem type (RFC 9457 §3.1.3), not the status: a body that
    is not JSON and a body with a wrong field are both 400s, yet different problems."""
    client = key_client(clinic_a, "patients:write")
    malformed = client.post(PATIENTS, "{not json", content_type="application/json")
    invalid = client.post(PATIENTS, {}, format="json")
    no_key = APIClient().get(PATIENTS)
    bad_key = APIClient(HTTP_AUTHORIZATION="Bearer cdr_00000000_nope").get(PATIENTS)
    answers = [r.json() for r in (malformed, invalid, no_key, bad_key)]
    assert [(a["status"], a["type"].rsplit("/", 1)[1], a["title"]) for a in answers] == [
        (400, "parse_error", "Corpo da requisição malformado"),
        (400, "invalid", "Requisição inválida"),
        (401, "not_authenticated", "Autenticação necessária"),
        (401, "authentication_failed", "Falha na autenticação"),
    ]


def test_a_scheduling_problem_names_its_own_type_in_both_languages(clinic_a):
    from scheduling.exceptions import SlotUnavailable

    with translation.override("pt-br"):  # not whatever language an earlier test left active
        pt = problem_exception_handler(SlotUnavailable(), {})
    with translation.override("en"):
        en = problem_exception_handler(SlotUnavailable(), {})
    assert (pt.status_code, pt.data["title"]) == (409, "Horário indisponível")
    assert (en.status_code, en.data["title"]) == (409, "Time slot unavailable")
