"""Specialty templates on the encounter page: choosing one, filling it, saving its answers
with the version they were written in, signing with it, and rendering a signed encounter
with that version after the template changed."""

import pytest
from django.urls import reverse
from django.utils import translation

from clinic.records import services
from clinic.records.exceptions import SigningRefused
from clinic.records.models import ClinicalTemplate, Entry, EntryKind
from clinic.records.template_services import latest_version, new_version
from tests.records.core.conftest import make_professional

K = EntryKind
pytestmark = pytest.mark.django_db
PHYSIO = "Avaliação — Fisioterapia"


def _open(professional, patient):
    return services.open_encounter(
        clinic=patient.clinic, patient=patient, professional=professional, by=professional.user
    )


def _physio(clinic):
    return ClinicalTemplate.objects.get(clinic=clinic, name=PHYSIO)


def _url(encounter):
    return reverse("admin:records_encounter_record", args=[encounter.pk])


def _post(client, encounter, version, **answers):
    data = {f"template_{K.ANAMNESIS}": str(version.pk)}
    data.update({f"tpl_anamnesis_{key}": value for key, value in answers.items()})
    return client.post(_url(encounter), data, HTTP_ACCEPT_LANGUAGE="pt-br")


def test_the_page_builds_the_chosen_templates_latest_form(doctor_a, record_patient, client_for):
    encounter = _open(doctor_a, record_patient)
    template = _physio(record_patient.clinic)
    new_version(template, [*latest_version(template).fields, _extra_field()])
    response = client_for(doctor_a.user).get(
        _url(encounter), {"use_anamnesis": template.pk}, HTTP_ACCEPT_LANGUAGE="pt-br"
    )
    page = response.content.decode()
    assert "Ombro — flexão (°)" in page  # label with its unit
    assert 'name="tpl_anamnesis_adm_ombro_flexao"' in page and 'max="200"' in page
    assert "0 = sem dor, 10 = pior dor imaginável" in page  # the scale's anchors
    assert "Amplitude de movimento (goniometria)" in page  # a heading
    assert 'name="tpl_anamnesis_novo_campo"' in page  # version 2's field: the latest
    assert f'name="template_anamnesis" value="{latest_version(template).pk}"' in page


def _extra_field():
    return {"type": "text", "key": "novo_campo", "label": "Campo novo"}


def test_answers_are_saved_with_their_version_and_bad_ones_refused_per_field(
    doctor_a, record_patient, client_for
):
    encounter = _open(doctor_a, record_patient)
    version = latest_version(_physio(record_patient.clinic))
    client = client_for(doctor_a.user)
    response = _post(client, encounter, version, adm_ombro_flexao="250", dor_intensidade="6")
    assert response.status_code == 200
    assert "Certifique-se que este valor seja menor ou igual a 200." in response.content.decode()
    assert not Entry.objects.filter(encounter=encounter).exists()  # nothing half-saved

    response = _post(
        client, encounter, version, adm_ombro_flexao="120", dor_intensidade="6", lado_avaliado=""
    )
    assert response.status_code == 302
    entry = Entry.objects.get(encounter=encounter, kind=K.ANAMNESIS)
    assert entry.template_version == version
    assert entry.content == {"answers": {"adm_ombro_flexao": "120", "dor_intensidade": 6}}

    # The draft comes back on the page, in the same template, values filled in.
    page = client.get(_url(encounter)).content.decode()
    assert 'name="tpl_anamnesis_adm_ombro_flexao" value="120"' in page


def test_autosave_takes_the_template_fields(doctor_a, record_patient, client_for):
    encounter = _open(doctor_a, record_patient)
    version = latest_version(_physio(record_patient.clinic))
    url = reverse("admin:records_encounter_autosave", args=[encounter.pk])
    response = client_for(doctor_a.user).post(
        url, {"template_anamnesis": version.pk, "tpl_anamnesis_dor_intensidade": "4"}
    )
    assert response.json()["saved"] is True
    entry = Entry.objects.get(encounter=encounter, kind=K.ANAMNESIS)
    assert entry.content["answers"] == {"dor_intensidade": 4}
    bad = client_for(doctor_a.user).post(
        url, {"template_anamnesis": version.pk, "tpl_anamnesis_dor_intensidade": "11"}
    )
    assert bad.status_code == 422 and "tpl_anamnesis_dor_intensidade" in bad.json()["errors"]


def test_another_clinics_version_is_not_taken(doctor_a, record_patient, client_for, clinic_b):
    encounter = _open(doctor_a, record_patient)
    foreign = latest_version(_physio(clinic_b))
    response = _post(client_for(doctor_a.user), encounter, foreign, dor_intensidade="6")
    assert response.status_code == 302
    assert not Entry.objects.filter(encounter=encounter, kind=K.ANAMNESIS).exists()


def test_the_specialty_template_is_offered_first_then_the_last_used(
    record_patient, client_for, clinic_a
):
    physio = make_professional(clinic_a, "fisio", council="CREFITO", number="9999")
    physio.specialty = "Fisioterapia"
    physio.save()
    client = client_for(physio.user)
    first = _open(physio, record_patient)
    page = client.get(_url(first)).content.decode()
    template = _physio(clinic_a)
    assert f'<option value="{template.pk}" selected>' in page

    other = ClinicalTemplate.objects.get(clinic=clinic_a, name="Anamnese — Clínica geral")
    version = latest_version(other)
    data = {"template_anamnesis": version.pk, "tpl_anamnesis_queixa_principal": "Dor"}
    assert client.post(_url(first), data).status_code == 302
    second = _open(physio, record_patient)
    page = client.get(_url(second)).content.decode()
    assert f'<option value="{other.pk}" selected>' in page  # remembered


