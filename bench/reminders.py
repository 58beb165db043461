"""The eve reminder sweep on 100,000 appointments due tomorrow.

Data: one clinic (America/Sao_Paulo) with 100,000 appointments tomorrow (1,042 professionals,
15-minute appointments around the clock), each for its own patient, who consented to
WhatsApp for service messages. Generated in PostgreSQL once and reused; the appointments
are moved to the day after the run's day every run.

Measured: ``scheduling.reminders.reminders_eve_send`` — the sweep the beat job
``scheduling.reminders_eve`` runs at 18:00 of each clinic's time — from its first query to
the commit of its last batch, with the deliveries enqueued after each batch's commit on
Redis (as in production; no worker takes them: delivery is not measured here). Reports
messages created per second, the CPU each message cost (this process and its PostgreSQL
backend) and the statements the sweep ran, for 10,000 due appointments
(``BENCH_REMINDER_RUNS`` runs, default 3: min / median / max) and for 100,000 (one run; the
count of statements must grow with the batches, not with the rows), each beside, in the same
run, the floor: the same rows inserted by hand (``INSERT … VALUES``, one statement per 500
rows, each batch its own transaction, psycopg directly). The machine is shared: compare the
ratio of the two, measured in the same run, and the CPU per message, more than the rates.

Target (issue 16): at least 3,000 messages created a second, queries O(batches).
Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/cuidar_bench,
created if missing) and Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/13, emptied
after each run). Runs with DEBUG off, as production does.
Run: ``make bench`` or ``python bench/reminders.py [N]``; prints a JSON object.
"""

import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Before the environment below: bench.scheduling sets its own on import.
from bench._production import bench_environment, database_create  # noqa: E402
from bench.scheduling import insert_select  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ.update(bench_environment(DATABASE_URL, BROKER_URL))

ZONE = "America/Sao_Paulo"
TZ = ZoneInfo(ZONE)
APPOINTMENTS = 100_000
SMALL = 10_000
SLOTS_PER_DAY = 96  # 15-minute appointments around the clock
RUNS = int(os.environ.get("BENCH_REMINDER_RUNS", "3"))
CLINIC_CNPJ_PREFIX = "999999"  # + the size: one clinic per size
MARK = "bench-reminders"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database() -> None:
    database_create(DATABASE_URL)


