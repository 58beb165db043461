"""The clinical record at scale (issue 20): a patient followed for years.

Data (PostgreSQL, ``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/cuidar_bench_rc_records, created and migrated if missing):
one clinic, one doctor, a patient with 300 signed encounters and one with 1,000, each
encounter with six signed entries (complaint, examination, vitals, scales, CID-10
diagnosis, plan), every entry a link of the patient's chain (written in bulk: the same rows
the services write, without their seconds per encounter on a loaded machine).

Measured, through Django's test client (the whole request: middleware, access check, audit
row, template), the doctor signed in:

1. The patient's clinical page and the encounter page: queries per request (must not grow
   with the number of encounters) and p50/p95 server time over ``RUNS`` requests; targets
   p95 < 150 ms at 300 encounters and < 400 ms at 1,000.
2. The textbook way, same run: the encounters listed with their entries read per encounter
   (``encounter.entries.all()`` in the loop: N+1 queries), as a naive page would.
3. The floor, same run: one SQL statement reading the encounters' list.
4. ``chain_verify`` over every signed entry: time; then over a synthetic chain of
   ``SYNTHETIC`` entries inserted in bulk, extrapolated linearly to 1,000,000 entries (one
   ordered pass, constant memory: time grows with the row count).

Run: ``python bench/records.py``; prints a JSON object.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._production import bench_environment, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_rc_records"
)
os.environ.update(
    bench_environment(DATABASE_URL, os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11"))
)

RUNS = int(os.environ.get("BENCH_RUNS", 40))
SIZES = (300, 1000)
TARGETS_MS = {300: 150, 1000: 400}
SYNTHETIC = int(os.environ.get("BENCH_SYNTHETIC", 100_000))


def _percentiles(samples):
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 1),
    }


def _setup():
    import datetime

    from django.contrib.auth import get_user_model

    from clinic import services as clinic_services
    from clinic.choices import MembershipRole
    from clinic.models import Clinic, Membership, Patient, Professional
    from clinic.records.models import Cid10Code, Encounter

    clinic, _ = Clinic.objects.get_or_create(cnpj="11222333000181", defaults={"name": "Bench"})
    user, _ = get_user_model().objects.get_or_create(
        username="bench_doctor", defaults={"is_staff": True}
    )
    if not Membership.objects.filter(user=user, clinic=clinic).exists():
        clinic_services.membership_save(
            membership=Membership(user=user, clinic=clinic, role=MembershipRole.PROFESSIONAL)
        )
    doctor, _ = Professional.objects.get_or_create(
        clinic=clinic,
        user=user,
        defaults={
            "full_name": "Dra. Bench",
            "council": "CRM",
            "registration": "1",
            "council_state": "SP",
        },
    )
    cid = Cid10Code.objects.get(compact="M545")
    patients = {}
    for size in SIZES:
        patient, _ = Patient.objects.get_or_create(
            clinic=clinic,
            full_name=f"Paciente {size} atendimentos",
            defaults={
                "birth_date": datetime.date(1970, 1, 1), "sex": "female", "mother_name": "Mãe",
                "birthplace_city": "São Paulo", "birthplace_state": "SP",
                "postal_code": "01310-100", "street": "Av. Paulista", "number": "1",
                "district": "Bela Vista", "city": "São Paulo", "state": "SP",
            },
        )  # fmt: skip
        have = Encounter.objects.filter(patient=patient).count()
        if have < size:
            _bulk_encounters(clinic, doctor, user, patient, cid, size - have)
        patients[size] = patient
    return clinic, user, doctor, patients


def _bulk_encounters(clinic, doctor, user, patient, cid, count):
    """``count`` signed encounters of six entries each, written in bulk (the services take
    seconds per encounter on a loaded machine; the rows and links are the same): encounters
    inserted as drafts, their entries signed and chained, then the encounters locked."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from clinic.records import chain
    from clinic.records.models import Encounter, EncounterStatus, Entry

    now = timezone.now()
    encounters = Encounter.objects.bulk_create(
        Encounter(
            clinic=clinic,
            patient=patient,
            professional=doctor,
            created_by=user,
            service_name="Consulta clínica",
            started_at=now - timedelta(days=7 * (count - n)),
        )
        for n in range(count)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('records_entry', 'id')) "
            "FROM generate_series(1, %s)",
            [count * 6],
        )
        ids = iter(row[0] for row in cursor.fetchall())
    last = Entry.objects.filter(patient=patient, chain_seq__isnull=False).order_by("-chain_seq")
    head = last.first()
    prev, seq = (head.entry_hash, head.chain_seq) if head else ("", 0)
    rows = []
    for n, encounter in enumerate(encounters):
        for kind, content in (
            ("chief_complaint", {"text": f"Retorno {n}: dor lombar"}),
            ("physical_exam", {"text": "Lasègue negativo"}),
            ("vitals", {"systolic": 120 + n % 15, "diastolic": 80, "heart_rate": 70 + n % 20}),
            ("scales", {"pain": n % 11, "sleep_quality": (n + 3) % 11, "mood": 7}),
            ("diagnosis", {"items": [{"code": cid.code, "description": cid.description,
                                      "principal": True, "certainty": "definitive"}]}),
            ("plan", {"text": "Fisioterapia"}),
        ):  # fmt: skip
            seq += 1
            entry = Entry(
                pk=next(ids), clinic=clinic, encounter=encounter, patient=patient, kind=kind,
                content=content, status="finalized", author=user, author_name="Dra. Bench",
                council="CRM", council_number="1", council_state="SP",
                created_at=encounter.started_at, updated_at=encounter.started_at,
                finalized_at=encounter.started_at, chain_seq=seq, prev_hash=prev,
            )  # fmt: skip
            entry.entry_hash = chain.link_hash(prev, chain.entry_values(entry))
            prev = entry.entry_hash
            rows.append(entry)
    Entry.objects.bulk_create(rows, batch_size=5000)
    Encounter.objects.filter(pk__in=[e.pk for e in encounters]).update(
        status=EncounterStatus.FINALIZED, finalized_at=now
    )


