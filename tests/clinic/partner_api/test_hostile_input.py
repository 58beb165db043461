"""What a fuzzer or a careless partner sends: every answer is a 4xx problem+json, never a
500 or an HTML page (issue 17)."""

import json

import pytest
from django.test import Client

from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES
from scheduling.models import Appointment
from tests.scheduling.test_api import booking, make_agenda

pytestmark = pytest.mark.django_db

API = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
def agenda(clinic_a):
    return make_agenda(clinic_a)


@pytest.fixture
def api_client(db):
    """``api_client(clinic, scopes=…)``: a test client sending a new key of that clinic."""

    def make(clinic, scopes=API_SCOPES) -> Client:
        _key, secret = api_key_create(clinic=clinic, name="Parceiro", scopes=list(scopes))
        return Client(headers={"Authorization": f"Bearer {secret}"})

    return make


def send(client, method, url, raw: str | bytes, **headers):
    return client.generic(method, url, raw, content_type="application/json", headers=headers)


def assert_problem(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def test_deeply_nested_json_is_a_400_problem(agenda, api_client):
    client = api_client(agenda.clinic)
    response = send(client, "POST", f"{API}/appointments/", "[" * 4096 + "]" * 4096)
    assert_problem(response, 400)
    assert not Appointment.objects.exists()


def test_a_start_in_the_year_9999_is_a_field_error_when_booking(agenda, api_client):
    body = booking(agenda, start="9999-12-31T10:00:00-03:00")
    response = send(api_client(agenda.clinic), "POST", f"{API}/appointments/", json.dumps(body))
    problem = assert_problem(response, 400)
    assert "start" in problem["errors"]


def test_a_start_in_the_year_9999_is_a_field_error_when_rescheduling(agenda, api_client):
    client = api_client(agenda.clinic)
    booked = send(client, "POST", f"{API}/appointments/", json.dumps(booking(agenda)))
    url = f"{API}/appointments/{booked.json()['id']}/reschedule/"
    response = send(client, "POST", url, json.dumps({"start": "9999-12-31T10:00:00-03:00"}))
    problem = assert_problem(response, 400)
    assert "start" in problem["errors"]


def test_a_float_id_is_refused_not_truncated(agenda, api_client):
    body = booking(agenda, patient=agenda.patient.pk + 0.9)
    response = send(api_client(agenda.clinic), "POST", f"{API}/appointments/", json.dumps(body))
    problem = assert_problem(response, 400)
    assert "patient" in problem["errors"]
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("field", ["professional", "service"])
def test_a_float_professional_or_service_is_refused(field, agenda, api_client):
    body = booking(agenda, **{field: getattr(agenda, field).pk + 0.5})
    response = send(api_client(agenda.clinic), "POST", f"{API}/appointments/", json.dumps(body))
    assert field in assert_problem(response, 400)["errors"]


def test_an_unknown_api_path_is_a_404_problem(agenda, api_client):
    response = api_client(agenda.clinic).get(f"{API}/no-such-thing/")
    assert_problem(response, 404)


def test_an_over_size_body_is_a_413_problem(agenda, api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    raw = json.dumps({**booking(agenda), "notes": "x" * 5000})
    response = send(api_client(agenda.clinic), "POST", f"{API}/appointments/", raw)
    assert_problem(response, 413)


def test_an_unsupported_method_is_a_405_even_without_its_scope(agenda, api_client):
    client = api_client(agenda.clinic, scopes=["availability:read"])
    response = send(client, "DELETE", f"{API}/services/{agenda.service.pk}/", "")
    assert_problem(response, 405)
    response = send(client, "PUT", f"{API}/services/", "{}")
    assert_problem(response, 405)


def test_an_action_path_without_its_trailing_slash_works(agenda, api_client):
    client = api_client(agenda.clinic)
    booked = send(client, "POST", f"{API}/appointments", json.dumps(booking(agenda)))
    assert booked.status_code == 201, booked.content[:300]
    response = send(client, "POST", f"{API}/appointments/{booked.json()['id']}/confirm", "")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["status"] == "confirmed"
    assert client.get(f"{API}/services").status_code == 200


def test_a_replayed_201_keeps_its_location(agenda, api_client):
    client = api_client(agenda.clinic)
    raw = json.dumps(booking(agenda))
    first = send(client, "POST", f"{API}/appointments/", raw, **{"Idempotency-Key": "k-1"})
    again = send(client, "POST", f"{API}/appointments/", raw, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert again.json() == first.json()
