"""A receptionist of clinic B sees none of clinic A's rows: not in changelists, not by URL
(404), not in autocomplete, not among form choices. One check per admin model."""

import pytest
from django.urls import reverse

from clinic.models import Membership
from tests.clinic.factories import ConsentFactory, ProfessionalFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows_of_a(clinic_a, patient_a):
    """One row of every clinic-owned admin model, in clinic A."""
    return {
        "patient": patient_a,
        "professional": ProfessionalFactory(clinic=clinic_a, full_name="Dra. Alfa"),
        "room": RoomFactory(clinic=clinic_a, name="Sala Alfa"),
        "consent": ConsentFactory(patient=patient_a),
    }


MODELS = ["patient", "professional", "room", "consent"]


def changelist(model):
    return reverse(f"admin:clinic_{model}_changelist")


@pytest.mark.parametrize("model", MODELS)
def test_it_shows_own_clinics_rows(model, rows_of_a, receptionist_a, client_for):
    response = client_for(receptionist_a).get(changelist(model))
    assert list(response.context["cl"].result_list) == [rows_of_a[model]]


def test_autocomplete_finds_own_clinics_patient(rows_of_a, receptionist_a, client_for):
    url = reverse("admin:autocomplete")
    params = {
        "app_label": "clinic",
        "model_name": "consent",
        "field_name": "patient",
        "term": "maria",
    }
    response = client_for(receptionist_a).get(url, params)
    assert [r["id"] for r in response.json()["results"]] == [str(rows_of_a["patient"].pk)]


def test_it_hides_other_clinics_users_from_professional_user_choices(
    clinic_a, receptionist_a, receptionist_b, admin_a, client_for
):
    form = (
        client_for(admin_a).get(reverse("admin:clinic_professional_add")).context["adminform"].form
    )
    choices = set(form.fields["user"].queryset)
    assert receptionist_a in choices
    assert receptionist_b not in choices


def test_a_superuser_sees_every_clinic(rows_of_a, patient_b, superuser, client_for):
    response = client_for(superuser).get(changelist("patient"))
    assert set(response.context["cl"].result_list) == {rows_of_a["patient"], patient_b}


def test_a_user_with_two_clinics_sees_only_the_one_they_work_in(
    clinic_a, clinic_b, patient_a, patient_b, receptionist_a, client_for
):
    from clinic import services

    services.membership_save(
        membership=Membership(user=receptionist_a, clinic=clinic_b, role="receptionist")
    )
    client = client_for(receptionist_a)
    first = client.get(changelist("patient")).context["cl"].result_list
    assert list(first) == [patient_a]  # clinics are ordered by name: Alfa first

    client.post(reverse("admin:switch_clinic"), {"clinic": clinic_b.pk})
    second = client.get(changelist("patient")).context["cl"].result_list
    assert list(second) == [patient_b]
