"""Booking in the portal: service → professional → day → time → confirm, with plain GET
steps and one POST; the same availability and booking services as the admin; notice and
advance enforced; a time taken meanwhile is a friendly 409 and nothing is written."""

import re
from datetime import UTC, datetime, time
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling import services
from scheduling.choices import AppointmentStatus, Channel, Weekday
from scheduling.exceptions import SlotUnavailable
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

pytestmark = pytest.mark.django_db

#: Monday 2 March 2026, 09:00 in São Paulo.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: Thursday 5 March 2026, 11:00 in São Paulo.
THURSDAY_11H = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)
BOOK = reverse("portal:book")


@pytest.fixture(autouse=True)
def now(frozen_now):
    return frozen_now


def hire(clinic, name, service):
    """A professional who performs ``service`` on weekday mornings (08:00–12:00)."""
    professional = ProfessionalFactory(clinic=clinic, full_name=name)
    service.professionals.add(professional)
    for weekday in Weekday.values[:5]:
        WorkingHoursFactory(
            professional=professional, weekday=weekday, start_time=time(8), end_time=time(12)
        )
    return professional


@pytest.fixture
def desk(clinic_a):
    """Clinic A: Dra. Helena does physiotherapy (30 min) on weekday mornings."""
    service = ServiceFactory(
        clinic=clinic_a,
        name="Fisioterapia",
        preparation_instructions="Venha com roupas leves.",
    )
    helena = hire(clinic_a, "Dra. Helena Prado", service)
    return {"clinic": clinic_a, "service": service, "professional": helena}


def text(response) -> str:
    return response.content.decode()


def starts_offered(response) -> list[str]:
    return re.findall(r'name="start" value="([^"]+)"', text(response))


def choose(desk, professional=None, **extra) -> dict:
    params = {
        "service": desk["service"].pk,
        "professional": professional or desk["professional"].pk,
    }
    params.update(extra)
    return params


def book_other(desk, start=THURSDAY_11H, professional=None):
    """Someone else books that time at the desk."""
    return services.appointment_book(
        clinic=desk["clinic"],
        patient=PatientFactory(clinic=desk["clinic"]),
        professional=professional or desk["professional"],
        service=desk["service"],
        start=start,
    )


# --- The steps ------------------------------------------------------------------------------
def test_it_offers_only_active_services_bookable_online_of_the_clinic(
    portal, desk, clinic_a, clinic_b
):
    hidden = ServiceFactory(clinic=clinic_a, name="Avaliação presencial", online_bookable=False)
    inactive = ServiceFactory(clinic=clinic_a, name="Serviço antigo", is_active=False)
    nobody = ServiceFactory(clinic=clinic_a, name="Sem profissional")
    other = ServiceFactory(clinic=clinic_b, name="Pilates da Beta")
    for service in (hidden, inactive, other):
        hire(service.clinic, f"Pro {service.name}", service)

    page = text(portal.get(BOOK))

    assert "Fisioterapia" in page
    for service in (hidden, inactive, nobody, other):
        assert service.name not in page


def test_it_walks_the_steps_and_books_through_the_portal(portal, desk, patient_a):
    service, helena = desk["service"], desk["professional"]

    page = text(portal.get(BOOK))
    assert f"?service={service.pk}" in page

    page = text(portal.get(BOOK, {"service": service.pk}))
    assert "Dra. Helena Prado" in page
    assert "Any professional" in page

    page = text(portal.get(BOOK, choose(desk)))
    assert "Thursday, March 5, 2026" in page
    assert "day=2026-03-05" in page

    response = portal.get(BOOK, choose(desk, day="2026-03-05"))
    assert THURSDAY_11H.isoformat() in starts_offered(response)
    assert ">11 a.m.<" in text(response)  # São Paulo time

    response = portal.get(BOOK, choose(desk, start=THURSDAY_11H.isoformat()))
    assert response.status_code == 200
    page = text(response)
    assert "Book this appointment" in page
    assert "Venha com roupas leves." in page

    response = portal.post(BOOK, choose(desk, start=THURSDAY_11H.isoformat()))

    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:appointment", args=[appointment.pk])
    assert appointment.patient == patient_a
    assert appointment.professional == helena
    assert appointment.start == THURSDAY_11H
    assert appointment.booked_via == Channel.PORTAL
    assert appointment.status == AppointmentStatus.SCHEDULED
    page = text(portal.get(response["Location"]))
    assert "Your appointment is booked" in page
    home = text(portal.get(reverse("portal:home")))
    assert "Fisioterapia" in home
    assert "Thursday, March 5, 2026 at 11 a.m." in home


def test_any_professional_books_the_first_one_free_at_that_time(portal, desk):
    bruna = hire(desk["clinic"], "Dr. Bruno Reis", desk["service"])
    first, second = sorted([desk["professional"], bruna], key=lambda p: p.pk)
    book_other(desk, professional=first)

    page = text(portal.get(BOOK, choose(desk, professional="any", day="2026-03-05")))
    assert THURSDAY_11H.isoformat() in page  # still free with the other one

    response = portal.post(BOOK, choose(desk, professional="any", start=THURSDAY_11H.isoformat()))

    assert response.status_code == 302
    mine = Appointment.objects.get(booked_via=Channel.PORTAL)
    assert mine.professional == second


def test_a_time_taken_meanwhile_is_a_friendly_409_and_writes_nothing(portal, desk):
    params = choose(desk, start=THURSDAY_11H.isoformat())
    assert portal.get(BOOK, params).status_code == 200
    book_other(desk)  # someone at the desk was faster

    response = portal.post(BOOK, params)

    assert response.status_code == 409
    page = text(response)
    assert "That time has just been taken. Please choose another time." in page
    assert 'role="alert"' in page
    assert "What time?" in page  # back to the time step
    assert THURSDAY_11H.isoformat() not in starts_offered(response)
    assert Appointment.objects.count() == 1


