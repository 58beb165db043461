"""The patient's appointments in the portal: the list (statuses in plain words), one
appointment (how to prepare, the map, a .ics file) and what the patient can do with it —
confirm, cancel (window enforced), reschedule — always their own, never anyone else's."""

import re
from datetime import datetime, timedelta
from urllib.parse import quote_plus

import pytest
from django.urls import reverse

from clinic.privacy import export_sections
from integrations.models import Event
from scheduling import services
from scheduling.availability import slot_list_available
from scheduling.choices import AppointmentStatus, Channel
from scheduling.models import Appointment, WaitlistEntry
from tests.clinic.factories import PatientFactory
from tests.scheduling.portal.agenda import NOW, THURSDAY_11H, TUESDAY_8H, book, open_desk

pytestmark = pytest.mark.django_db

S = AppointmentStatus


@pytest.fixture(autouse=True)
def now(frozen_now):
    return frozen_now


@pytest.fixture
def desk(clinic_a):
    return open_desk(clinic_a, service="Fisioterapia", preparation="Venha com roupas leves.")


@pytest.fixture
def appointment(desk, patient_a):
    return book(desk, patient_a, notes="Traga seus exames.", internal_notes="Dor lombar crônica")


def url(name, appointment) -> str:
    return reverse(f"portal:{name}", args=[appointment.pk])


def text(response) -> str:
    return response.content.decode()


def reload(appointment) -> Appointment:
    return Appointment.objects.get(pk=appointment.pk)


# --- The list -------------------------------------------------------------------------------
def test_the_list_shows_upcoming_and_past_appointments_in_plain_words(
    portal, desk, patient_a, appointment
):
    past = [book(desk, patient_a, start=NOW - timedelta(days=d, hours=1)) for d in (7, 14, 21)]
    services.appointment_mark_no_show(appointment=past[0])
    services.appointment_check_in(appointment=past[1])
    services.appointment_start(appointment=past[1])
    services.appointment_complete(appointment=past[1])
    cancelled = book(desk, patient_a, start=THURSDAY_11H + timedelta(days=1))
    services.appointment_cancel(appointment=cancelled, via=Channel.PORTAL)
    by_clinic = book(desk, patient_a, start=THURSDAY_11H + timedelta(days=4))
    services.appointment_cancel(appointment=by_clinic, via=Channel.RECEPTION)

    page = text(portal.get(reverse("portal:appointments")))

    upcoming, history = page.split("Past and cancelled")
    assert "Thursday, March 5, 2026" in upcoming
    assert ">Scheduled<" in upcoming
    assert "Cancelled by you" in history
    assert "You missed it" in history
    assert "Attended" in history
    assert ">Cancelled<" in history
    assert 'class="badge bad"' in history
    assert url("appointment", appointment) in upcoming
    assert "Dor lombar" not in page


def test_the_past_is_paged_twenty_at_a_time(portal, desk, patient_a):
    for d in range(25):
        book(desk, patient_a, start=NOW - timedelta(days=d + 1))

    first = text(portal.get(reverse("portal:appointments")))
    second = text(portal.get(reverse("portal:appointments"), {"page": 2}))

    assert first.count('class="appointment-item"') == 20
    assert "Page 1 of 2" in first
    assert "?page=2" in first
    assert second.count('class="appointment-item"') == 5


def test_the_list_shows_only_the_patients_own_appointments(portal, desk, appointment, patient_b):
    neighbour = PatientFactory(clinic=desk["clinic"], full_name="Zélia Vizinha")
    theirs = book(desk, neighbour, start=THURSDAY_11H + timedelta(hours=-1))

    page = text(portal.get(reverse("portal:appointments")))

    assert url("appointment", appointment) in page
    assert url("appointment", theirs) not in page


@pytest.mark.parametrize("page", ["list", "detail"])
def test_pages_take_the_same_queries_with_one_or_many_appointments(
    portal, desk, patient_a, appointment, page, django_assert_max_num_queries
):
    target = reverse("portal:appointments") if page == "list" else url("appointment", appointment)
    book(desk, patient_a, start=NOW - timedelta(days=60))  # one of each, upcoming and past
    with django_assert_max_num_queries(6) as few:
        assert portal.get(target).status_code == 200
    for d in range(30):
        book(desk, patient_a, start=NOW - timedelta(days=d + 1))
        book(desk, patient_a, start=THURSDAY_11H + timedelta(days=d + 1, hours=-2))

    with django_assert_max_num_queries(len(few)):
        assert portal.get(target).status_code == 200