def generate(count: int, tomorrow):
    """The clinic, its professionals, service, patients with their consent, and ``count``
    scheduled appointments on ``tomorrow`` (moved there when an earlier run made them)."""
    from django.db import connection, transaction

    from clinic.models import Clinic, Consent, Patient, Professional
    from scheduling.models import Appointment, Service

    # A clinic per size (consents are append-only: a generated agenda is never deleted);
    # the others are set inactive, so that the sweep does not take them too.
    clinic, _ = Clinic.objects.get_or_create(
        cnpj=f"{CLINIC_CNPJ_PREFIX}{count:08d}",
        defaults={"name": f"Clínica Lembretes {count}", "time_zone": ZONE},
    )
    Clinic.objects.filter(cnpj__startswith=CLINIC_CNPJ_PREFIX).exclude(pk=clinic.pk).update(
        is_active=False
    )
    Clinic.objects.filter(pk=clinic.pk).update(is_active=True)
    service, _ = Service.objects.get_or_create(
        clinic=clinic, name="Consulta", defaults={"duration_minutes": 15}
    )
    midnight = datetime.combine(tomorrow, dtime(0), tzinfo=TZ)
    with transaction.atomic(), connection.cursor() as cursor:
        if not Appointment.objects.filter(clinic=clinic).exists():
            log(f"generating {count:,} appointments (once) …")
            professionals = Professional.objects.bulk_create(
                Professional(clinic=clinic, full_name=f"Profissional {n:04d}")
                for n in range(1, count // SLOTS_PER_DAY + 2)
            )
            service.professionals.set(professionals)
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
                    "lead_source": "%(mark)s",
                },
                "FROM generate_series(1, %(count)s) AS n ORDER BY n",
                {"clinic": clinic.pk, "mark": MARK, "count": count},
            )
            insert_select(
                cursor,
                Consent,
                {
                    "clinic_id": "%(clinic)s",
                    "patient_id": "p.id",
                    "channel": "'whatsapp'",
                    "purpose": "'utility'",
                    "status": "'granted'",
                    "legal_basis": "'health_protection'",
                    "source": "'reception'",
                    "recorded_at": "now() - interval '1 year'",
                },
                "FROM clinic_patient p WHERE p.clinic_id = %(clinic)s",
                {"clinic": clinic.pk},
            )
            patients = list(
                Patient.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True)
            )
            insert_select(
                cursor,
                Appointment,
                {
                    "clinic_id": "%(clinic)s",
                    "service_id": "%(service)s",
                    "professional_id": "(%(professionals)s::bigint[])[n / 96 + 1]",
                    "patient_id": "(%(patients)s::bigint[])[n + 1]",
                    "start": "%(midnight)s + (n %% 96) * interval '15 minutes'",
                    "end": "%(midnight)s + (n %% 96 + 1) * interval '15 minutes'",
                    "occupied_start": "%(midnight)s + (n %% 96) * interval '15 minutes'",
                    "occupied_end": "%(midnight)s + (n %% 96 + 1) * interval '15 minutes'",
                    "status": "'scheduled'",
                    "price": "150",
                    "notes": "%(mark)s",
                },
                "FROM generate_series(0, %(count)s - 1) AS n",
                {
                    "clinic": clinic.pk,
                    "service": service.pk,
                    "professionals": [p.pk for p in professionals],
                    "patients": patients,
                    "midnight": midnight,
                    "count": count,
                    "mark": MARK,
                },
            )
            cursor.execute("ANALYZE")
        else:  # move them to tomorrow (kept in order: slot n of professional n // 96)
            cursor.execute(
                f"""UPDATE {Appointment._meta.db_table} SET
                    start = start + (%(midnight)s - date_trunc('day', start AT TIME ZONE %(zone)s)
                                     AT TIME ZONE %(zone)s),
                    "end" = "end" + (%(midnight)s - date_trunc('day', start AT TIME ZONE %(zone)s)
                                     AT TIME ZONE %(zone)s),
                    occupied_start = occupied_start + (%(midnight)s - date_trunc('day',
                                     start AT TIME ZONE %(zone)s) AT TIME ZONE %(zone)s),
                    occupied_end = occupied_end + (%(midnight)s - date_trunc('day',
                                     start AT TIME ZONE %(zone)s) AT TIME ZONE %(zone)s),
                    status = 'scheduled'
                WHERE clinic_id = %(clinic)s""",
                {"midnight": midnight, "zone": ZONE, "clinic": clinic.pk},
            )
    return clinic


