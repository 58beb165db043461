"""The agenda in the partner API (/api/v1/): services, professionals, availability and
appointments — tenancy, scopes, booking, idempotency, the status machine, pagination, query
counts and throttling."""

import threading
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.partner_api.keys import api_key_create, api_key_revoke
from clinic.partner_api.scopes import API_SCOPES
from clinic.partner_api.throttling import ApiKeyThrottle
from scheduling.choices import AppointmentStatus, Channel, Weekday
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import (
    AppointmentFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
S = AppointmentStatus
API = "/api/v1"
PROBLEM = "application/problem+json"


# --- Personas and helpers -------------------------------------------------------------------
def a_workday(days_ahead: int = 7) -> date:
    """A day some way ahead that is not a national holiday (the agenda is closed then)."""
    day = timezone.now().astimezone(SP).date() + timedelta(days=days_ahead)
    while day in holidays.country_holidays("BR", years=day.year):
        day += timedelta(days=1)
    return day


def make_agenda(clinic) -> SimpleNamespace:
    """A professional working 08:00–18:00 every day, a 30-min consultation she performs, a
    patient, and 09:00 of a workday a week ahead."""
    professional = ProfessionalFactory(
        clinic=clinic, council="CRM", registration="123456", council_state="SP"
    )
    service = ServiceFactory(clinic=clinic, professionals=[professional], price=Decimal("150.00"))
    for weekday in Weekday:
        WorkingHoursFactory(
            professional=professional, weekday=weekday, start_time=time(8), end_time=time(18)
        )
    nine = datetime.combine(a_workday(), time(9), tzinfo=SP)
    return SimpleNamespace(
        clinic=clinic,
        professional=professional,
        service=service,
        patient=PatientFactory(clinic=clinic),
        nine=nine,
    )


@pytest.fixture
def agenda(clinic_a):
    return make_agenda(clinic_a)


@pytest.fixture
def agenda_b(clinic_b):
    return make_agenda(clinic_b)


def throttle_key(key) -> str:
    return ApiKeyThrottle.cache_format % {"scope": ApiKeyThrottle.scope, "ident": f"key-{key.pk}"}


@pytest.fixture
def api_client(db):
    """``api_client(clinic, scopes=…)``: a test client sending a new key of that clinic.

    Throttle histories live in the cache, which outlives the test database, where primary
    keys repeat: each key starts with none and leaves none behind."""
    made = []

    def make(clinic, scopes=API_SCOPES, **kwargs) -> Client:
        key, secret = api_key_create(clinic=clinic, name="Parceiro", scopes=list(scopes))
        made.append(throttle_key(key))
        cache.delete(made[-1])
        client = Client(headers={"Authorization": f"Bearer {secret}"}, **kwargs)
        client.key = key
        client.secret = secret
        return client

    yield make
    cache.delete_many(made)


def post(client, url, body=None, **headers):
    return client.post(url, body or {}, content_type="application/json", headers=headers)


def booking(agenda, **overrides) -> dict:
    body = {
        "patient": agenda.patient.pk,
        "professional": agenda.professional.pk,
        "service": agenda.service.pk,
        "start": agenda.nine.isoformat(),
        "notes": "Trazer exames anteriores.",
    }
    return {**body, **overrides}


def appointment_of(agenda, start=None, **kwargs) -> Appointment:
    kwargs.setdefault("patient", agenda.patient)
    kwargs.setdefault("professional", agenda.professional)
    return AppointmentFactory(service=agenda.service, start=start or agenda.nine, **kwargs)


def assert_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


# --- Tenancy, scopes, keys ------------------------------------------------------------------
def _availability_url(w) -> str:
    start, end = w.nine, w.nine + timedelta(hours=2)
    return (
        f"{API}/availability?service={w.service.pk}&professional={w.professional.pk}"
        f"&start={start.isoformat().replace('+', '%2B')}&end={end.isoformat()}"
    )


#: name → (method, url of clinic A's object, body, scope needed, what clinic B's key gets:
#: a status, or for a list the persona attribute whose rows it lists)
ENDPOINTS = {
    "service list": ("GET", lambda w: f"{API}/services/", None, "availability:read", "service"),
    "service detail": (
        "GET", lambda w: f"{API}/services/{w.service.pk}/", None, "availability:read", 404,
    ),
    "professional list": (
        "GET", lambda w: f"{API}/professionals/", None, "availability:read", "professional",
    ),
    "professional detail": (
        "GET", lambda w: f"{API}/professionals/{w.professional.pk}/", None,
        "availability:read", 404,
    ),
    "availability": ("GET", _availability_url, None, "availability:read", 400),
    "appointment list": (
        "GET", lambda w: f"{API}/appointments/", None, "appointments:read", "appointment",
    ),
    "appointment detail": (
        "GET", lambda w: f"{API}/appointments/{w.appointment.pk}/", None,
        "appointments:read", 404,
    ),
    "book": ("POST", lambda w: f"{API}/appointments/", booking, "appointments:write", 400),
    "confirm": (
        "POST", lambda w: f"{API}/appointments/{w.appointment.pk}/confirm/", None,
        "appointments:write", 404,
    ),
    "cancel": (
        "POST", lambda w: f"{API}/appointments/{w.appointment.pk}/cancel/",
        lambda w: {"reason": "Desistiu"}, "appointments:write", 404,
    ),
    "reschedule": (
        "POST", lambda w: f"{API}/appointments/{w.appointment.pk}/reschedule/",
        lambda w: {"start": (w.nine + timedelta(hours=2)).isoformat()},
        "appointments:write", 404,
    ),
}  # fmt: skip


@pytest.fixture
def two_clinics(agenda, agenda_b):
    agenda.appointment = appointment_of(agenda)
    agenda_b.appointment = appointment_of(agenda_b)
    return agenda, agenda_b


def call(client, name, w):
    method, url, body, _scope, _expect = ENDPOINTS[name]
    if method == "GET":
        return client.get(url(w))
    return post(client, url(w), body(w) if body else None)


@pytest.mark.parametrize("whose", ["clinic_b", "closed"])
def test_booking_in_another_clinics_room_or_a_closed_one_is_a_field_error(
    whose, two_clinics, api_client
):
    a, b = two_clinics
    if whose == "clinic_b":
        room = RoomFactory(clinic=b.clinic)
    else:
        room = RoomFactory(clinic=a.clinic, is_active=False)
    response = post(api_client(a.clinic), f"{API}/appointments/", booking(a, room=room.pk))
    assert set(assert_problem(response, 400)["errors"]) == {"room"}
    assert Appointment.objects.filter(clinic=a.clinic).count() == 1


@pytest.mark.parametrize("name", ENDPOINTS)
def test_a_key_without_the_scope_gets_403(name, two_clinics, api_client):
    a, _ = two_clinics
    needed = ENDPOINTS[name][3]
    client = api_client(a.clinic, scopes=[s for s in API_SCOPES if s != needed])
    body = assert_problem(call(client, name, a), 403)
    assert needed in body["detail"]


@pytest.mark.parametrize("name", ENDPOINTS)
def test_no_key_gets_401(name, two_clinics):
    a, _ = two_clinics
    response = call(Client(), name, a)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_a_revoked_key_gets_401(name, two_clinics, api_client):
    a, _ = two_clinics
    client = api_client(a.clinic)
    api_key_revoke(key=client.key)
    assert_problem(call(client, name, a), 401)


def test_a_made_up_key_gets_401(agenda):
    client = Client(headers={"Authorization": "Bearer cdr_deadbeef_nope"})
    assert_problem(client.get(f"{API}/services/"), 401)


def test_staff_browse_their_clinic_read_only(two_clinics, receptionist_a, client_for):
    a, _ = two_clinics
    staff = client_for(receptionist_a)
    assert ids(staff.get(f"{API}/services/")) == {a.service.pk}
    assert ids(staff.get(f"{API}/appointments/")) == {a.appointment.pk}
    assert_problem(post(staff, f"{API}/appointments/", booking(a)), 403)


def test_staff_of_clinic_b_see_nothing_of_clinic_a(two_clinics, receptionist_b, client_for):
    a, b = two_clinics
    staff = client_for(receptionist_b)
    assert ids(staff.get(f"{API}/appointments/")) == {b.appointment.pk}
    assert staff.get(f"{API}/appointments/{a.appointment.pk}/").status_code == 404


# --- Services and professionals -------------------------------------------------------------
def test_it_lists_active_services_with_price_as_a_string_and_who_performs_them(agenda, api_client):
    ServiceFactory(clinic=agenda.clinic, name="Antiga", is_active=False)
    retired = ProfessionalFactory(clinic=agenda.clinic, is_active=False)
    agenda.service.professionals.add(retired)
    response = api_client(agenda.clinic).get(f"{API}/services/")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "id": agenda.service.pk,
            "name": agenda.service.name,
            "category": "consultation",
            "duration_minutes": 30,
            "price": "150.00",
            "professionals": [agenda.professional.pk],
        }
    ]