def _synthetic_chain(clinic, doctor, user, count):
    """``count`` signed entries of one synthetic patient, inserted in bulk with their links
    (ids taken from the sequence first: the id is part of a link)."""
    from django.db import connection
    from django.utils import timezone

    from clinic.models import Patient
    from clinic.records import chain
    from clinic.records.models import Encounter, Entry

    patient, created = Patient.objects.get_or_create(clinic=clinic, full_name="Sintético")
    if not created and Entry.objects.filter(patient=patient).count() >= count:
        return patient
    encounter = Encounter.objects.create(
        clinic=clinic, patient=patient, professional=doctor, created_by=user
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('records_entry', 'id')) "
            "FROM generate_series(1, %s)",
            [count],
        )
        ids = [row[0] for row in cursor.fetchall()]
    now, prev, rows = timezone.now(), "", []
    for seq, pk in enumerate(ids, start=1):
        entry = Entry(
            pk=pk, clinic=clinic, encounter=encounter, patient=patient, kind="evolution",
            content={"text": f"Evolução {seq}"}, status="finalized", author=user,
            author_name="Dra. Bench", council="CRM", council_number="1", council_state="SP",
            created_at=now, updated_at=now, finalized_at=now, chain_seq=seq, prev_hash=prev,
        )  # fmt: skip
        entry.entry_hash = chain.link_hash(prev, chain.entry_values(entry))
        prev = entry.entry_hash
        rows.append(entry)
    Entry.objects.bulk_create(rows, batch_size=5000)
    return patient


def main() -> dict:
    database_create(DATABASE_URL)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from clinic.records.chain import chain_verify
    from clinic.records.models import Encounter, Entry

    call_command("migrate", verbosity=0)
    settings.ALLOWED_HOSTS = ["*"]
    settings.CUIDAR_MFA_REQUIRED = False
    settings.CUIDAR_REAUTH_REQUIRED = False
    # No collectstatic here: plain static storage (the manifest only renames URLs).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    clinic, user, doctor, patients = _setup()
    client = Client()
    client.force_login(user)

    def timed(url):
        samples, queries = [], []
        client.get(url)  # warm
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                response = client.get(url)
                samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries.append(len(captured))
        return {**_percentiles(samples), "queries": max(queries)}

    def textbook(patient):
        def page():
            return [
                (e.started_at, e.professional.full_name, [x.content for x in e.entries.all()])
                for e in Encounter.objects.filter(patient=patient)
            ]

        return _time(page)

    def floor(patient):
        def page():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT e.id, e.started_at, p.full_name, e.service_name, e.status "
                    "FROM records_encounter e JOIN clinic_professional p "
                    "ON p.id = e.professional_id WHERE e.patient_id = %s "
                    "ORDER BY e.started_at DESC",
                    [patient.pk],
                )
                return cursor.fetchall()

        return _time(page)

    def _time(fn):
        fn()
        samples = []
        for _ in range(RUNS):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
        return _percentiles(samples)

    pages = {}
    for size, patient in patients.items():
        last = Encounter.objects.filter(patient=patient).order_by("-started_at").first()
        pages[size] = {
            "clinical_page": timed(reverse("admin:records_encounter_patient", args=[patient.pk])),
            "encounter_page": timed(reverse("admin:records_encounter_record", args=[last.pk])),
            "textbook_list_with_entries": textbook(patient),
            "floor_list_sql": floor(patient),
            "target_p95_ms": TARGETS_MS[size],
        }
        pages[size]["met"] = all(
            pages[size][p]["p95_ms"] < TARGETS_MS[size] for p in ("clinical_page", "encounter_page")
        )

    entries = Entry.objects.filter(chain_seq__isnull=False).count()
    start = time.perf_counter()
    broken = chain_verify()
    verify_all_s = time.perf_counter() - start
    synthetic = _synthetic_chain(clinic, doctor, user, SYNTHETIC)
    start = time.perf_counter()
    chain_verify(patient_ids=[synthetic.pk])
    synthetic_s = time.perf_counter() - start
    return {
        "scenario": "records",
        "runs": RUNS,
        "pages": pages,
        "records_verify": {
            "signed_entries": entries,
            "seconds_all_chains": round(verify_all_s, 2),
            "broken": len(broken),
            "synthetic_entries": SYNTHETIC,
            "seconds_synthetic": round(synthetic_s, 2),
            "extrapolated_seconds_1M": round(synthetic_s * 1_000_000 / SYNTHETIC, 1),
        },
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), ensure_ascii=False, indent=2))
