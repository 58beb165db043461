import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from clinic.models import Clinic, Consent, Patient, Professional, Room
from clinic.validators import cpf_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(seeded_demo, settings):
    """The demo with 40 patients, seeded once for this module (tests/conftest.py)."""
    settings.DEBUG = True


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

    from clinic.kernel.tenancy import clinics_for_user

    recepcao = get_user_model().objects.get(username="recepcao")
    assert clinics_for_user(recepcao).count() == 2


def test_running_it_twice_changes_nothing(seeded):
    counts = (Patient.objects.count(), Consent.objects.count(), Professional.objects.count())
    call_command("seed_demo", patients=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (Patient.objects.count(), Consent.objects.count(), Professional.objects.count()) == (
        counts
    )