def test_it_shows_one_service(agenda, api_client):
    response = api_client(agenda.clinic).get(f"{API}/services/{agenda.service.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == agenda.service.pk


def test_an_inactive_service_is_not_found(agenda, api_client):
    retired = ServiceFactory(clinic=agenda.clinic, is_active=False)
    assert_problem(api_client(agenda.clinic).get(f"{API}/services/{retired.pk}/"), 404)


def test_it_lists_active_professionals_with_their_registration(agenda, api_client):
    ProfessionalFactory(clinic=agenda.clinic, is_active=False)
    response = api_client(agenda.clinic).get(f"{API}/professionals/")
    assert response.json()["results"] == [
        {
            "id": agenda.professional.pk,
            "name": agenda.professional.full_name,
            "specialty": "Clínica geral",
            "council": "CRM",
            "registration": "CRM 123456/SP",
        }
    ]
    detail = api_client(agenda.clinic).get(f"{API}/professionals/{agenda.professional.pk}/")
    assert detail.json()["registration"] == "CRM 123456/SP"


# --- Availability ---------------------------------------------------------------------------
def availability(client, agenda, **params):
    query = {
        "service": agenda.service.pk,
        "start": agenda.nine.isoformat(),
        "end": (agenda.nine + timedelta(hours=1)).isoformat(),
        **params,
    }
    return client.get(f"{API}/availability", {k: v for k, v in query.items() if v is not None})


def test_it_lists_free_slots_in_the_clinics_time_zone(agenda, api_client):
    response = availability(api_client(agenda.clinic), agenda)
    assert response.status_code == 200
    slots = response.json()["results"]
    day = agenda.nine.date().isoformat()
    assert [s["start"] for s in slots] == [
        f"{day}T09:00:00-03:00",
        f"{day}T09:15:00-03:00",
        f"{day}T09:30:00-03:00",
        f"{day}T09:45:00-03:00",
    ]
    assert slots[0] == {
        "start": f"{day}T09:00:00-03:00",
        "end": f"{day}T09:30:00-03:00",
        "professional": agenda.professional.pk,
        "room": None,
    }


def test_the_availability_answer_is_the_shape_its_schema_declares(agenda, api_client):
    """A generated client reads ``/availability`` by its schema: an object with the slots
    under ``results`` (the schema once declared a bare array)."""
    from drf_spectacular.generators import SchemaGenerator
    from openapi_schema_validator import OAS30Validator, validate

    schema = SchemaGenerator().get_schema(request=None, public=True)
    declared = schema["paths"]["/api/v1/availability/"]["get"]["responses"]["200"]
    declared = declared["content"]["application/json"]["schema"]
    answer = availability(api_client(agenda.clinic), agenda).json()
    assert answer["results"]
    validate(answer, {**declared, "components": schema["components"]}, cls=OAS30Validator)
    with pytest.raises(Exception, match="is not of type 'object'"):
        validate(
            answer["results"], {**declared, "components": schema["components"]}, cls=OAS30Validator
        )


def test_availability_answers_with_or_without_the_trailing_slash(agenda, api_client):
    client = api_client(agenda.clinic)
    query = {"service": agenda.service.pk, "start": agenda.nine.isoformat()}
    query["end"] = (agenda.nine + timedelta(hours=1)).isoformat()
    assert client.get(f"{API}/availability/", query).status_code == 200


def test_a_booked_slot_is_not_available(agenda, api_client):
    appointment_of(agenda)
    slots = availability(api_client(agenda.clinic), agenda).json()["results"]
    assert [s["start"][11:16] for s in slots] == ["09:30", "09:45"]


def test_without_a_professional_it_offers_anyone_who_performs_the_service(agenda, api_client):
    other = ProfessionalFactory(clinic=agenda.clinic)
    agenda.service.professionals.add(other)
    WorkingHoursFactory(
        professional=other, weekday=agenda.nine.weekday(), start_time=time(9), end_time=time(10)
    )
    slots = availability(api_client(agenda.clinic), agenda).json()["results"]
    assert {s["professional"] for s in slots} == {agenda.professional.pk, other.pk}
    only = availability(api_client(agenda.clinic), agenda, professional=other.pk).json()
    assert {s["professional"] for s in only["results"]} == {other.pk}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"service": None}, "service"),
        ({"service": 999999}, "service"),
        ({"professional": 999999}, "professional"),
        ({"start": "2026-03-02T09:00:00"}, "start"),  # no offset
        ({"start": "amanhã"}, "start"),
        ({"end": None}, "end"),
    ],
)
def test_availability_refuses_bad_parameters(params, field, agenda, api_client):
    response = availability(api_client(agenda.clinic), agenda, **params)
    assert field in assert_problem(response, 400)["errors"]