# --- One appointment ------------------------------------------------------------------------
def test_the_detail_shows_how_to_prepare_how_to_get_there_and_a_calendar_file(portal, appointment):
    page = text(portal.get(url("appointment", appointment)))

    assert "Fisioterapia" in page
    assert "Dra. Helena Prado" in page
    assert "Thursday, March 5, 2026 at 11 a.m." in page
    assert "Venha com roupas leves." in page
    assert "Traga seus exames." in page
    assert "Dor lombar" not in page  # internal notes stay internal
    address = "Rua das Flores, 100 — São Paulo - SP"
    assert address in page
    maps = "https://www.google.com/maps/search/?api=1&amp;query=" + quote_plus(address)
    assert maps in page
    assert url("appointment_ics", appointment) in page
    assert url("appointment_confirm", appointment) in page
    assert url("appointment_cancel", appointment) in page
    assert url("appointment_reschedule", appointment) in page


def test_the_calendar_file_has_the_appointments_time(portal, appointment):
    response = portal.get(url("appointment_ics", appointment))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    body = response.content.decode()
    # Local time with the clinic's time-zone definition (14:00 UTC is 11:00 in São Paulo).
    assert "DTSTART;TZID=America/Sao_Paulo:20260305T110000" in body
    assert "DTEND;TZID=America/Sao_Paulo:20260305T113000" in body
    assert "BEGIN:VTIMEZONE\r\nTZID:America/Sao_Paulo" in body
    assert "SUMMARY:Fisioterapia — Dra. Helena Prado" in body
    assert "Rua das Flores" in body
    assert "Dor lombar" not in body
    assert "attachment" in response["Content-Disposition"]


def test_a_rescheduled_appointment_points_to_the_new_time(portal, desk, appointment):
    new = services.appointment_reschedule(
        appointment=appointment, start=THURSDAY_11H + timedelta(days=1)
    )

    page = text(portal.get(url("appointment", appointment)))

    assert "Rescheduled" in page
    assert url("appointment", new) in page
    assert url("appointment_cancel", appointment) not in page


# --- Confirm --------------------------------------------------------------------------------
def test_the_patient_confirms_an_appointment(portal, appointment):
    response = portal.post(url("appointment_confirm", appointment))

    assert response.status_code == 302
    assert response["Location"] == url("appointment", appointment)
    appointment = reload(appointment)
    assert appointment.status == S.CONFIRMED
    assert appointment.confirmed_via == Channel.PORTAL
    page = text(portal.get(response["Location"]))
    assert "Your appointment is confirmed" in page
    assert url("appointment_confirm", appointment) not in page


def test_confirming_goes_back_to_the_page_it_came_from_but_only_inside_the_portal(
    portal, appointment
):
    response = portal.post(url("appointment_confirm", appointment), {"next": "/portal/"})
    assert response["Location"] == "/portal/"
    second = portal.post(url("appointment_confirm", appointment), {"next": "https://evil.example"})
    assert second["Location"] == "/portal/"


def test_confirming_by_get_changes_nothing(portal, appointment):
    assert portal.get(url("appointment_confirm", appointment)).status_code == 405
    assert reload(appointment).status == S.SCHEDULED


# --- Cancel ---------------------------------------------------------------------------------
def test_cancelling_asks_first_then_cancels_and_frees_the_time(portal, desk, appointment):
    page = text(portal.get(url("appointment_cancel", appointment)))
    assert "Are you sure you want to cancel this appointment?" in page
    assert reload(appointment).status == S.SCHEDULED

    response = portal.post(url("appointment_cancel", appointment), {"reason": "Viagem"})

    assert response.status_code == 302
    appointment = reload(appointment)
    assert appointment.status == S.CANCELLED
    assert appointment.cancelled_via == Channel.PORTAL
    assert appointment.cancellation_reason == "Viagem"
    assert not appointment.late_cancellation
    assert Event.objects.filter(event_type="slot.freed").exists()
    free = slot_list_available(
        clinic=desk["clinic"],
        service=desk["service"],
        start=THURSDAY_11H,
        end=THURSDAY_11H + timedelta(minutes=1),
    )
    assert [slot.start for slot in free] == [THURSDAY_11H]
    assert "Your appointment was cancelled" in text(portal.get(response["Location"]))


def test_inside_the_window_the_patient_is_told_to_call_and_cannot_cancel(portal, desk, patient_a):
    soon = book(desk, patient_a, start=TUESDAY_8H)

    detail = text(portal.get(url("appointment", soon)))
    assert url("appointment_cancel", soon) not in detail
    assert url("appointment_reschedule", soon) not in detail
    assert "only be cancelled or rescheduled online up to 24 hours before" in detail
    assert "(11) 3333-4444" in detail

    explained = portal.get(url("appointment_cancel", soon))
    assert explained.status_code == 200
    assert "Please call the clinic: (11) 3333-4444" in text(explained)
    assert "Yes, cancel" not in text(explained)

    response = portal.post(url("appointment_cancel", soon))

    assert response.status_code == 409
    assert "up to 24 hours before" in text(response)
    assert reload(soon).status == S.SCHEDULED


