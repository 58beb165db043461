"""The CRM at scale: a segment's live count over 200,000 patients, and enqueuing a
50,000-recipient campaign step.

Data: one clinic (America/Sao_Paulo) with 200,000 patients, each with one attended
appointment 1–400 days ago, a birth date, and a WhatsApp marketing decision (85 % granted,
5 % granted then revoked, 10 % never asked). Generated in PostgreSQL once and reused.

Measured, beside in the same run a textbook way and a floor:

1. ``crm.selectors.segment_count`` of three segments (everyone with consent; the
   reactivation segment "no attended visit for 180 days"; "30–50 years old, birthday in
   March"), ``BENCH_CRM_RUNS`` times each (default 15): p50 and p95 in ms. Textbook: the
   same count with a JOIN on granted consents and DISTINCT (wrong when a consent was
   revoked later, and slower). Floor: the selector's SQL run by hand (psycopg, no ORM).
2. One campaign step to 50,000 recipients (holdout 0): ``campaign_run_batch`` in batches of
   2,000 until done — messages recorded per second and the statements run (they must grow
   with the batches, not with the messages). Floor: the same 50,000 rows inserted by hand
   (``INSERT … VALUES``, 500 a statement). Delivery is not measured (no worker; the
   deliveries are enqueued on Redis, then emptied).

Targets (issue 23): segment count p95 < 500 ms over 200,000 patients; ≥ 3,000 messages/s
enqueued, queries O(batches).
Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/cuidar_bench_crm,
created if missing) and Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/36). DEBUG off.
Run: ``python bench/crm.py``; prints a JSON object.
"""

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Before the environment below: bench.scheduling sets its own on import.
from bench._production import bench_environment, database_create  # noqa: E402
from bench.scheduling import insert_select  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_crm"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/36")
os.environ["BENCH_REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/37")
os.environ.update(bench_environment(DATABASE_URL, BROKER_URL))

PATIENTS = 200_000
RECIPIENTS = 50_000
BATCH = 2_000
RUNS = int(os.environ.get("BENCH_CRM_RUNS", "15"))
CNPJ = "88888888000123"
MARK = "bench-crm"
# A Monday 10:00 in São Paulo: no quiet hours.
MONDAY_10H = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: One attended appointment per patient, 1–400 days ago, 15 minutes each.
START = "date_trunc('day', now()) - (n / 600 + 1) * interval '15 minutes'"
END = "date_trunc('day', now()) - (n / 600) * interval '15 minutes'"