def test_availability_refuses_an_end_before_the_start(agenda, api_client):
    before = (agenda.nine - timedelta(hours=1)).isoformat()
    response = availability(api_client(agenda.clinic), agenda, end=before)
    assert "end" in assert_problem(response, 400)["errors"]


def test_availability_refuses_more_than_31_days(agenda, api_client):
    too_far = (agenda.nine + timedelta(days=31, minutes=1)).isoformat()
    response = availability(api_client(agenda.clinic), agenda, end=too_far)
    assert "end" in assert_problem(response, 400)["errors"]
    just = (agenda.nine + timedelta(days=31)).isoformat()
    assert availability(api_client(agenda.clinic), agenda, end=just).status_code == 200


def test_availability_refuses_a_professional_who_does_not_perform_the_service(agenda, api_client):
    outsider = ProfessionalFactory(clinic=agenda.clinic)
    response = availability(api_client(agenda.clinic), agenda, professional=outsider.pk)
    assert "professional" in assert_problem(response, 400)["errors"]


# --- Booking --------------------------------------------------------------------------------
def test_it_books_a_free_slot(agenda, api_client):
    response = post(api_client(agenda.clinic), f"{API}/appointments/", booking(agenda))
    assert response.status_code == 201, response.content
    appointment = Appointment.objects.get()
    body = response.json()
    day = agenda.nine.date().isoformat()
    assert body == {
        **body,
        "id": appointment.pk,
        "patient": agenda.patient.pk,
        "professional": agenda.professional.pk,
        "service": agenda.service.pk,
        "room": None,
        "start": f"{day}T09:00:00-03:00",
        "end": f"{day}T09:30:00-03:00",
        "status": "scheduled",
        "price": "150.00",
        "booked_via": "api",
        "notes": "Trazer exames anteriores.",
        "replaces": None,
        "replaced_by": None,
    }
    assert "internal_notes" not in body
    assert response["Location"].endswith(f"{API}/appointments/{appointment.pk}/")
    assert appointment.booked_via == Channel.API
    assert appointment.clinic == agenda.clinic


