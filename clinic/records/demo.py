"""Demo data of the clinical record (``manage.py seed_demo``, ``make run``): the demo
professional (sign-in ``profissional``) has followed some patients for months — signed
encounters with complaints, examination, vitals, wellness scales, CID-10 diagnoses and
plans, one corrected — and has one draft from yesterday waiting for her signature."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from clinic.models import Patient, Professional

from . import services
from .models import Cid10Code, Encounter, EntryKind

K = EntryKind

VISITS = [
    ("Dor lombar há 2 semanas após carregar peso", "M54.5", 7, 4, 5),
    ("Retorno: dor lombar melhorando com fisioterapia", "M54.5", 5, 5, 6),
    ("Retorno: dor leve ao fim do dia", "M54.5", 3, 7, 7),
    ("Retorno: sem dor, dorme bem", "M54.5", 1, 8, 8),
]


def seed_demo(*, clinics, rng, stdout) -> None:
    clinic = clinics[0]
    professional = (
        Professional.objects.for_clinic(clinic).filter(user__isnull=False).order_by("pk").first()
    )
    if professional is None or Encounter.objects.for_clinic(clinic).exists():
        return
    if not Cid10Code.objects.filter(compact="M545").exists():
        return  # the CID-10 table is loaded by the migrations
    patients = list(Patient.objects.for_clinic(clinic).order_by("pk")[1:6])
    now = timezone.now()
    user = professional.user
    signed = 0
    for index, patient in enumerate(patients):
        _complete_registration(patient, rng)
        for visit, (complaint, code, pain, sleep, mood) in enumerate(VISITS):
            started = now - timedelta(days=28 * (len(VISITS) - visit) + index, hours=3)
            encounter = services.open_encounter(
                clinic=clinic,
                patient=patient,
                professional=professional,
                by=user,
                service_name="Consulta clínica",
            )
            Encounter.objects.filter(pk=encounter.pk).update(started_at=started)
            encounter.refresh_from_db()
            cid = Cid10Code.objects.get(compact=code.replace(".", ""))
            for kind, content in (
                (K.CHIEF_COMPLAINT, {"text": complaint}),
                (K.PHYSICAL_EXAM, {"text": "Lasègue negativo; dor à palpação paravertebral."}),
                (
                    K.VITALS,
                    {
                        "systolic": rng.randint(112, 138),
                        "diastolic": rng.randint(70, 88),
                        "heart_rate": rng.randint(62, 90),
                        "weight": 70 + index * 3 - visit,
                        "height": 165 + index,
                    },
                ),
                (
                    K.SCALES,
                    {"pain": pain, "sleep_quality": sleep, "mood": mood, "stress": 9 - mood},
                ),
                (
                    K.DIAGNOSIS,
                    {
                        "items": [
                            {
                                "code": cid.code,
                                "description": cid.description,
                                "principal": True,
                                "certainty": "definitive" if visit else "hypothesis",
                            }
                        ]
                    },
                ),
                (
                    K.PLAN,
                    {"text": "Fisioterapia 2x/semana; alongamentos diários; retorno em 4 semanas."},
                ),
            ):
                services.entry_save_draft(encounter=encounter, kind=kind, content=content, by=user)
            if index == 0 and visit == len(VISITS) - 1:
                Encounter.objects.filter(pk=encounter.pk).update(
                    started_at=now - timedelta(hours=26)
                )
                continue  # a draft left unsigned: it shows among her pending entries
            services.encounter_finalize(encounter=encounter, by=user)
            signed += 1
    stdout.write(f"Clinical record: {signed} signed encounters of {len(patients)} patients.")


def _complete_registration(patient, rng) -> None:
    """What CFM 1.638 asks of the identification (demo values where missing)."""
    defaults = {
        "postal_code": "04101-000",
        "street": "Rua Domingos de Morais",
        "district": "Vila Mariana",
        "number": str(rng.randint(10, 2000)),
        "city": "São Paulo",
        "state": "SP",
        "sex": "female",
        "mother_name": "Maria Aparecida da Silva",
        "birthplace_city": "São Paulo",
        "birthplace_state": "SP",
    }
    changed = []
    for name, value in defaults.items():
        if not getattr(patient, name):
            setattr(patient, name, value)
            changed.append(name)
    if not patient.birth_date:
        patient.birth_date = timezone.localdate() - timedelta(days=365 * rng.randint(25, 70))
        changed.append("birth_date")
    if changed:
        patient.save()