class Counter:
    """Counts the statements sent to the database (cheap: no formatting, unlike
    ``CaptureQueriesContext``)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clear(clinic) -> None:
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM clinic_outboundmessage WHERE clinic_id = %s", [clinic.pk])
    redis.Redis.from_url(BROKER_URL).flushdb()


def sweep(clinic, now) -> dict:
    from django.db import connection

    from clinic.messaging.models import OutboundMessage
    from scheduling.reminders import reminders_eve_send

    clear(clinic)
    counter = Counter()
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    with connection.execute_wrapper(counter):
        cpu = time.process_time(), _cpu_seconds(backend)
        started = time.perf_counter()
        sent = reminders_eve_send(now=now, local_hours=[18])
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu[0], _cpu_seconds(backend) - cpu[1]
    created = OutboundMessage.objects.filter(clinic=clinic, template="lembrete_vespera").count()
    assert sent == created, (sent, created)
    return {
        "messages": sent,
        "seconds": round(seconds, 2),
        "per_second": round(sent / seconds, 1),
        "queries": counter.count,
        # CPU per message moves much less than the rate when others share the machine.
        "cpu_ms_per_message": {
            "python": round(cpu[0] * 1000 / sent, 3),
            "postgresql": round(cpu[1] * 1000 / sent, 3),
        },
    }


def floor(clinic) -> dict:
    """The messages the sweep just created, deleted and inserted again by hand: 500 rows a
    statement, each batch its own transaction (the sweep's batches)."""
    import psycopg

    from clinic.messaging.models import OutboundMessage

    fields = [f for f in OutboundMessage._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(columns)} FROM clinic_outboundmessage WHERE clinic_id = %s "
            "ORDER BY id",
            [clinic.pk],
        ).fetchall()
        conn.execute("DELETE FROM clinic_outboundmessage WHERE clinic_id = %s", [clinic.pk])
        conn.commit()
        json_columns = {i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"}
        rows = [
            tuple(psycopg.types.json.Jsonb(v) if i in json_columns else v for i, v in enumerate(r))
            for r in rows
        ]
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        backend = conn.info.backend_pid
        cpu = time.process_time(), _cpu_seconds(backend)
        started = time.perf_counter()
        for first in range(0, len(rows), 500):
            batch = rows[first : first + 500]
            conn.execute(
                f"INSERT INTO clinic_outboundmessage ({', '.join(columns)}) VALUES "
                + ", ".join([placeholders] * len(batch)),
                [value for row in batch for value in row],
            )
            conn.commit()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu[0], _cpu_seconds(backend) - cpu[1]
    return {
        "messages": len(rows),
        "seconds": round(seconds, 2),
        "per_second": round(len(rows) / seconds, 1),
        "cpu_ms_per_message": {
            "python": round(cpu[0] * 1000 / len(rows), 3),
            "postgresql": round(cpu[1] * 1000 / len(rows), 3),
        },
    }


def summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main(count: int = APPOINTMENTS) -> dict:
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from scheduling.models import Appointment

    call_command("migrate", verbosity=0)
    today = timezone.now().astimezone(TZ).date()
    now = datetime.combine(today, dtime(18), tzinfo=TZ)  # the sweep's hour, today
    clinic = generate(count, today + timedelta(days=1))

    ids = list(
        Appointment.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True)
    )

    def due(n: int) -> None:
        """The first ``n`` appointments scheduled, the others confirmed (the eve reminder
        skips them)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE scheduling_appointment SET status = CASE WHEN id <= %s "
                "THEN 'scheduled' ELSE 'confirmed' END WHERE clinic_id = %s",
                [ids[n - 1], clinic.pk],
            )

    def measured(n: int, runs: int) -> dict:
        due(n)
        results = []
        for run in range(runs):
            log(f"sweep of {n:,} ({run + 1}/{runs}) …")
            result = sweep(clinic, now)
            result["floor"] = floor(clinic)
            log(json.dumps(result))
            results.append(result)
        last = results[-1]
        return {
            "runs": runs,
            "messages": last["messages"],
            "queries": last["queries"],
            "queries_per_batch_of_500": round(last["queries"] / (n / 500), 1),
            "per_second": summary([r["per_second"] for r in results]),
            "cpu_ms_per_message": last["cpu_ms_per_message"],
            "floor_plain_sql_insert": {
                "per_second": summary([r["floor"]["per_second"] for r in results]),
                "cpu_ms_per_message": last["floor"]["cpu_ms_per_message"],
            },
            "share_of_floor": summary(
                [round(r["per_second"] / r["floor"]["per_second"], 3) for r in results]
            ),
        }

    small = measured(min(SMALL, count), RUNS)
    large = measured(count, 1) if count > SMALL else None
    clear(clinic)
    result = {
        "data": {"due_tomorrow": count, "day": str(today + timedelta(days=1)), "debug": False},
        f"sweep_{small['messages']}": small,
    }
    if large:
        result[f"sweep_{count}"] = large
    top = large or small
    return {
        **result,
        "target_per_second": 3000,
        "met": top["per_second"]["median"] >= 3000,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else APPOINTMENTS)))