def test_a_race_lost_inside_the_booking_service_is_a_409_too(portal, desk):
    with mock.patch.object(
        services, "appointment_book", side_effect=SlotUnavailable(conflicts=["professional"])
    ):
        response = portal.post(BOOK, choose(desk, start=THURSDAY_11H.isoformat()))

    assert response.status_code == 409
    assert "That time has just been taken" in text(response)
    assert not Appointment.objects.exists()


def test_it_says_when_the_patient_already_has_an_appointment_then(portal, desk, patient_a):
    other_service = ServiceFactory(clinic=desk["clinic"], name="Nutrição")
    rita = hire(desk["clinic"], "Rita Nutri", other_service)
    services.appointment_book(
        clinic=desk["clinic"],
        patient=patient_a,
        professional=rita,
        service=other_service,
        start=THURSDAY_11H,
    )

    response = portal.post(BOOK, choose(desk, start=THURSDAY_11H.isoformat()))

    assert response.status_code == 409
    assert "You already have another appointment at that time" in text(response)
    assert Appointment.objects.count() == 1


# --- Notice and advance ---------------------------------------------------------------------
def test_a_time_inside_the_minimum_notice_is_not_offered_and_cannot_be_booked(portal, desk):
    service = desk["service"]
    service.min_notice_minutes = 48 * 60  # from Monday 09:00: nothing before Wednesday 09:00
    service.save()
    tuesday_11h = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)

    days = text(portal.get(BOOK, choose(desk)))
    assert "at least 48 hours in advance" in days
    assert "day=2026-03-03" not in days
    assert "day=2026-03-04" in days
    assert starts_offered(portal.get(BOOK, choose(desk, day="2026-03-03"))) == []
    assert portal.get(BOOK, choose(desk, start=tuesday_11h.isoformat())).status_code == 400

    response = portal.post(BOOK, choose(desk, start=tuesday_11h.isoformat()))

    assert response.status_code == 400
    assert "That time cannot be booked online" in text(response)
    assert not Appointment.objects.exists()


def test_a_time_beyond_the_maximum_advance_is_not_offered_and_cannot_be_booked(portal, desk):
    service = desk["service"]
    service.max_advance_days = 7  # until Monday 9 March, 09:00
    service.save()
    far = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)

    days = text(portal.get(BOOK, choose(desk)))
    assert "up to 7 days ahead" in days
    assert "day=2026-03-06" in days
    assert "day=2026-03-10" not in days
    assert "Later dates" not in days
    assert starts_offered(portal.get(BOOK, choose(desk, day="2026-03-12"))) == []

    response = portal.post(BOOK, choose(desk, start=far.isoformat()))

    assert response.status_code == 400
    assert not Appointment.objects.exists()


def test_a_date_far_away_is_no_trouble(portal, desk):
    page = portal.get(BOOK, choose(desk, **{"from": "9999-12-31"}))
    assert page.status_code == 200
    assert "Earlier dates" in text(page)


def test_later_dates_page_on_within_the_advance(portal, desk):
    page = text(portal.get(BOOK, choose(desk)))
    assert "from=2026-03-23" in page  # the next 21 days

    page = text(portal.get(BOOK, choose(desk, **{"from": "2026-03-23"})))
    assert "day=2026-03-23" in page
    assert "day=2026-03-05" not in page
    assert "Earlier dates" in page


# --- Bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"service": "999999"},
        {"service": "abc"},
        {"professional": "999999"},
        {"start": "not-a-time"},
        {"start": "2026-03-05T11:00:00"},  # no time zone
        {"day": "2026-02-30"},
        {"day": "9999-12-31"},
        {"start": "9999-12-31T23:59:00+00:00"},
    ],
)
def test_bad_input_shows_the_step_again_with_a_message(portal, desk, params):
    data = {**choose(desk), **params}

    response = portal.get(BOOK, data)

    assert response.status_code == 400
    assert 'role="alert"' in text(response)
    assert portal.post(BOOK, data).status_code == 400
    assert not Appointment.objects.exists()


def test_booking_needs_a_signed_in_patient(client, desk):
    response = client.get(BOOK)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:sign_in"))
    response = client.post(BOOK, choose(desk, start=THURSDAY_11H.isoformat()))
    assert response.status_code == 302
    assert not Appointment.objects.exists()


# --- Query counts ---------------------------------------------------------------------------
STEPS = {
    "service": {},
    "professional": {"professional": None},
    "day": {},
    "day, any professional": {"professional": "any"},
    "time": {"day": "2026-03-05"},
    "time, any professional": {"professional": "any", "day": "2026-03-05"},
    "confirm": {"start": THURSDAY_11H.isoformat()},
}


def _params(desk, step):
    params = choose(desk, **{k: v for k, v in STEPS[step].items() if v})
    if step == "service":
        return {}
    if step == "professional":
        return {"service": desk["service"].pk}
    return params


def _count(portal, url, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert portal.get(url, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_takes_the_same_queries_however_big_the_agenda(
    portal, desk, step, django_assert_max_num_queries
):
    few = _count(portal, BOOK, _params(desk, step))
    clinic = desk["clinic"]
    for n in range(6):
        service = ServiceFactory(clinic=clinic, name=f"Serviço {n}")
        hire(clinic, f"Profissional {n}", service)
        hire(clinic, f"Colega {n}", desk["service"])
    for day in (3, 4, 6):
        book_other(desk, start=datetime(2026, 3, day, 12, 0, tzinfo=UTC))

    with django_assert_max_num_queries(few):
        assert portal.get(BOOK, _params(desk, step)).status_code == 200
    assert few <= 14