def _required_answers(clinic):
    """An answer to every required field of the physiotherapy assessment."""
    answers = {}
    for field in latest_version(_physio(clinic)).fields:
        if field.get("required"):
            kind = field["type"]
            answers[field["key"]] = (
                7 if kind == "scale" else field["choices"][0] if kind == "choice" else "Lombalgia"
            )
    return answers


def _sign_with_template(doctor, patient, answers):
    encounter = _open(doctor, patient)
    version = latest_version(_physio(patient.clinic))
    services.entry_save_draft(
        encounter=encounter,
        kind=K.ANAMNESIS,
        content={"answers": answers},
        template_version=version,
        by=doctor.user,
    )
    for kind, content in (
        (K.PHYSICAL_EXAM, {"text": "Dor à palpação"}),
        (K.DIAGNOSIS, {"items": [{"code": "M54.5", "principal": True}]}),
        (K.PLAN, {"text": "Cinesioterapia"}),
    ):
        services.entry_save_draft(encounter=encounter, kind=kind, content=content, by=doctor.user)
    return encounter


def test_a_filled_anamnesis_template_is_the_anamnesis_and_its_required_fields_count(
    doctor_a, record_patient
):
    encounter = _sign_with_template(doctor_a, record_patient, {"adm_ombro_flexao": "120"})
    with pytest.raises(SigningRefused) as refused, translation.override("pt-br"):
        services.encounter_finalize(encounter=encounter, by=doctor_a.user)
    assert refused.value.missing[:2] == [
        f"{PHYSIO}: Queixa principal",
        f"{PHYSIO}: Intensidade da dor (EVA)",
    ]
    assert "anamnese" not in refused.value.missing  # the template is the anamnesis
    assert all(item.startswith(PHYSIO) for item in refused.value.missing)
    services.entry_save_draft(
        encounter=encounter,
        kind=K.ANAMNESIS,
        content={"answers": _required_answers(record_patient.clinic)},
        template_version=latest_version(_physio(record_patient.clinic)),
        by=doctor_a.user,
    )
    assert services.encounter_finalize(encounter=encounter, by=doctor_a.user).is_finalized


def test_the_missing_list_follows_the_language_of_the_moment(doctor_a, record_patient):
    encounter = _open(doctor_a, record_patient)
    with translation.override("en"):
        assert "treatment / plan" in services.signing_missing(encounter)
    with translation.override("pt-br"):
        assert "treatment / plan" not in services.signing_missing(encounter)


def test_a_signed_encounter_renders_with_the_version_it_was_written_with(
    doctor_a, record_patient, client_for
):
    answers = {**_required_answers(record_patient.clinic), "adm_ombro_flexao": "120"}
    encounter = _sign_with_template(doctor_a, record_patient, answers)
    services.encounter_finalize(encounter=encounter, by=doctor_a.user)
    template = _physio(record_patient.clinic)
    v1 = latest_version(template)
    changed = [
        {**f, "label": "Flexão do ombro"} if f.get("key") == "adm_ombro_flexao" else f
        for f in v1.fields
        if f.get("key") != "queixa_principal"
    ]
    assert new_version(template, changed).number == v1.number + 1

    page = client_for(doctor_a.user).get(_url(encounter), HTTP_ACCEPT_LANGUAGE="pt-br")
    text = page.content.decode()
    assert "Ombro — flexão" in text and "120 °" in text
    assert "Queixa principal" in text and "Lombalgia" in text
    assert "7 de 10" in text
    assert "Flexão do ombro" not in text
    assert f"{PHYSIO} (v{v1.number})" in text


def test_the_editable_page_with_templates_takes_a_bounded_number_of_queries(
    doctor_a, record_patient, client_for, django_assert_max_num_queries
):
    encounter = _open(doctor_a, record_patient)
    version = latest_version(_physio(record_patient.clinic))
    client = client_for(doctor_a.user)
    _post(client, encounter, version, dor_intensidade="6")
    client.get(reverse("admin:index"))
    with django_assert_max_num_queries(24):  # the page's bound (19 today)
        assert client.get(_url(encounter)).status_code == 200


def test_free_text_and_answers_share_the_section_and_reception_sees_neither(
    doctor_a, record_patient, client_for, receptionist_a
):
    encounter = _open(doctor_a, record_patient)
    version = latest_version(_physio(record_patient.clinic))
    client = client_for(doctor_a.user)
    data = {
        "template_anamnesis": version.pk,
        "tpl_anamnesis_dor_intensidade": "3",
        K.ANAMNESIS: "Refere piora ao sentar",
    }
    assert client.post(_url(encounter), data).status_code == 302
    entry = Entry.objects.get(encounter=encounter, kind=K.ANAMNESIS)
    assert entry.content == {"text": "Refere piora ao sentar", "answers": {"dor_intensidade": 3}}
    response = client_for(receptionist_a).get(_url(encounter), {"use_anamnesis": version.pk})
    assert response.status_code == 403
    assert "piora ao sentar" not in response.content.decode()
