"""Registration completeness: the identification CFM 1.638/2002 art. 5 asks a clinical
record to hold, and the patient page's warning when it is incomplete."""

import datetime

import pytest
from django.urls import reverse

from clinic.selectors import registration_gaps
from tests.clinic.factories import PatientFactory

COMPLETE = {
    "full_name": "Maria José Araújo",
    "birth_date": datetime.date(1980, 5, 17),
    "sex": "female",
    "mother_name": "Ana Araújo",
    "birthplace_city": "Recife",
    "birthplace_state": "PE",
    "postal_code": "50030-230",
    "street": "Rua da Aurora",
    "number": "120",
    "district": "Boa Vista",
    "city": "Recife",
    "state": "PE",
}


@pytest.fixture
def complete_patient(clinic_a):
    return PatientFactory(clinic=clinic_a, **COMPLETE)


def test_a_complete_registration_has_no_gaps(complete_patient):
    assert registration_gaps(complete_patient) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"full_name": "Maria"}, "Nome completo (nome e sobrenome)"),
        ({"birth_date": None}, "Data de nascimento"),
        ({"sex": ""}, "Sexo"),
        ({"mother_name": "  "}, "Nome da mãe"),
        ({"birthplace_state": ""}, "Naturalidade (município e UF)"),
        ({"birthplace_city": ""}, "Naturalidade (município e UF)"),
        ({"postal_code": "5003"}, "Endereço completo (falta: CEP)"),
        ({"number": "", "district": ""}, "Endereço completo (falta: número, bairro)"),
    ],
)
def test_each_missing_item_is_named(complete_patient, changes, expected):
    for name, value in changes.items():
        setattr(complete_patient, name, value)
    assert registration_gaps(complete_patient) == [expected]


def test_prefer_not_to_say_answers_the_sex_question(complete_patient):
    complete_patient.sex = "not_informed"
    assert registration_gaps(complete_patient) == []


def test_the_patient_page_warns_when_the_registration_is_incomplete(
    client_for, receptionist_a, clinic_a
):
    patient = PatientFactory(clinic=clinic_a, **{**COMPLETE, "mother_name": ""})
    page = client_for(receptionist_a).get(reverse("admin:clinic_patient_change", args=[patient.pk]))
    content = page.content.decode()
    assert "Cadastro incompleto" in content
    assert "Nome da mãe" in content
    assert 'name="mother_name"' in content
    assert 'name="birthplace_city"' in content


def test_no_warning_on_a_complete_registration(client_for, receptionist_a, complete_patient):
    page = client_for(receptionist_a).get(
        reverse("admin:clinic_patient_change", args=[complete_patient.pk])
    )
    assert "Cadastro incompleto" not in page.content.decode()


def test_the_receptionist_fills_the_new_fields(client_for, receptionist_a, complete_patient):
    from clinic.models import Patient

    url = reverse("admin:clinic_patient_change", args=[complete_patient.pk])
    client = client_for(receptionist_a)
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "clinic"}
    data.update(
        {
            "birth_date": "17/05/1980",
            "phone": complete_patient.phone,
            "mother_name": "Joana Araújo",
            "birthplace_city": "Olinda",
            "birthplace_state": "PE",
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "consents-MIN_NUM_FORMS": "0",
            "consents-MAX_NUM_FORMS": "1000",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    saved = Patient.objects.get(pk=complete_patient.pk)
    assert (saved.mother_name, saved.birthplace_city) == ("Joana Araújo", "Olinda")