def test_it_books_in_a_room_of_the_clinic(agenda, api_client):
    room = RoomFactory(clinic=agenda.clinic)
    agenda.service.rooms.add(room)
    body = booking(agenda, room=room.pk)
    response = post(api_client(agenda.clinic), f"{API}/appointments/", body)
    assert response.json()["room"] == room.pk


def test_booking_a_taken_slot_is_a_409_problem(agenda, api_client):
    client = api_client(agenda.clinic)
    assert post(client, f"{API}/appointments/", booking(agenda)).status_code == 201
    other = PatientFactory(clinic=agenda.clinic)
    response = post(client, f"{API}/appointments/", booking(agenda, patient=other.pk))
    body = assert_problem(response, 409)
    assert body["type"].endswith("/slot_unavailable")
    assert body["conflicts"] == ["professional"]
    assert Appointment.objects.count() == 1


def test_a_patient_already_booked_elsewhere_then_is_a_409_naming_the_patient(agenda, api_client):
    # The slot is free in the professional's agenda, so only the patient's own appointment
    # with someone else stands in the way (on PostgreSQL: refused at the insert).
    appointment_of(agenda, professional=ProfessionalFactory(clinic=agenda.clinic))
    response = post(api_client(agenda.clinic), f"{API}/appointments/", booking(agenda))
    assert assert_problem(response, 409)["conflicts"] == ["patient"]
    assert Appointment.objects.count() == 1


