"""Clinical templates: the field schema, the form of every field type, versioning (an old
encounter's answers still render after the template changes) and the default templates."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clinic.records.default_templates import DEFAULT_TEMPLATES
from clinic.records.models import ClinicalTemplate, ClinicalTemplateVersion
from clinic.records.template_engine import build_form, render_answers, validate_schema
from clinic.records.template_services import install_default_templates, new_version
from tests.clinic.factories import ClinicFactory

EVERY_TYPE = [
    {"type": "heading", "label": "Anamnese"},
    {"type": "text", "key": "queixa", "label": "Queixa", "required": True},
    {"type": "long_text", "key": "historia", "label": "História"},
    {"type": "number", "key": "cintura", "label": "Cintura", "unit": "cm", "min": 30, "max": 250, "decimals": 1},  # noqa: E501
    {"type": "choice", "key": "lado", "label": "Lado", "choices": ["Direito", "Esquerdo"]},
    {"type": "multiple_choice", "key": "regioes", "label": "Regiões", "choices": ["Cervical", "Lombar", "Joelho"]},  # noqa: E501
    {"type": "scale", "key": "dor", "label": "Dor", "min_label": "sem dor", "max_label": "pior dor"},  # noqa: E501
    {"type": "yes_no", "key": "alergias", "label": "Alergias?"},
    {"type": "date", "key": "retorno", "label": "Retorno"},
]  # fmt: skip


# --- Schema -----------------------------------------------------------------------------------
def test_a_schema_with_every_type_is_valid():
    assert validate_schema(EVERY_TYPE) == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            [
                {"type": "text", "key": "a", "label": "A"},
                {"type": "text", "key": "a", "label": "B"},
            ],
            "repetid",
        ),
        ([{"type": "number", "key": "n", "label": "N", "min": 10, "max": 5}], "mínimo"),
        ([{"type": "number", "key": "n", "label": "N", "min": "dez"}], "número"),
        ([{"type": "number", "key": "n", "label": "N", "decimals": 9}], "casas decimais"),
        ([{"type": "choice", "key": "c", "label": "C", "choices": []}], "opção"),
        ([{"type": "multiple_choice", "key": "c", "label": "C"}], "opção"),
        ([{"type": "choice", "key": "c", "label": "C", "choices": ["A", "A"]}], "repetida"),
        ([{"type": "slider", "key": "s", "label": "S"}], "tipo"),
        ([{"type": "text", "key": "Queixa Principal", "label": "Q"}], "chave"),
        ([{"type": "text", "key": "q", "label": ""}], "rótulo"),
        ([{"type": "text", "key": "q", "label": "Q", "required": "sim"}], "obrigatório"),
        ([{"type": "text", "key": "q", "label": "Q", "unit": "cm"}], "desconhecid"),
        ([], "ao menos um campo"),
        ({"type": "text"}, "lista"),
    ],
)
def test_bad_schemas_are_refused_with_a_message(fields, fragment):
    errors = validate_schema(fields)
    assert errors
    assert any(fragment in e for e in errors), errors


# --- The form of each type --------------------------------------------------------------------
def test_the_form_reads_every_type_into_json_answers():
    form = build_form(
        EVERY_TYPE,
        data={
            "queixa": "Dor no joelho",
            "historia": "Há 3 semanas",
            "cintura": "88.5",
            "lado": "Direito",
            "regioes": ["Lombar", "Joelho"],
            "dor": "7",
            "alergias": "no",
            "retorno": "2026-12-20",
        },
    )
    assert form.is_valid(), form.errors
    assert form.answers() == {
        "queixa": "Dor no joelho",
        "historia": "Há 3 semanas",
        "cintura": "88.5",
        "lado": "Direito",
        "regioes": ["Lombar", "Joelho"],
        "dor": 7,
        "alergias": False,
        "retorno": "2026-12-20",
    }
    assert form.layout[0] == ("heading", "Anamnese")
    assert form.fields["cintura"].label == "Cintura (cm)"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("queixa", ""),  # required
        ("cintura", "300"),  # above max
        ("cintura", "20"),  # below min
        ("cintura", "88.55"),  # too many decimals
        ("lado", "Ambos"),  # not a choice
        ("regioes", ["Ombro"]),
        ("dor", "11"),
        ("alergias", "talvez"),
        ("retorno", "31/02/2026"),
    ],
)
def test_each_type_refuses_what_it_cannot_hold(field, value):
    data = {"queixa": "Dor"}
    data[field] = value
    form = build_form(EVERY_TYPE, data=data)
    assert not form.is_valid()
    assert field in form.errors


def test_unanswered_optional_fields_are_left_out():
    form = build_form(EVERY_TYPE, data={"queixa": "Dor"})
    assert form.is_valid(), form.errors
    assert form.answers() == {"queixa": "Dor"}


def test_stored_answers_fill_the_form_again():
    form = build_form(EVERY_TYPE, initial={"alergias": True, "dor": 3})
    assert form["alergias"].value() == "yes"
    assert form["dor"].value() == "3"


# --- Rendering and versioning -----------------------------------------------------------------
def test_answers_render_for_people():
    shown = render_answers(
        EVERY_TYPE,
        {"queixa": "Dor", "cintura": "88.5", "regioes": ["Lombar", "Joelho"], "dor": 7, "alergias": True, "retorno": "2026-12-20"},  # noqa: E501
    )  # fmt: skip
    by_key = {item.get("key"): item for item in shown}
    assert shown[0] == {"kind": "heading", "label": "Anamnese"}
    assert by_key["cintura"]["value_display"] == "88,5 cm"
    assert by_key["regioes"]["value_display"] == "Lombar, Joelho"
    assert by_key["dor"]["value_display"] == "7 de 10"
    assert by_key["alergias"]["value_display"] == "Sim"
    assert by_key["retorno"]["value_display"] == "20/12/2026"
    assert by_key["historia"]["answered"] is False


@pytest.fixture
def template(clinic_a):
    template = ClinicalTemplate.objects.create(
        clinic=clinic_a, name="Avaliação de teste", kind="anamnesis", specialty="other"
    )
    new_version(template, EVERY_TYPE)
    return template


def test_an_old_encounters_answers_render_after_the_template_changes(template):
    v1 = template.versions.get()
    answers = {"queixa": "Dor", "lado": "Direito", "dor": 6}  # as an encounter stored them
    changed = [f for f in EVERY_TYPE if f.get("key") != "lado"]
    changed[1] = {**changed[1], "label": "Motivo da consulta"}
    changed.append({"type": "number", "key": "peso", "label": "Peso", "unit": "kg"})
    v2 = new_version(template, changed)

    assert v2.number == 2
    v1.refresh_from_db()
    assert v1.fields == EVERY_TYPE  # the version in use did not change
    old = {i.get("key"): i for i in render_answers(v1, answers)}
    assert old["queixa"]["label"] == "Queixa"
    assert old["lado"]["value_display"] == "Direito"
    # Rendered with the new version, the answer of the removed field is still shown.
    new = render_answers(v2, answers)
    assert new[-1]["key"] == "lado" and new[-1]["value_display"] == "Direito"


def test_saving_the_same_fields_writes_no_version(template):
    assert new_version(template, EVERY_TYPE).number == 1
    assert template.versions.count() == 1


def test_an_invalid_version_is_refused_and_nothing_is_written(template):
    with pytest.raises(ValidationError):
        new_version(template, [{"type": "text", "key": "x", "label": "X"}] * 2)
    assert template.versions.count() == 1


# --- Default templates -----------------------------------------------------------------------
@pytest.mark.parametrize("default", DEFAULT_TEMPLATES, ids=lambda t: t["name"])
def test_every_default_template_is_valid(default):
    assert validate_schema(default["fields"]) == []
    assert build_form(default["fields"]).fields


def test_the_defaults_cover_every_specialty():
    covered = {(t["specialty"], t["kind"]) for t in DEFAULT_TEMPLATES}
    for specialty in ("general", "physiotherapy", "psychology", "nutrition", "integrative"):
        assert {(specialty, "anamnesis"), (specialty, "evolution")} <= covered


def test_a_new_clinic_gets_the_default_templates(db):
    clinic = ClinicFactory()
    names = set(ClinicalTemplate.objects.filter(clinic=clinic).values_list("name", flat=True))
    assert names == {t["name"] for t in DEFAULT_TEMPLATES}
    assert ClinicalTemplateVersion.objects.filter(template__clinic=clinic, number=1).count() == 10


def test_installing_again_adds_nothing_and_keeps_edits(db, django_assert_max_num_queries):
    clinic = ClinicFactory()
    physio = ClinicalTemplate.objects.get(clinic=clinic, name="Evolução — Fisioterapia")
    new_version(physio, [{"type": "long_text", "key": "evolucao", "label": "Evolução"}])
    with django_assert_max_num_queries(3):
        assert install_default_templates(clinic) == 0
    assert physio.versions.count() == 2


# --- Admin ------------------------------------------------------------------------------------
def _inline_management(template):
    """The versions inline's management form, as the page posts it."""
    versions = list(template.versions.order_by("-number"))
    data = {
        "versions-TOTAL_FORMS": str(len(versions)),
        "versions-INITIAL_FORMS": str(len(versions)),
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    for i, version in enumerate(versions):
        data[f"versions-{i}-id"] = str(version.pk)
        data[f"versions-{i}-template"] = str(template.pk)
    return data


def test_a_professional_edits_a_template_and_a_new_version_is_written(
    client_for, professional_a, clinic_a
):
    template = ClinicalTemplate.objects.get(clinic=clinic_a, name="Evolução — Nutrição")
    url = reverse("admin:records_clinicaltemplate_change", args=[template.pk])
    client = client_for(professional_a)
    page = client.get(url)
    assert page.status_code == 200
    assert "circunferencia_cintura" in page.content.decode()
    response = client.post(
        url,
        {
            "name": template.name,
            "kind": "evolution",
            "specialty": "nutrition",
            "is_active": "on",
            "fields_json": '[{"type": "number", "key": "peso", "label": "Peso", "unit": "kg"}]',
            **_inline_management(template),
        },
    )
    assert response.status_code == 302
    assert list(template.versions.values_list("number", flat=True)) == [2, 1]


def test_bad_json_is_refused_with_the_schema_messages(client_for, professional_a, clinic_a):
    template = ClinicalTemplate.objects.get(clinic=clinic_a, name="Evolução — Nutrição")
    url = reverse("admin:records_clinicaltemplate_change", args=[template.pk])
    response = client_for(professional_a).post(
        url,
        {
            "name": template.name,
            "kind": "evolution",
            "specialty": "nutrition",
            "fields_json": '[{"type": "choice", "key": "x", "label": "X", "choices": []}]',
            **_inline_management(template),
        },
    )
    assert response.status_code == 200
    assert "ao menos uma opção" in response.content.decode()
    assert template.versions.count() == 1


def test_the_template_list_has_a_constant_number_of_queries(
    client_for, professional_a, django_assert_max_num_queries
):
    client = client_for(professional_a)
    client.get(reverse("admin:records_clinicaltemplate_changelist"))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:records_clinicaltemplate_changelist"))
    assert response.status_code == 200
    assert "Anamnese — Psicologia" in response.content.decode()


def test_the_receptionist_cannot_open_templates(client_for, receptionist_a):
    response = client_for(receptionist_a).get(reverse("admin:records_clinicaltemplate_changelist"))
    assert response.status_code == 403


def test_dates_and_numbers_in_answers_are_plain_json():
    form = build_form(EVERY_TYPE, data={"queixa": "x", "cintura": "90", "retorno": "2026-01-02"})
    assert form.is_valid()
    assert isinstance(form.cleaned_data["cintura"], Decimal)
    assert isinstance(form.cleaned_data["retorno"], date)
    assert form.answers()["cintura"] == "90"


def test_templates_to_choose_from_are_the_clinics_active_ones(clinic_a, clinic_b):
    from clinic.records.template_services import templates_available

    ClinicalTemplate.objects.filter(clinic=clinic_a, name="Sessão — Acupuntura").update(
        is_active=False
    )
    found = list(templates_available(clinic_a, specialty="integrative"))
    assert [t.name for t in found] == ["Avaliação — Acupuntura"]
    assert found[0].latest_number == 1
    assert len(templates_available(clinic_a)) == 9
