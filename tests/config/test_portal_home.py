"""The portal's home page: a greeting, the next appointment with what can be done about it
(the cancellation window explained when it is closed), or a way to book one; then billing's
part (packages and open payments) when billing offers it."""

from datetime import timedelta
from urllib.parse import quote_plus

import pytest
from django.urls import reverse

from scheduling import services
from tests.clinic.factories import PatientFactory
from tests.scheduling.portal.agenda import NOW, THURSDAY_11H, TUESDAY_8H, book, open_desk

pytestmark = pytest.mark.django_db

HOME = reverse("portal:home")


@pytest.fixture(autouse=True)
def now(time_machine):
    """The clock stopped at ``agenda.NOW`` (Monday 2 March 2026, 09:00 in São Paulo)."""
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def desk(clinic_a):
    return open_desk(clinic_a, service="Ultrassom abdominal", preparation="Jejum de 8 horas.")


def text(response) -> str:
    return response.content.decode()


def test_it_greets_the_patient_and_shows_the_next_appointment(portal, desk, patient_a):
    later = book(desk, patient_a, start=THURSDAY_11H + timedelta(days=7))
    nearest = book(desk, patient_a)
    book(desk, patient_a, start=NOW - timedelta(days=3))  # past: not "next"

    response = portal.get(HOME)

    assert response.status_code == 200
    page = text(response)
    assert "Hello, Maria!" in page
    assert "Ultrassom abdominal" in page
    assert "Dra. Helena Prado" in page
    assert "Thursday, March 5, 2026 at 11 a.m." in page
    assert "Jejum de 8 horas." in page
    address = "Rua das Flores, 100 — São Paulo - SP"
    assert "https://www.google.com/maps/search/?api=1&amp;query=" + quote_plus(address) in page
    assert reverse("portal:appointment_ics", args=[nearest.pk]) in page
    assert reverse("portal:appointment_confirm", args=[nearest.pk]) in page
    assert reverse("portal:appointment_reschedule", args=[nearest.pk]) in page
    assert reverse("portal:appointment_cancel", args=[nearest.pk]) in page
    assert reverse("portal:appointment", args=[later.pk]) not in page
    assert 'aria-current="page">Home<' in page


def test_a_confirmed_appointment_offers_no_confirm_button(portal, desk, patient_a):
    appointment = book(desk, patient_a)
    services.appointment_confirm(appointment=appointment)

    page = text(portal.get(HOME))

    assert ">Confirmed<" in page
    assert reverse("portal:appointment_confirm", args=[appointment.pk]) not in page


def test_confirming_from_home_comes_back_home(portal, desk, patient_a):
    appointment = book(desk, patient_a)

    response = portal.post(
        reverse("portal:appointment_confirm", args=[appointment.pk]), {"next": HOME}
    )

    assert response["Location"] == HOME
    assert "Your appointment is confirmed" in text(portal.get(HOME))


def test_inside_the_window_it_explains_whom_to_call_instead_of_a_cancel_button(
    portal, desk, patient_a
):
    soon = book(desk, patient_a, start=TUESDAY_8H)

    page = text(portal.get(HOME))

    assert reverse("portal:appointment_cancel", args=[soon.pk]) not in page
    assert reverse("portal:appointment_reschedule", args=[soon.pk]) not in page
    assert (
        "Appointments can only be cancelled or rescheduled online up to 24 hours before. "
        "Please call the clinic: (11) 3333-4444." in page
    )
    assert reverse("portal:appointment_confirm", args=[soon.pk]) in page  # still welcome


def test_with_nothing_booked_it_offers_to_book(portal, desk, patient_a):
    cancelled = book(desk, patient_a)
    services.appointment_cancel(appointment=cancelled)

    page = text(portal.get(HOME))

    assert "You have no appointment booked." in page
    assert f'href="{reverse("portal:book")}"' in page


def test_it_never_shows_another_patients_appointment(portal, desk, patient_b, portal_client_for):
    neighbour = PatientFactory(clinic=desk["clinic"], full_name="Zélia Vizinha")
    book(desk, neighbour)

    assert "You have no appointment booked." in text(portal.get(HOME))
    beta = portal_client_for(patient_b)
    beta.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = text(beta.get(HOME))
    assert "Ultrassom abdominal" not in page
    assert "Hello, Bruno!" in page


def test_home_takes_the_same_queries_with_one_or_many_appointments(
    portal, desk, patient_a, django_assert_max_num_queries
):
    book(desk, patient_a)
    with django_assert_max_num_queries(8) as few:
        assert portal.get(HOME).status_code == 200
    for d in range(20):
        book(desk, patient_a, start=THURSDAY_11H + timedelta(days=d + 1))
        book(desk, patient_a, start=NOW - timedelta(days=d + 1))

    with django_assert_max_num_queries(len(few)):
        assert portal.get(HOME).status_code == 200


def test_home_needs_a_signed_in_patient(client):
    response = client.get(HOME)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:sign_in"))


def test_the_home_page_shows_billing_s_part(portal, desk):
    page = portal.get(HOME).content.decode()
    assert "My packages" in page and "Open payments" in page
