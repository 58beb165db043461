"""The receptionist's first minutes on the demo, through real sign-in (no force_login)."""

import pytest
from django.urls import reverse

from clinic.models import Clinic, Patient

pytestmark = pytest.mark.django_db
DEMO_PATIENTS = 30


@pytest.fixture
def demo(seeded_demo, settings):
    """The demo, seeded once for this module (tests/conftest.py)."""
    settings.DEBUG = True


def test_the_demo_receptionist_signs_in_switches_clinic_and_finds_a_patient_by_cpf(demo, client):
    login = client.post(
        reverse("admin:login"),
        {"username": "recepcao", "password": "cuidar-demo", "next": "/admin/"},
        follow=True,
    )
    assert login.status_code == 200
    page = login.content.decode()
    assert "Clínica:" in page  # the switcher, in pt-BR
    main = Clinic.objects.get(name="Clínica Demo")
    branch = Clinic.objects.get(name="Clínica Demo — Unidade Centro")
    assert login.context["dashboard"]["clinic"] == main  # her first clinic by name

    switched = client.post(reverse("admin:switch_clinic"), {"clinic": branch.pk}, follow=True)
    assert switched.context["dashboard"]["clinic"] == branch

    patient = Patient.objects.for_clinic(branch).order_by("pk").first()
    result = client.get(reverse("admin:clinic_patient_changelist"), {"q": patient.cpf})
    assert list(result.context["cl"].result_list) == [patient]
    assert patient.cpf_formatted in result.content.decode()


def test_a_wrong_password_does_not_sign_in(demo, client):
    response = client.post(
        reverse("admin:login"), {"username": "recepcao", "password": "errada", "next": "/admin/"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
