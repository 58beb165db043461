import io
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from clinic.models import API_SCOPES, ApiKey, Clinic, Consent, Patient, Professional, Room
from clinic.validators import cpf_validate
from scheduling.availability import slot_list_available
from scheduling.models import Appointment, Service, WorkingHours

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=40, stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_it_creates_the_demo_clinic_with_its_people(seeded):
    demo = Clinic.objects.get(name="Clínica Demo")
    assert Patient.objects.for_clinic(demo).count() == 40 + 1  # and the portal's demo patient
    assert Professional.objects.for_clinic(demo).count() == 6
    assert Room.objects.for_clinic(demo).count() == 4
    assert Consent.objects.for_clinic(demo).exists()
    for patient in Patient.objects.for_clinic(demo):
        cpf_validate(patient.cpf)


def test_the_portal_demo_patient_is_a_patient_of_both_clinics(seeded):
    records = Patient.objects.filter(cpf="52998224725").select_related("clinic")
    assert sorted(p.clinic.name for p in records) == [
        "Clínica Demo",
        "Clínica Demo — Unidade Centro",
    ]
    assert all(p.phone and p.consents.exists() for p in records)


def test_demo_users_sign_in_with_the_demo_password(seeded):
    for username in ("admin", "recepcao", "gerente", "profissional"):
        assert authenticate(username=username, password="cuidar-demo") is not None


def test_the_demo_receptionist_works_in_two_clinics(seeded):
    from django.contrib.auth import get_user_model

    from clinic.tenancy import clinics_for_user

    recepcao = get_user_model().objects.get(username="recepcao")
    assert clinics_for_user(recepcao).count() == 2


def test_running_it_twice_changes_nothing(seeded):
    counts = (Patient.objects.count(), Consent.objects.count(), Professional.objects.count())
    call_command("seed_demo", patients=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (Patient.objects.count(), Consent.objects.count(), Professional.objects.count()) == (
        counts
    )


def test_the_demo_has_a_partner_api_key_with_every_scope_shown_on_every_run(settings, client):
    settings.DEBUG = True

    def seed() -> str:
        out = io.StringIO()
        call_command("seed_demo", patients=5, stdout=out)
        [line] = [line for line in out.getvalue().splitlines() if "Partner API key" in line]
        return line.rsplit(" ", 1)[1]

    key = seed()
    assert seed() == key  # the same key again, and still one key
    [stored] = ApiKey.objects.all()
    assert stored.clinic.name == "Clínica Demo"
    assert sorted(stored.scopes) == sorted(API_SCOPES)
    assert key not in str(stored.__dict__)  # only its hash is kept
    response = client.get("/api/v1/services/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json()["results"]


# --- The demo's agenda, whatever the day it is seeded ------------------------------------------
SP = ZoneInfo("America/Sao_Paulo")
#: A Saturday; a Sunday late in the evening; a national holiday (Tiradentes, a Tuesday);
#: New Year's Eve (a Thursday, the next day a holiday).
SEED_MOMENTS = [
    datetime(2026, 12, 5, 10, 0, tzinfo=SP),
    datetime(2026, 12, 6, 23, 30, tzinfo=SP),
    datetime(2027, 4, 21, 9, 0, tzinfo=SP),
    datetime(2026, 12, 31, 18, 45, tzinfo=SP),
]
#: Free times to book over the next 7 days, counted per professional (each works 45 h a week).
MIN_BOOKABLE_PER_PROFESSIONAL = 20


@pytest.mark.parametrize("moment", SEED_MOMENTS, ids=lambda m: m.strftime("%a-%Y-%m-%d-%H%M"))
def test_the_demo_agenda_obeys_working_hours_and_leaves_a_bookable_week(settings, moment):
    settings.DEBUG = True
    with time_machine.travel(moment, tick=False):
        call_command("seed_demo", patients=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
        demo = Clinic.objects.get(name="Clínica Demo")
        appointments = list(Appointment.objects.for_clinic(demo).select_related("service"))
        assert len(appointments) > 100
        hours = list(WorkingHours.objects.for_clinic(demo))
        closed = holidays.country_holidays("BR", years=[2026, 2027])
        for appointment in appointments:
            start, end = appointment.start.astimezone(SP), appointment.end.astimezone(SP)
            day = start.date()
            assert day not in closed, f"{appointment} is on a holiday"
            assert any(
                h.professional_id == appointment.professional_id
                and h.applies_on(day)
                and h.start_time <= start.time()
                and end.date() == day
                and end.time() <= h.end_time
                for h in hours
            ), f"{appointment} ({start:%a %H:%M}–{end:%H:%M}) is outside working hours"

        now = timezone.now()
        bookable = defaultdict(set)
        for service in Service.objects.for_clinic(demo).filter(is_active=True):
            for slot in slot_list_available(
                clinic=demo, service=service, start=now, end=now + timedelta(days=7)
            ):
                bookable[slot.professional_id].add(slot.start)
        professionals = Professional.objects.for_clinic(demo).values_list("pk", flat=True)
        short = {pk: len(bookable[pk]) for pk in professionals}
        assert min(short.values()) >= MIN_BOOKABLE_PER_PROFESSIONAL, short