def test_a_past_or_finished_appointment_cannot_be_cancelled(portal, desk, patient_a):
    past = book(desk, patient_a, start=NOW - timedelta(days=7))

    response = portal.post(url("appointment_cancel", past))

    assert response.status_code == 409
    assert "can no longer be changed online" in text(response)
    assert reload(past).status == S.SCHEDULED


# --- Reschedule -----------------------------------------------------------------------------
def offered(response) -> tuple[list[str], str]:
    page = text(response)
    starts = re.findall(r'name="start" value="([^"]+)"', page)
    token = re.search(r'name="offered" value="([^"]+)"', page).group(1)
    return starts, token


def test_the_patient_moves_an_appointment_to_a_free_time(portal, desk, appointment):
    starts, token = offered(portal.get(url("appointment_reschedule", appointment)))
    assert starts
    assert THURSDAY_11H.isoformat() not in starts  # its own time

    response = portal.post(
        url("appointment_reschedule", appointment), {"start": starts[-1], "offered": token}
    )

    assert response.status_code == 302
    old = reload(appointment)
    new = old.replaced_by
    assert old.status == S.RESCHEDULED
    assert new.start.isoformat() == starts[-1]
    assert new.booked_via == Channel.PORTAL
    assert response["Location"] == url("appointment", new)
    assert "Your appointment was moved" in text(portal.get(response["Location"]))


def test_a_new_time_taken_meanwhile_is_a_friendly_409(portal, desk, appointment):
    starts, token = offered(portal.get(url("appointment_reschedule", appointment)))
    taken = datetime.fromisoformat(starts[0])
    book(desk, PatientFactory(clinic=desk["clinic"]), start=taken)

    response = portal.post(
        url("appointment_reschedule", appointment), {"start": starts[0], "offered": token}
    )

    assert response.status_code == 409
    assert "That time has just been taken" in text(response)
    assert reload(appointment).status == S.SCHEDULED
    assert Appointment.objects.filter(patient=appointment.patient).count() == 1


def test_a_time_not_offered_is_refused(portal, appointment):
    _starts, token = offered(portal.get(url("appointment_reschedule", appointment)))
    for data in ({"offered": token}, {"start": "2026-03-06T03:00:00+00:00", "offered": token}):
        response = portal.post(url("appointment_reschedule", appointment), data)
        assert response.status_code == 400
    assert reload(appointment).status == S.SCHEDULED


# --- Only one's own -------------------------------------------------------------------------
ROUTES = [
    ("get", "appointment"),
    ("get", "appointment_ics"),
    ("post", "appointment_confirm"),
    ("get", "appointment_cancel"),
    ("post", "appointment_cancel"),
    ("get", "appointment_reschedule"),
    ("post", "appointment_reschedule"),
]


@pytest.mark.parametrize(("method", "name"), ROUTES)
def test_another_patients_appointment_is_a_404(portal, desk, method, name):
    neighbour = PatientFactory(clinic=desk["clinic"])
    theirs = book(desk, neighbour)

    response = getattr(portal, method)(url(name, theirs))

    assert response.status_code == 404
    assert reload(theirs).status == S.SCHEDULED


@pytest.mark.parametrize(
    "target", ["portal:appointments", "portal:appointment", "portal:appointment_ics"]
)
def test_the_pages_need_a_signed_in_patient(client, appointment, target):
    args = [] if target == "portal:appointments" else [appointment.pk]

    response = client.get(reverse(target, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:sign_in"))


# --- Data export ----------------------------------------------------------------------------
def test_the_export_has_the_patients_appointments_and_waitlist_without_internal_notes(
    desk, patient_a, appointment
):
    book(desk, PatientFactory(clinic=desk["clinic"]), start=THURSDAY_11H + timedelta(hours=-1))
    services.waitlist_add(
        clinic=desk["clinic"],
        patient=patient_a,
        service=desk["service"],
        earliest_date=NOW.date(),
        latest_date=NOW.date() + timedelta(days=7),
    )
    sections = {section.key: section for section in export_sections()}

    rows = sections["appointments"].build(patient_a)
    waitlist = sections["waitlist"].build(patient_a)

    assert sections["appointments"].order == 20
    assert len(rows) == 1
    row = rows[0]
    assert row["start"] == "2026-03-05T11:00:00-03:00"
    assert row["service"] == "Fisioterapia"
    assert row["professional"] == "Dra. Helena Prado"
    assert row["status"] == S.SCHEDULED
    assert row["booked_via"] == Channel.RECEPTION
    assert row["notes"] == "Traga seus exames."
    assert "Dor lombar" not in repr(rows)
    assert "internal_notes" not in row
    assert [entry["service"] for entry in waitlist] == ["Fisioterapia"]
    assert WaitlistEntry.objects.count() == 1
