"""Personas of the clinical record's core tests: a doctor and a psychologist of clinic A, a doctor
of clinic B, a patient of A with a complete registration, and helpers that write and sign
an encounter."""

import datetime

import pytest

from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import Membership
from clinic.records import services
from clinic.records.models import Cid10Code, EntryKind
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory

K = EntryKind
PASSWORD = "s3nha-forte-123"


def make_professional(clinic, username, *, council="CRM", number="123456", name=None):
    user = UserFactory(username=username)
    clinic_services.membership_save(
        membership=Membership(user=user, clinic=clinic, role=MembershipRole.PROFESSIONAL)
    )
    return ProfessionalFactory(
        clinic=clinic,
        user=user,
        full_name=name or f"Dra. {username.title()}",
        council=council,
        registration=number,
        council_state="SP",
    )


@pytest.fixture
def doctor_a(clinic_a):
    return make_professional(clinic_a, "helena", name="Dra. Helena Martins")


@pytest.fixture
def psychologist_a(clinic_a):
    return make_professional(clinic_a, "paulo", council="CRP", number="06/1234", name="Paulo Psi")


@pytest.fixture
def doctor_b(clinic_b):
    return make_professional(clinic_b, "bento", name="Dr. Bento B")


@pytest.fixture
def record_patient(clinic_a):
    """A patient of clinic A whose registration has what CFM 1.638 asks for."""
    patient = PatientFactory(
        clinic=clinic_a,
        full_name="Joana Prontuário Souza",
        birth_date=datetime.date(1980, 5, 17),
        sex="female",
        postal_code="01310-100",
        street="Av. Paulista",
        number="1000",
        district="Bela Vista",
        city="São Paulo",
        state="SP",
        allergies="Dipirona",
    )
    patient.mother_name = "Ana Souza"
    patient.birthplace_city, patient.birthplace_state = "Campinas", "SP"
    patient.save()
    return patient


@pytest.fixture
def cid_codes(db):
    """Two CID-10 codes (the full table is loaded by a command; tests need only these)."""
    made = []
    for code, description, sex in (
        ("J06.9", "Infecção aguda das vias aéreas superiores não especificada", ""),
        ("M54.5", "Dor lombar baixa", ""),
    ):
        made.append(
            Cid10Code.objects.get_or_create(
                code=code,
                defaults={
                    "compact": code.replace(".", ""),
                    "level": "subcategory",
                    "description": description,
                    "sex_restriction": sex,
                    "search_text": f"{code} {description}".lower(),
                },
            )[0]
        )
    return made


def write_complete(encounter, user, *, evolution="Paciente refere melhora."):
    """Drafts of every section CFM 1.638 requires."""
    for kind, content in (
        (K.CHIEF_COMPLAINT, {"text": "Dor de garganta há 3 dias"}),
        (K.PHYSICAL_EXAM, {"text": "Orofaringe hiperemiada"}),
        (
            K.DIAGNOSIS,
            {"items": [{"code": "J06.9", "principal": True, "certainty": "hypothesis"}]},
        ),
        (K.PLAN, {"text": "Hidratação, retorno em 7 dias"}),
        (K.EVOLUTION, {"text": evolution}),
    ):
        services.entry_save_draft(encounter=encounter, kind=kind, content=content, by=user)


def sign_complete(professional, patient):
    encounter = services.open_encounter(
        clinic=patient.clinic, patient=patient, professional=professional, by=professional.user
    )
    write_complete(encounter, professional.user)
    return services.encounter_finalize(encounter=encounter, by=professional.user)