def test_a_busy_professional_outside_the_hours_is_named_before_the_hours(agenda, api_client):
    late = agenda.nine.replace(hour=23)
    appointment_of(agenda, start=late, patient=PatientFactory(clinic=agenda.clinic))
    response = post(
        api_client(agenda.clinic), f"{API}/appointments/", booking(agenda, start=late.isoformat())
    )
    assert assert_problem(response, 409)["conflicts"] == ["professional"]


def test_booking_outside_the_working_hours_is_a_409_problem(agenda, api_client):
    night = agenda.nine.replace(hour=3).isoformat()
    response = post(api_client(agenda.clinic), f"{API}/appointments/", booking(agenda, start=night))
    assert assert_problem(response, 409)["conflicts"] == ["hours"]
    assert not Appointment.objects.exists()


def test_booking_during_the_professionals_time_off_is_a_409_problem(agenda, api_client):
    TimeOffFactory(
        professional=agenda.professional,
        start=agenda.nine - timedelta(hours=1),
        end=agenda.nine + timedelta(hours=2),
    )
    response = post(api_client(agenda.clinic), f"{API}/appointments/", booking(agenda))
    assert assert_problem(response, 409)["conflicts"] == ["hours"]
    assert not Appointment.objects.exists()


@pytest.mark.django_db(transaction=True)  # agenda setups are kept only outside transactions
def test_a_booking_reads_the_agenda_a_fixed_handful_of_times(
    agenda, api_client, django_assert_max_num_queries, monkeypatch
):
    # The request's own statements: the event's deliveries run in a worker, not inline.
    monkeypatch.setattr("integrations.outbox.request_dispatch", lambda event_ids: None)
    client = api_client(agenda.clinic)
    for hour in (10, 11):  # the key, and the agenda's setup where Redis keeps it, warm
        assert (
            post(
                client,
                f"{API}/appointments/",
                booking(agenda, start=agenda.nine.replace(hour=hour).isoformat()),
            ).status_code
            == 201
        )
    # The patient; the transaction (2); its busy time (time off and appointments, one
    # statement); the insert in its savepoint (3); the event with its subscriptions and
    # deliveries (3): 10 on PostgreSQL, whose exclusion constraints refuse a clash at the
    # insert; SQLite looks for clashes first (11). Without Redis, no process keeps the
    # agenda's setup: it is read too (4, and 2 for the active services and
    # professionals), and so is the request log (1).
    expected = 10 if connection.vendor == "postgresql" else 11
    with django_assert_max_num_queries(expected if settings.REDIS_URL else expected + 7):
        assert post(client, f"{API}/appointments/", booking(agenda)).status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"patient", "professional", "service", "start"}),
        ({"start": "2026-03-02T09:00:00"}, {"start"}),  # no offset: never guessed
        ({"start": "ontem"}, {"start"}),
        ({"patient": 999999, "service": "x"}, {"patient", "service"}),
        ({"room": 999999}, {"room"}),
        ({"notes": "x" * 2001}, {"notes"}),
    ],
)
def test_an_invalid_booking_is_a_400_with_a_field_map(body, fields, agenda, api_client):
    base = booking(agenda) if body else {}
    response = post(api_client(agenda.clinic), f"{API}/appointments/", {**base, **body})
    assert set(assert_problem(response, 400)["errors"]) == fields
    assert not Appointment.objects.exists()


def test_booking_a_professional_who_does_not_perform_the_service_is_a_field_error(
    agenda, api_client
):
    outsider = ProfessionalFactory(clinic=agenda.clinic, full_name="Dr. Igor Lima")
    ServiceFactory(clinic=agenda.clinic, name="Pilates", professionals=[outsider])
    body = booking(agenda, professional=outsider.pk)
    response = post(
        api_client(agenda.clinic), f"{API}/appointments/", body, **{"Accept-Language": "en"}
    )
    assert assert_problem(response, 400)["errors"] == {
        "professional": [
            f"Dr. Igor Lima does not perform {agenda.service.name}. "
            "Services of Dr. Igor Lima: Pilates."
        ]
    }


def test_a_refused_booking_says_until_when_the_professional_is_busy(agenda, api_client):
    agenda.service.buffer_after_minutes = 10
    agenda.service.save()
    client = api_client(agenda.clinic)
    assert post(client, f"{API}/appointments/", booking(agenda)).status_code == 201
    later = booking(agenda, patient=PatientFactory(clinic=agenda.clinic).pk)
    later["start"] = (agenda.nine + timedelta(minutes=30)).isoformat()

    response = post(client, f"{API}/appointments/", later, **{"Accept-Language": "en"})

    problem = assert_problem(response, 409)
    assert problem["conflicts"] == ["professional"]
    assert "is busy until 09:40 (appointment 09:00–09:30 plus 10 min buffer)" in problem["detail"]


