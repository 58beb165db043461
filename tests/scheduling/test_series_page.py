"""The admin page "Book a series": step 1 asks, step 2 shows every date (free or what
clashes) with a "skip" box; booking skips what was ticked, or books nothing and says why."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from scheduling.models import Appointment, RecurrenceSeries
from tests.clinic.factories import ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

URL = "admin:scheduling_series"
MONDAYS_UTC = [datetime(2030, 3, d, 13, 0, tzinfo=UTC) for d in (4, 11, 18, 25)]


def grant(user, *codenames):
    """Scheduling permissions are not in clinic/roles.py yet: give them explicitly."""
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="scheduling", codename__in=codenames)
    )
    return user


@pytest.fixture
def client_for(client_for):
    """Clients that read English, the source strings, whatever the catalogue translates."""

    def make(user):
        client = client_for(user)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    return make


@pytest.fixture
def desk(clinic_a, patient_a, receptionist_a, client_for):
    """Clinic A in Manaus time (UTC-4), a physiotherapist with a weekly patient in mind, and
    the professional already busy on the second Monday at 09:00 local."""
    clinic_a.time_zone = "America/Manaus"
    clinic_a.save(update_fields=["time_zone"])
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")
    service = ServiceFactory(
        clinic=clinic_a, name="Fisioterapia", duration_minutes=50, professionals=[professional]
    )
    busy = AppointmentFactory(service=service, professional=professional, start=MONDAYS_UTC[1])
    grant(receptionist_a, "add_appointment", "view_appointment", "add_recurrenceseries")
    return {
        "client": client_for(receptionist_a),
        "user": receptionist_a,
        "patient": patient_a,
        "professional": professional,
        "service": service,
        "busy": busy,
    }


def step_one(desk, **overrides):
    data = {
        "patient": desk["patient"].pk,
        "service": desk["service"].pk,
        "professional": desk["professional"].pk,
        "room": "",
        "first_start_0": "2030-03-04",
        "first_start_1": "09:00",
        "interval_weeks": "1",
        "occurrences": "4",
        "until": "",
    }
    return {**data, **overrides}


def test_it_shows_every_date_with_what_clashes_and_books_nothing_yet(desk):
    before = Appointment.objects.count()
    response = desk["client"].post(reverse(URL), {**step_one(desk), "_preview": "1"})
    assert response.status_code == 200
    assert response.context["step"] == 2
    rows = response.context["rows"]
    assert [row["start"] for row in rows] == MONDAYS_UTC  # 09:00 in Manaus
    assert [row["free"] for row in rows] == [True, False, True, True]
    assert rows[1]["conflicts"] == ["the professional is busy"]
    assert [row["skip"] for row in rows] == [False, True, False, False]
    page = response.content.decode()
    assert "the professional is busy" in page
    assert 'name="skip"' in page
    assert Appointment.objects.count() == before


def test_it_books_the_other_dates_when_the_clash_is_skipped(desk):
    client = desk["client"]
    rows = client.post(reverse(URL), {**step_one(desk), "_preview": "1"}).context["rows"]
    response = client.post(
        reverse(URL), {**step_one(desk), "skip": [rows[1]["value"]], "_confirm": "1"}
    )
    assert response.status_code == 302
    series = RecurrenceSeries.objects.get()
    booked = list(Appointment.objects.filter(series=series).order_by("start"))
    assert [a.start for a in booked] == [MONDAYS_UTC[0], MONDAYS_UTC[2], MONDAYS_UTC[3]]
    assert {(a.patient, a.professional, a.booked_by) for a in booked} == {
        (desk["patient"], desk["professional"], desk["user"])
    }
    assert series.created_by == desk["user"]


def test_a_clash_that_is_not_skipped_books_nothing_and_says_which(desk):
    before = Appointment.objects.count()
    response = desk["client"].post(reverse(URL), {**step_one(desk), "_confirm": "1"})
    assert response.status_code == 200
    assert Appointment.objects.count() == before
    assert not RecurrenceSeries.objects.exists()
    assert "Nothing was booked." in response.content.decode()
    assert [c["start"] for c in response.context["clashes"]] == [MONDAYS_UTC[1]]
    assert response.context["clashes"][0]["conflicts"] == ["the professional is busy"]
    assert response.context["rows"][1]["clashed"]


def test_a_series_until_a_date(desk):
    response = desk["client"].post(
        reverse(URL), {**step_one(desk, occurrences="", until="2030-03-18"), "_preview": "1"}
    )
    assert [row["start"] for row in response.context["rows"]] == MONDAYS_UTC[:3]


def test_it_asks_for_a_count_or_a_last_date(desk):
    response = desk["client"].post(
        reverse(URL), {**step_one(desk, occurrences=""), "_preview": "1"}
    )
    assert response.context["step"] == 1
    assert response.context["form"].non_field_errors() == [
        "Say how many appointments, or until which date."
    ]


def test_the_professional_must_perform_the_service(desk, clinic_a):
    other = ProfessionalFactory(clinic=clinic_a)
    response = desk["client"].post(
        reverse(URL), {**step_one(desk, professional=other.pk), "_confirm": "1"}
    )
    assert "professional" in response.context["form"].errors
    assert not RecurrenceSeries.objects.exists()


def test_going_back_keeps_what_was_typed(desk):
    response = desk["client"].post(reverse(URL), {**step_one(desk), "_back": "1"})
    assert response.context["step"] == 1
    assert response.context["form"]["occurrences"].value() == "4"


def test_booking_a_series_needs_permission_to_book(desk, clinic_a, client_for):
    user = desk["user"]
    user.groups.clear()
    user.user_permissions.clear()
    client = client_for(user)
    assert client.get(reverse(URL)).status_code == 403
    assert client.post(reverse(URL), {**step_one(desk), "_confirm": "1"}).status_code == 403
    assert not RecurrenceSeries.objects.exists()


def test_a_superuser_viewing_all_clinics_is_asked_to_choose_one(superuser, client_for):
    response = client_for(superuser).get(reverse(URL))
    assert response.status_code == 200
    assert "Choose a clinic" in response.content.decode()
    assert "form" not in response.context


def test_the_page_needs_a_staff_sign_in(client):
    response = client.get(reverse(URL))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
