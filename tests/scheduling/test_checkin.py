"""Check-in at the reception desk: scanning the patient's QR code, or finding the patient
and clicking (scheduling/admin/checkin.py)."""

from datetime import date, datetime, time
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.contrib.messages.constants import ERROR, SUCCESS
from django.urls import reverse

from scheduling.choices import AppointmentStatus
from tests.clinic.factories import ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

S = AppointmentStatus
SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)
CHECKIN = reverse("admin:scheduling_checkin")
PERMS = ("view_appointment", "change_appointment")


def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=SP)


@pytest.fixture(autouse=True)
def _monday_morning():
    """Reception opens at 07:30 on Monday 2 March 2026 (São Paulo)."""
    with time_machine.travel(at(7, 30), tick=False):
        yield


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="scheduling", codename__in=codenames)
    )
    return user


def messages_of(response):
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def desk(clinic_a):
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")
    service = ServiceFactory(clinic=clinic_a, name="Consulta", professionals=[helena])
    return SimpleNamespace(clinic=clinic_a, helena=helena, service=service)


def appointment(desk, start, **kw):
    kw.setdefault("professional", desk.helena)
    return AppointmentFactory(service=desk.service, start=start, **kw)


@pytest.fixture
def reception(receptionist_a, client_for):
    return client_for(grant(receptionist_a, *PERMS))


@pytest.fixture
def other_reception(receptionist_b, client_for):
    return client_for(grant(receptionist_b, *PERMS))


# --- Scanning the QR code -------------------------------------------------------------------
def test_scanning_the_code_checks_in_todays_appointment(desk, reception, patient_a):
    today = appointment(desk, at(9), patient=patient_a, status=S.CONFIRMED)

    response = reception.post(CHECKIN, {"code": patient_a.checkin_token})

    assert response.status_code == 302 and response.url == CHECKIN
    today.refresh_from_db()
    assert today.status == S.ARRIVED
    assert today.arrived_at is not None
    [(level, text)] = messages_of(response)
    assert level == SUCCESS and patient_a.display_name in text


def test_a_code_read_as_a_link_works_too(desk, reception, patient_a):
    today = appointment(desk, at(9), patient=patient_a)

    reception.post(CHECKIN, {"code": f" https://cuidar.example/c/{patient_a.checkin_token}\n"})

    today.refresh_from_db()
    assert today.status == S.ARRIVED


def test_scanning_works_for_todays_appointment_only(desk, reception, patient_a):
    tomorrow = appointment(desk, at(9, day=date(2026, 3, 3)), patient=patient_a)
    yesterday = appointment(desk, at(9, day=date(2026, 3, 1)), patient=patient_a)

    response = reception.post(CHECKIN, {"code": patient_a.checkin_token})

    assert [level for level, _ in messages_of(response)] == [ERROR]
    for row in (tomorrow, yesterday):
        row.refresh_from_db()
        assert row.status == S.SCHEDULED


def test_an_unknown_code_is_a_clear_error(desk, reception):
    response = reception.post(CHECKIN, {"code": "nao-existe"})

    [(level, text)] = messages_of(response)
    assert level == ERROR and text


def test_another_clinics_code_is_just_not_found(desk, patient_a, receptionist_b, client_for):
    today = appointment(desk, at(9), patient=patient_a)
    grant(receptionist_b, *PERMS)

    scanned = client_for(receptionist_b).post(CHECKIN, {"code": patient_a.checkin_token})
    unknown = client_for(receptionist_b).post(CHECKIN, {"code": "nao-existe"})

    assert messages_of(scanned) == messages_of(unknown)  # reveals nothing
    today.refresh_from_db()
    assert today.status == S.SCHEDULED


# --- Finding the patient and clicking -------------------------------------------------------
def test_searching_lists_the_patients_appointments_today(desk, reception, patient_a):
    today = appointment(desk, at(9), patient=patient_a)
    appointment(desk, at(9, day=date(2026, 3, 3)), patient=patient_a)  # tomorrow
    appointment(desk, at(10))  # someone else

    response = reception.get(CHECKIN, {"q": "maria jose"})

    assert response.status_code == 200
    [patient] = response.context["patients"]
    assert patient == patient_a
    assert [row["appointment"] for row in patient.today] == [today]
    assert patient.today[0]["can_check_in"] is True


def test_searching_by_cpf_finds_the_patient(desk, reception, patient_a):
    response = reception.get(CHECKIN, {"q": "529.982.247-25"})

    assert response.context["patients"] == [patient_a]


def test_one_click_checks_the_patient_in(desk, reception, patient_a, receptionist_a):
    today = appointment(desk, at(9), patient=patient_a)

    response = reception.post(CHECKIN, {"appointment": today.pk, "q": "maria"})

    assert response.status_code == 302 and response.url == f"{CHECKIN}?q=maria"
    today.refresh_from_db()
    assert today.status == S.ARRIVED


def test_checking_in_twice_is_refused_with_a_message(desk, reception, patient_a):
    arrived = appointment(desk, at(9), patient=patient_a, status=S.ARRIVED)

    response = reception.post(CHECKIN, {"appointment": arrived.pk})

    assert [level for level, _ in messages_of(response)] == [ERROR]
    arrived.refresh_from_db()
    assert arrived.status == S.ARRIVED


def test_the_page_lists_who_is_expected_today(desk, reception):
    expected = appointment(desk, at(9))
    confirmed = appointment(desk, at(10), status=S.CONFIRMED)
    appointment(desk, at(11), status=S.ARRIVED)
    appointment(desk, at(12), status=S.CANCELLED)
    appointment(desk, at(9, day=date(2026, 3, 3)))

    response = reception.get(CHECKIN)

    assert [row["appointment"] for row in response.context["expected"]] == [expected, confirmed]


def test_check_in_needs_the_change_permission(desk, receptionist_a, client_for, patient_a):
    today = appointment(desk, at(9), patient=patient_a)
    receptionist_a.groups.clear()  # only what is granted below
    viewer = client_for(grant(receptionist_a, "view_appointment"))

    assert viewer.get(CHECKIN).status_code == 403
    assert viewer.post(CHECKIN, {"code": patient_a.checkin_token}).status_code == 403
    today.refresh_from_db()
    assert today.status == S.SCHEDULED