# --- Idempotency ----------------------------------------------------------------------------
def test_the_same_idempotency_key_and_body_replays_the_booking(agenda, api_client):
    client = api_client(agenda.clinic)
    first = post(client, f"{API}/appointments/", booking(agenda), idempotency_key="k-1")
    again = post(client, f"{API}/appointments/", booking(agenda), idempotency_key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/json"
    assert "Idempotent-Replayed" not in first
    assert Appointment.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_422(agenda, api_client):
    client = api_client(agenda.clinic)
    post(client, f"{API}/appointments/", booking(agenda), idempotency_key="k-1")
    other = booking(agenda, start=(agenda.nine + timedelta(hours=1)).isoformat())
    response = post(client, f"{API}/appointments/", other, idempotency_key="k-1")
    assert_problem(response, 422)
    assert Appointment.objects.count() == 1


def test_a_replayed_refusal_is_still_a_problem(agenda, api_client):
    appointment_of(agenda)
    client = api_client(agenda.clinic)
    body = booking(agenda, patient=PatientFactory(clinic=agenda.clinic).pk)
    first = post(client, f"{API}/appointments/", body, idempotency_key="k-2")
    again = post(client, f"{API}/appointments/", body, idempotency_key="k-2")
    assert assert_problem(first, 409) == assert_problem(again, 409)
    assert again["Idempotent-Replayed"] == "true"


def test_idempotency_keys_belong_to_one_api_key(agenda, api_client):
    one, two = api_client(agenda.clinic), api_client(agenda.clinic)
    post(one, f"{API}/appointments/", booking(agenda), idempotency_key="k-1")
    other = booking(agenda, start=(agenda.nine + timedelta(hours=1)).isoformat())
    assert post(two, f"{API}/appointments/", other, idempotency_key="k-1").status_code == 201


def test_a_crash_does_not_burn_the_idempotency_key(agenda, api_client, monkeypatch):
    client = api_client(agenda.clinic, raise_request_exception=False)

    def crash(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("scheduling.api.appointment_book", crash)
    first = post(client, f"{API}/appointments/", booking(agenda), idempotency_key="k-3")
    assert first.status_code == 500
    monkeypatch.undo()
    again = post(client, f"{API}/appointments/", booking(agenda), idempotency_key="k-3")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again


# --- The status machine ---------------------------------------------------------------------
@pytest.fixture
def booked(agenda):
    agenda.appointment = appointment_of(agenda)
    return agenda


def test_it_confirms_an_appointment(booked, api_client):
    url = f"{API}/appointments/{booked.appointment.pk}/confirm/"
    response = post(api_client(booked.clinic), url)
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    assert response.json()["confirmed_at"]
    booked.appointment.refresh_from_db()
    assert booked.appointment.confirmed_via == Channel.API


def test_it_cancels_with_a_reason(booked, api_client):
    url = f"{API}/appointments/{booked.appointment.pk}/cancel/"
    response = post(api_client(booked.clinic), url, {"reason": "Viagem"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["cancellation_reason"], body["late_cancellation"]) == (
        "cancelled",
        "Viagem",
        False,
    )
    booked.appointment.refresh_from_db()
    assert booked.appointment.cancelled_via == Channel.API


def test_a_cancellation_inside_the_window_is_flagged_late_not_refused(agenda, api_client):
    soon = appointment_of(agenda, start=timezone.now() + timedelta(hours=2))
    response = post(api_client(agenda.clinic), f"{API}/appointments/{soon.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["late_cancellation"] is True


def test_a_cancellation_reason_is_at_most_255_characters(booked, api_client):
    url = f"{API}/appointments/{booked.appointment.pk}/cancel/"
    response = post(api_client(booked.clinic), url, {"reason": "x" * 256})
    assert set(assert_problem(response, 400)["errors"]) == {"reason"}


@pytest.mark.parametrize("action", ["confirm", "cancel", "reschedule"])
def test_an_invalid_transition_is_a_409_problem(action, booked, api_client):
    booked.appointment.status = S.CANCELLED
    booked.appointment.save(update_fields=["status"])
    url = f"{API}/appointments/{booked.appointment.pk}/{action}/"
    body = {"start": (booked.nine + timedelta(hours=2)).isoformat()}
    response = post(api_client(booked.clinic), url, body)
    assert assert_problem(response, 409)["type"].endswith("/invalid_transition")
    assert Appointment.objects.count() == 1


def test_it_reschedules_to_a_new_appointment_linked_to_the_old(booked, api_client):
    client = api_client(booked.clinic)
    eleven = booked.nine + timedelta(hours=2)
    url = f"{API}/appointments/{booked.appointment.pk}/reschedule/"
    response = post(client, url, {"start": eleven.isoformat()})
    assert response.status_code == 200, response.content
    new = response.json()
    assert new["id"] != booked.appointment.pk
    assert new["replaces"] == booked.appointment.pk
    assert new["start"] == eleven.isoformat()
    assert new["status"] == "scheduled"
    old = client.get(f"{API}/appointments/{booked.appointment.pk}/").json()
    assert (old["status"], old["replaced_by"]) == ("rescheduled", new["id"])


def test_rescheduling_onto_a_taken_slot_is_a_409_and_changes_nothing(booked, api_client):
    eleven = booked.nine + timedelta(hours=2)
    appointment_of(booked, start=eleven, patient=PatientFactory(clinic=booked.clinic))
    url = f"{API}/appointments/{booked.appointment.pk}/reschedule/"
    response = post(api_client(booked.clinic), url, {"start": eleven.isoformat()})
    assert "professional" in assert_problem(response, 409)["conflicts"]
    booked.appointment.refresh_from_db()
    assert booked.appointment.status == S.SCHEDULED
    assert Appointment.objects.count() == 2


def test_a_reschedule_outside_the_working_hours_is_refused(booked, api_client):
    url = f"{API}/appointments/{booked.appointment.pk}/reschedule/"
    night = booked.nine.replace(hour=3).isoformat()
    response = post(api_client(booked.clinic), url, {"start": night})
    assert assert_problem(response, 409)["conflicts"] == ["hours"]


def test_a_reschedule_needs_a_start_with_an_offset(booked, api_client):
    url = f"{API}/appointments/{booked.appointment.pk}/reschedule/"
    response = post(api_client(booked.clinic), url, {"start": "2026-03-02T11:00"})
    assert set(assert_problem(response, 400)["errors"]) == {"start"}


# --- Listing --------------------------------------------------------------------------------
def test_it_lists_appointments_by_start_a_page_at_a_time(agenda, api_client):
    starts = [agenda.nine + timedelta(hours=h) for h in (4, 0, 3, 1, 2)]
    made = {s: appointment_of(agenda, start=s).pk for s in starts}
    client = api_client(agenda.clinic)
    seen = []
    url = f"{API}/appointments/?page_size=2"
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == [made[s] for s in sorted(starts)]


def test_it_filters_appointments(agenda, api_client):
    first = appointment_of(agenda)
    later = appointment_of(agenda, start=agenda.nine + timedelta(days=1), status=S.CONFIRMED)
    other = AppointmentFactory(service=agenda.service, start=agenda.nine)  # another professional
    client = api_client(agenda.clinic)

    def listed(**query):
        return [row["id"] for row in client.get(f"{API}/appointments/", query).json()["results"]]

    assert listed() == [first.pk, other.pk, later.pk]  # by start, then by id
    assert listed(status="confirmed") == [later.pk]
    assert set(listed(status="scheduled,confirmed")) == {first.pk, later.pk, other.pk}
    assert listed(professional=other.professional_id) == [other.pk]
    assert set(listed(patient=agenda.patient.pk)) == {first.pk, later.pk}
    assert listed(start_from=(agenda.nine + timedelta(hours=1)).isoformat()) == [later.pk]
    assert set(listed(start_to=(agenda.nine + timedelta(hours=1)).isoformat())) == {
        first.pk,
        other.pk,
    }


@pytest.mark.parametrize(
    "query",
    [{"status": "lost"}, {"professional": "x"}, {"start_from": "2026-03-02T09:00:00"}],
)
def test_bad_list_filters_are_a_400(query, agenda, api_client):
    response = api_client(agenda.clinic).get(f"{API}/appointments/", query)
    assert set(assert_problem(response, 400)["errors"]) == set(query)


def test_a_bad_cursor_is_a_404_problem(agenda, api_client):
    response = api_client(agenda.clinic).get(f"{API}/appointments/?cursor=bogus")
    assert_problem(response, 404)


# --- Query counts ---------------------------------------------------------------------------
def _more_services(agenda, n):
    extra = ProfessionalFactory(clinic=agenda.clinic)
    for _ in range(n):
        ServiceFactory(clinic=agenda.clinic, professionals=[agenda.professional, extra])


def _more_professionals(agenda, n):
    ProfessionalFactory.create_batch(n, clinic=agenda.clinic)


def _more_appointments(agenda, n):
    first = agenda.nine + timedelta(days=1)
    start = first + timedelta(minutes=30 * Appointment.objects.count())
    for i in range(n):
        AppointmentFactory(service=agenda.service, start=start + timedelta(minutes=30 * i))


@pytest.mark.parametrize(
    ("url", "more", "baseline"),
    [
        # the key, the rows (+ who performs each service), the request log
        (f"{API}/services/", _more_services, 4),
        (f"{API}/professionals/", _more_professionals, 3),
        (f"{API}/appointments/", _more_appointments, 3),
    ],
)
def test_list_queries_do_not_grow_with_the_rows(
    url, more, baseline, agenda, api_client, django_assert_max_num_queries
):
    client = api_client(agenda.clinic)
    more(agenda, 3)
    client.get(url)  # the key's first use writes last_used_at once
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    assert len(few) <= baseline
    more(agenda, 27)
    with django_assert_max_num_queries(len(few)):
        response = client.get(url, {"page_size": 100})
    assert len(response.json()["results"]) >= 30


# --- Throttling and the schema --------------------------------------------------------------
def test_answers_carry_ratelimit_headers(agenda, api_client):
    client = api_client(agenda.clinic)
    first = client.get(f"{API}/services/")
    second = client.get(f"{API}/services/")
    limit = int(first["RateLimit-Limit"])
    assert int(first["RateLimit-Remaining"]) == limit - 1
    assert int(second["RateLimit-Remaining"]) == limit - 2
    assert "RateLimit-Reset" in second


def test_a_key_over_its_rate_gets_429_with_retry_after(agenda, api_client, monkeypatch):
    monkeypatch.setattr(ApiKeyThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    client = api_client(agenda.clinic)
    assert client.get(f"{API}/services/").status_code == 200
    assert client.get(f"{API}/services/").status_code == 200
    response = client.get(f"{API}/services/")
    assert_problem(response, 429)
    assert int(response["Retry-After"]) > 0
    assert response["RateLimit-Remaining"] == "0"


def test_the_schema_documents_the_scheduling_endpoints(db):
    response = Client().get(f"{API}/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/services/",
        "/api/v1/professionals/{id}/",
        "/api/v1/appointments/",
        "/api/v1/appointments/{id}/reschedule/",
    ):
        assert path in paths


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------
def _race(n, attempt):
    """Run ``attempt(i)`` in n threads released together; each its own connection."""
    barrier = threading.Barrier(n)
    outcomes = []

    def run(i):
        try:
            barrier.wait()
            outcomes.append(attempt(i))
        except Exception as exc:  # anything else is a bug: surface it
            outcomes.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_only_one_of_20_concurrent_api_bookings_of_a_slot_wins(agenda, api_client):
    secret = api_client(agenda.clinic).secret
    patients = [p.pk for p in PatientFactory.create_batch(20, clinic=agenda.clinic)]

    def attempt(i):
        client = Client(headers={"Authorization": f"Bearer {secret}"})
        response = post(client, f"{API}/appointments/", booking(agenda, patient=patients[i]))
        if response.status_code == 409:
            assert response["Content-Type"] == PROBLEM
        return response.status_code

    outcomes = _race(20, attempt)
    assert sorted(outcomes, key=str) == [201] + [409] * 19
    assert Appointment.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_idempotency_key_book_once(agenda, api_client):
    secret = api_client(agenda.clinic).secret

    def attempt(i):
        client = Client(headers={"Authorization": f"Bearer {secret}"})
        response = post(client, f"{API}/appointments/", booking(agenda), idempotency_key="same")
        replayed = response.get("Idempotent-Replayed") == "true"
        return (response.status_code, replayed)

    outcomes = sorted(_race(2, attempt), key=str)
    assert outcomes in ([(201, False), (409, False)], [(201, False), (201, True)])
    assert Appointment.objects.count() == 1