def generate():
    from django.db import connection, transaction

    from clinic.models import Clinic, Consent, Patient, Professional
    from scheduling.models import Appointment, Service

    clinic, _ = Clinic.objects.get_or_create(
        cnpj=CNPJ, defaults={"name": "Clínica CRM", "time_zone": "America/Sao_Paulo"}
    )
    if Patient.objects.filter(clinic=clinic).exists():
        return clinic
    log(f"generating {PATIENTS:,} patients (once) …")
    service = Service.objects.create(clinic=clinic, name="Consulta", duration_minutes=15)
    professionals = Professional.objects.bulk_create(
        Professional(clinic=clinic, full_name=f"Profissional {n:03d}") for n in range(600)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        insert_select(
            cursor,
            Patient,
            {
                "clinic_id": "%(clinic)s",
                "full_name": "'Paciente ' || n",
                "search_name": "'paciente ' || n",
                "phone": "'+55119' || lpad(n::text, 8, '0')",
                "preferred_channel": "'whatsapp'",
                "checkin_token": "md5(random()::text || n)",
                "birth_date": "date '1950-01-01' + (n %% 20000)",
                "lead_source": f"CASE WHEN n <= {RECIPIENTS} THEN '{MARK}-50k' ELSE '{MARK}' END",
            },
            "FROM generate_series(1, %(count)s) AS n ORDER BY n",
            {"clinic": clinic.pk, "count": PATIENTS},
        )
        common = {
            "clinic_id": "%(clinic)s",
            "patient_id": "p.id",
            "channel": "'whatsapp'",
            "purpose": "'marketing'",
            "legal_basis": "'consent'",
            "source": "'reception'",
        }
        where = "FROM clinic_patient p WHERE p.clinic_id = %(clinic)s"
        insert_select(
            cursor,
            Consent,
            {**common, "status": "'granted'", "recorded_at": "now() - interval '1 year'"},
            f"{where} AND (p.id %% 20 < 18 OR p.lead_source = '{MARK}-50k')",
            {"clinic": clinic.pk},
        )
        insert_select(
            cursor,
            Consent,
            {**common, "status": "'revoked'", "recorded_at": "now() - interval '1 month'"},
            f"{where} AND p.id %% 20 = 17 AND p.lead_source <> '{MARK}-50k'",
            {"clinic": clinic.pk},
        )
        # One attended appointment per patient, 1–400 days ago; 15-minute slots, so that no
        # professional has two at once (the exclusion constraint).
        insert_select(
            cursor,
            Appointment,
            {
                "clinic_id": "%(clinic)s",
                "service_id": "%(service)s",
                "professional_id": "(%(professionals)s::bigint[])[(n %% 600) + 1]",
                "patient_id": "p.id",
                "start": START,
                "end": END,
                "occupied_start": START,
                "occupied_end": END,
                "status": "'completed'",
                "price": "150",
                "created_at": "now() - interval '500 days'",
            },
            "FROM (SELECT id, row_number() OVER (ORDER BY id) * 97 AS n FROM clinic_patient "
            "WHERE clinic_id = %(clinic)s) AS p",
            {
                "clinic": clinic.pk,
                "service": service.pk,
                "professionals": [p.pk for p in professionals],
            },
        )
        cursor.execute("ANALYZE")
    return clinic


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def measure_segments(clinic) -> dict:
    from django.db import connection

    from clinic.models import Patient
    from crm import selectors
    from crm.models import Segment

    segments = {
        "everyone_with_consent": {},
        "inactive_180_days": {"inactive_days": 180},
        "age_30_50_born_in_march": {"age_min": 30, "age_max": 50, "birthday_month": 3},
    }
    results = {}
    for name, filters in segments.items():
        segment, _ = Segment.objects.get_or_create(
            clinic=clinic, name=f"bench {name}", defaults={"filters": filters}
        )
        times, count = [], None
        for _ in range(RUNS):
            start = time.perf_counter()
            count = selectors.segment_count(segment=segment)
            times.append((time.perf_counter() - start) * 1000)
        query = selectors.segment_queryset(segment=segment).values("pk").query
        sql, params = query.sql_with_params()
        floor = []
        for _ in range(RUNS):
            start = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM ({sql}) AS s", params)
                cursor.fetchone()
            floor.append((time.perf_counter() - start) * 1000)
        results[name] = {
            "count": count,
            "selector_ms": {
                "p50": round(statistics.median(times), 1),
                "p95": round(percentile(times, 0.95), 1),
            },
            "floor_sql_ms": {
                "p50": round(statistics.median(floor), 1),
                "p95": round(percentile(floor, 0.95), 1),
            },
        }
    # Textbook: a JOIN on granted consents, DISTINCT (counts revoked ones too: wrong).
    textbook = []
    for _ in range(RUNS):
        start = time.perf_counter()
        wrong = (
            Patient.objects.filter(
                clinic=clinic,
                consents__channel="whatsapp",
                consents__purpose="marketing",
                consents__status="granted",
            )
            .exclude(phone="")
            .distinct()
            .count()
        )
        textbook.append((time.perf_counter() - start) * 1000)
    results["everyone_with_consent"]["textbook_join_distinct_ms"] = {
        "p50": round(statistics.median(textbook), 1),
        "p95": round(percentile(textbook, 0.95), 1),
        "count_it_gets_wrong": wrong,
    }
    return results


def measure_campaign(clinic) -> dict:
    from django.db import connection, transaction

    from clinic.messaging.models import OutboundMessage
    from crm import services
    from crm.models import Campaign, Segment

    # What an interrupted run left (its messages would hold everyone under the cap).
    OutboundMessage.objects.filter(clinic=clinic).delete()
    Campaign.objects.filter(clinic=clinic).delete()
    segment, _ = Segment.objects.get_or_create(
        clinic=clinic, name="bench 50k", defaults={"filters": {"sources": [f"{MARK}-50k"]}}
    )
    conf = services.marketing_settings(clinic)
    conf.technical_director_name, conf.technical_director_crm = "Dra. Bench", "CRM/SP 1"
    conf.save()
    campaign = Campaign.objects.create(
        clinic=clinic,
        name="bench",
        kind="retention",
        segment=segment,
        text="Novidade. Responsável técnico: Dra. Bench — CRM/SP 1",
        holdout_percent=0,
    )
    start = time.perf_counter()
    recipients = services.campaign_start(campaign=campaign, now=MONDAY_10H)
    start_seconds = time.perf_counter() - start
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    start = time.perf_counter()
    batches = 0
    with connection.execute_wrapper(count):
        while services.campaign_run_batch(campaign_id=campaign.pk, limit=BATCH, now=MONDAY_10H):
            batches += 1
    seconds = time.perf_counter() - start
    sent = OutboundMessage.objects.filter(
        idempotency_key__startswith=f"campaign:{campaign.pk}:"
    ).count()
    # Floor: the same rows by hand.
    rows = list(
        OutboundMessage.objects.filter(
            idempotency_key__startswith=f"campaign:{campaign.pk}:"
        ).values_list("patient_id", "body")[:RECIPIENTS]
    )
    OutboundMessage.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:").delete()
    columns = ", ".join(
        f'"{name}"'
        for name in (
            "clinic_id", "patient_id", "template", "purpose", "idempotency_key", "status",
            "body", "only_channel", "channel", "to_address", "subject", "template_variables",
            "meta_template_name", "meta_language", "provider", "provider_message_id",
            "attempts", "attempt_count", "in_flight_channel", "in_flight_provider", "error",
            "created_at",
        )
    )  # fmt: skip
    start = time.perf_counter()
    for offset in range(0, len(rows), BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            chunk = rows[offset : offset + BATCH]
            for part in range(0, len(chunk), 500):
                piece = chunk[part : part + 500]
                values = []
                for patient_id, body in piece:
                    values += [
                        clinic.pk,
                        patient_id,
                        "promocao",
                        "marketing",
                        f"floor:{campaign.pk}:{patient_id}",
                        "queued",
                        body,
                        "",
                        "",
                        "",
                        "",
                        "[]",
                        "",
                        "",
                        "",
                        "",
                        "[]",
                        0,
                        "",
                        "",
                        "",
                    ]
                placeholders = ", ".join(["(" + ", ".join(["%s"] * 21) + ", now())"] * len(piece))
                cursor.execute(
                    f"INSERT INTO clinic_outboundmessage ({columns}) VALUES {placeholders}", values
                )
    floor_seconds = time.perf_counter() - start
    OutboundMessage.objects.filter(idempotency_key__startswith=f"floor:{campaign.pk}:").delete()
    campaign.delete()
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    return {
        "recipients": recipients,
        "start_seconds": round(start_seconds, 2),
        "messages": sent,
        "batches": batches,
        "seconds": round(seconds, 2),
        "messages_per_second": round(sent / seconds),
        "statements": len(statements),
        "statements_per_batch": round(len(statements) / max(batches, 1), 1),
        "floor_insert_messages_per_second": round(len(rows) / floor_seconds),
    }


def main():
    database_create(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    clinic = generate()
    result = {
        "data": {"patients": PATIENTS, "recipients": RECIPIENTS, "runs": RUNS, "debug": False},
        "segment_count": measure_segments(clinic),
        "campaign_step": measure_campaign(clinic),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
