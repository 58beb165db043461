"""Availability search and booking on a large agenda.

Data: one clinic (America/Sao_Paulo) with 50 professionals who work Monday to Friday
08:00–12:00 and 13:00–18:00, and about 1,000,000 appointments of 15 minutes over two years
around the day of the run (from a year before it to a year after): about three quarters of
the 15-minute cells of their hours are taken by an occupying appointment, a tenth hold a
no-show, and a fifth also hold a cancelled one (rows that stay in the table but free their
time). Every professional has their own patients, so neither the professional nor the
patient exclusion constraint is ever violated. The data is generated inside PostgreSQL
(INSERT … SELECT over generate_series) once and reused.

Measured:

1. ``slot_list_available`` for one professional over 14 days: p50, p95 and max over 200
   searches starting on random days of the populated range, ``now`` the day before.
   Target (issue: the agenda's availability engine): p95 ≤ 20 ms.
2. The same for "any professional" (all 50) over 7 days. Target: p95 ≤ 150 ms.
3. Booking: 8 concurrent clients (processes, each with its own database connection) call
   ``scheduling.services.appointment_book`` on free slots found by (2); each slot is handed
   to two clients one after the other, so that half of the attempts race for a slot that is
   being taken: reports bookings/s, attempts/s, latency, successes and ``SlotUnavailable``,
   and checks that no slot was booked twice. The bookings are deleted afterwards, so the
   next run starts from the same agenda.

Needs PostgreSQL on this machine (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/cuidar_bench_sched, created if missing). Events of the
bookings go to an in-memory Celery broker: delivery is not what is measured here.
Run: ``make bench`` or ``python bench/scheduling.py``; prints a JSON object.
"""

import itertools
import json
import multiprocessing
import os
import random
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._production import PRODUCTION, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_sched"
)
os.environ.update(
    {
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        **PRODUCTION,  # DEBUG off, as production runs
    }
)

ZONE = "America/Sao_Paulo"
TZ = ZoneInfo(ZONE)
#: The agenda spans a year before and after the day of the run (UTC): searches, bookings and
#: the API benchmark's lists ask about days around it, as users do, and find them populated.
TODAY = datetime.now(ZoneInfo("UTC")).date()
FIRST_DAY = TODAY - timedelta(days=365)
LAST_DAY = TODAY + timedelta(days=365)
#: An agenda generated on another day is reused while it covers this much either side.
REUSE_MARGIN = timedelta(days=330)
PROFESSIONALS = 50
PATIENTS_PER_PROFESSIONAL = 200  # their own patients: no patient is ever in two places
BOOKING_PATIENTS = 20_000  # fresh patients for the booking clients, one per attempt
CLIENTS = 8
RUNS = 200
BOOKED_SLOTS = 600  # distinct free slots offered, each to two clients
CLINIC_CNPJ = "11444777000161"
MARK = "bench-scheduling"  # lead_source of the generated patients, notes of the bookings


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database() -> None:
    database_create(DATABASE_URL)


# --- Data ------------------------------------------------------------------------------------


def insert_select(cursor, model, columns: dict[str, str], tail: str, params: dict) -> int:
    """``INSERT INTO <model> (…) SELECT … <tail>``: ``columns`` maps a column to its SQL;
    every other column gets its field's default (NULL where it may be null), so the
    statement keeps working when the model gains a column with a default."""
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(f'"{field.column}"')
        if field.column in columns:
            values.append(columns[field.column])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.null:
            values.append("NULL")
        else:
            key = f"default_{field.column}"
            params[key] = field.get_db_prep_save(field.get_default(), cursor.db)
            values.append(f"%({key})s")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) SELECT {', '.join(values)} {tail}"
    )
    cursor.execute(sql, params)
    return cursor.rowcount


def generate():
    """The clinic, its professionals, hours and service, its patients and two years of
    appointments — or the ones generated by an earlier run."""
    from django.db import connection, transaction
    from django.db.models import Max, Min

    from clinic.models import Clinic, Patient, Professional
    from scheduling.models import Appointment, Service, WorkingHours

    clinic, _ = Clinic.objects.get_or_create(
        cnpj=CLINIC_CNPJ, defaults={"name": "Clínica Benchmark", "time_zone": ZONE}
    )
    service, _ = Service.objects.get_or_create(
        clinic=clinic,
        name="Retorno",
        defaults={"duration_minutes": 15, "min_notice_minutes": 120, "max_advance_days": 90},
    )
    professionals = list(Professional.objects.filter(clinic=clinic).order_by("pk"))
    expected_cells = (
        PROFESSIONALS
        * 36
        * sum(
            1
            for n in range((LAST_DAY - FIRST_DAY).days + 1)
            if (FIRST_DAY + timedelta(days=n)).weekday() < 5
        )
    )
    span = Appointment.objects.filter(clinic=clinic).aggregate(
        first=Min("start"), last=Max("start")
    )
    covers = (
        span["first"] is not None
        and span["first"].date() <= TODAY - REUSE_MARGIN
        and span["last"].date() >= TODAY + REUSE_MARGIN
    )
    if (
        covers
        and len(professionals) == PROFESSIONALS
        and (Appointment.objects.filter(clinic=clinic).count() > 0.9 * expected_cells)
    ):
        log("reusing the generated agenda")
        return clinic, service
    log("generating the agenda (once; a few minutes) …")
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:  # what a partial run left; the ORM would crawl
            for table in (Appointment._meta.db_table, Patient._meta.db_table):
                cursor.execute(f"DELETE FROM {table} WHERE clinic_id = %s", [clinic.pk])
        WorkingHours.objects.filter(clinic=clinic).delete()
        Professional.objects.filter(clinic=clinic).delete()
        professionals = Professional.objects.bulk_create(
            Professional(clinic=clinic, full_name=f"Profissional {n:02d}", specialty="Clínica")
            for n in range(1, PROFESSIONALS + 1)
        )
        service.professionals.set(professionals)
        WorkingHours.objects.bulk_create(
            WorkingHours(
                clinic=clinic,
                professional=professional,
                weekday=weekday,
                start_time=dtime(start),
                end_time=dtime(end),
            )
            for professional in professionals
            for weekday in range(5)
            for start, end in ((8, 12), (13, 18))
        )
        with connection.cursor() as cursor:
            for kind, count in (
                ("history", PROFESSIONALS * PATIENTS_PER_PROFESSIONAL),
                ("booking", BOOKING_PATIENTS),
            ):
                insert_select(
                    cursor,
                    Patient,
                    {
                        "clinic_id": "%(clinic)s",
                        "full_name": "'Paciente ' || n",
                        "search_name": "'paciente ' || n",
                        "phone": "'+55119' || lpad(n::text, 8, '0')",
                        "checkin_token": "md5(random()::text || n)",
                        "lead_source": "%(mark)s",
                    },
                    "FROM generate_series(%(first)s::int, %(last)s::int) AS n ORDER BY n",
                    {
                        "clinic": clinic.pk,
                        "mark": f"{MARK}-{kind}",
                        "first": 1 if kind == "history" else 10**6,
                        "last": count if kind == "history" else 10**6 + count - 1,
                    },
                )
    history = list(
        Patient.objects.filter(clinic=clinic, lead_source=f"{MARK}-history")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    professional_ids = [p.pk for p in professionals]
    # A quarter at a time, each in its own transaction, to show progress.
    quarters = [FIRST_DAY + timedelta(days=91 * n) for n in range(9)]
    quarters = [q for q in quarters if q <= LAST_DAY] + [LAST_DAY + timedelta(days=1)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for first, following in itertools.pairwise(quarters):
            cells = {
                "professionals": professional_ids,
                "first": first,
                "last": following - timedelta(days=1),
                "zone": ZONE,
            }
            with transaction.atomic():
                cursor.execute("CREATE TEMPORARY TABLE cells ON COMMIT DROP AS " + CELLS_SQL, cells)
                params = {
                    "clinic": clinic.pk,
                    "service": service.pk,
                    "patients": history,
                    "per_professional": PATIENTS_PER_PROFESSIONAL,
                }
                common = {
                    "clinic_id": "%(clinic)s",
                    "service_id": "%(service)s",
                    "professional_id": "professional_id",
                    "patient_id": "(%(patients)s::bigint[])"
                    "[(n - 1) * %(per_professional)s + seq %% %(per_professional)s + 1]",
                    "start": "start",
                    "end": "start + interval '15 minutes'",
                    "occupied_start": "start",
                    "occupied_end": "start + interval '15 minutes'",
                    "price": "150",
                    "created_at": "start - interval '10 days'",
                }
                insert_select(
                    cursor,
                    Appointment,
                    {
                        **common,
                        "status": "CASE WHEN r < 0.55 THEN 'completed' WHEN r < 0.65 "
                        "THEN 'confirmed' WHEN r < 0.75 THEN 'scheduled' ELSE 'no_show' END",
                    },
                    "FROM cells WHERE r < 0.85",
                    dict(params),
                )
                insert_select(
                    cursor,
                    Appointment,
                    {
                        **common,
                        "status": "'cancelled'",
                        "cancelled_at": "start - interval '2 days'",
                        "cancellation_reason": "'imprevisto'",
                    },
                    "FROM cells WHERE r2 < 0.22",
                    dict(params),
                )
            log(f"  {first:%Y-%m} done ({time.monotonic() - started:.0f} s)")
        cursor.execute("ANALYZE")
    log(f"generated in {time.monotonic() - started:.0f} s")
    return clinic, service


# The 15-minute cells of everyone's hours in [first, last]: 16 in the morning from 08:00,
# 20 in the afternoon from 13:00, local time; ``seq`` numbers a professional's cells.
CELLS_SQL = """
SELECT p.id AS professional_id, p.n, (d.day + t.at) AT TIME ZONE %(zone)s AS start,
       ((d.day - DATE '2000-01-01') * 36 + t.c)::bigint AS seq,
       random() AS r, random() AS r2
FROM unnest(%(professionals)s::bigint[]) WITH ORDINALITY AS p(id, n)
CROSS JOIN (
    SELECT day::date AS day FROM generate_series(%(first)s::date, %(last)s::date, '1 day') day
    WHERE extract(isodow FROM day) < 6
) d
CROSS JOIN (
    SELECT c, CASE WHEN c < 16 THEN time '08:00' + c * interval '15 minutes'
                   ELSE time '13:00' + (c - 16) * interval '15 minutes' END AS at
    FROM generate_series(0, 35) c
) t
"""


# --- Availability ----------------------------------------------------------------------------


def stats_ms(seconds: list[float]) -> dict:
    from integrations.health import percentile

    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=TZ)


def measure_search(clinic, service, *, days: int, one_professional: bool, rng) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clinic.models import Professional
    from scheduling.availability import slot_list_available

    professionals = list(Professional.objects.filter(clinic=clinic))
    span = (LAST_DAY - FIRST_DAY).days - days

    def search():
        start = local_midnight(FIRST_DAY + timedelta(days=rng.randrange(span)))
        return slot_list_available(
            clinic=clinic,
            service=service,
            professional=rng.choice(professionals) if one_professional else None,
            start=start,
            end=start + timedelta(days=days),
            now=start - timedelta(days=1),
        )

    for _ in range(10):  # warm-up: connection, caches, plans
        search()
    with CaptureQueriesContext(connection) as queries:
        search()
    seconds, slots = [], 0
    for _ in range(RUNS):
        began = time.perf_counter()
        slots += len(search())
        seconds.append(time.perf_counter() - began)
    return {
        "runs": RUNS,
        **stats_ms(seconds),
        "slots_per_search": round(slots / RUNS),
        "queries_per_search": len(queries),
    }


# --- Booking ---------------------------------------------------------------------------------


def book_client(clinic_id, service_id, patient_ids, work, results, go):
    """One client: its own process and database connection; books what it takes from
    ``work`` (professional, start, patient) until it reads ``None``."""
    from django.db import connection

    from clinic.models import Clinic, Patient, Professional
    from scheduling.exceptions import SlotUnavailable
    from scheduling.models import Service
    from scheduling.services import appointment_book

    clinic = Clinic.objects.get(pk=clinic_id)
    service = Service.objects.get(pk=service_id)
    professionals = {p.pk: p for p in Professional.objects.filter(clinic=clinic)}
    patients = Patient.objects.in_bulk(patient_ids)
    outcome = {"booked": [], "slot_unavailable": 0, "errors": [], "latencies": []}
    go.wait()
    began = time.perf_counter()
    while (item := work.get()) is not None:
        professional_id, start, patient_id = item
        t0 = time.perf_counter()
        try:
            appointment = appointment_book(
                clinic=clinic,
                patient=patients[patient_id],
                professional=professionals[professional_id],
                service=service,
                start=start,
                internal_notes=MARK,
            )
            outcome["booked"].append(appointment.pk)
        except SlotUnavailable:
            outcome["slot_unavailable"] += 1
        except Exception as exc:  # reported, never hidden
            outcome["errors"].append(repr(exc)[:200])
        outcome["latencies"].append(time.perf_counter() - t0)
    outcome["began"], outcome["ended"] = began, time.perf_counter()
    connection.close()
    results.put(outcome)


def measure_booking(clinic, service, rng) -> dict:
    from django.db import connections
    from django.db.models import Count

    from clinic.models import Patient
    from integrations.models import Event
    from scheduling.availability import slot_list_available
    from scheduling.models import Appointment

    # Free slots of a random week, offered to two clients each, one right after the other.
    free = []
    while len(free) < BOOKED_SLOTS:
        start = local_midnight(FIRST_DAY + timedelta(days=rng.randrange(700)))  # in range
        free += slot_list_available(
            clinic=clinic,
            service=service,
            start=start,
            end=start + timedelta(days=7),
            now=start - timedelta(days=1),
        )
    chosen = rng.sample(free, BOOKED_SLOTS)
    patient_ids = list(
        Patient.objects.filter(clinic=clinic, lead_source=f"{MARK}-booking")
        .order_by("pk")
        .values_list("pk", flat=True)[: 2 * BOOKED_SLOTS]
    )
    assert len(patient_ids) == 2 * BOOKED_SLOTS, "not enough booking patients"
    # A fresh patient for every attempt: only the professional can clash.
    attempts = [
        (slot.professional_id, slot.start, patient_ids[2 * n + twice])
        for n, slot in enumerate(chosen)
        for twice in range(2)
    ]

    connections.close_all()  # children must not share the parent's connection
    ctx = multiprocessing.get_context("fork")
    work, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    for item in attempts:
        work.put(item)
    for _ in range(CLIENTS):
        work.put(None)
    clients = [
        ctx.Process(
            target=book_client,
            args=(clinic.pk, service.pk, patient_ids, work, results, go),
        )
        for n in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    time.sleep(2)  # let every client connect and load what it needs
    go.set()
    outcomes = [results.get(timeout=600) for _ in clients]
    for client in clients:
        client.join()

    booked = [pk for o in outcomes for pk in o["booked"]]
    wall = max(o["ended"] for o in outcomes) - min(o["began"] for o in outcomes)
    ours = Appointment.objects.filter(pk__in=booked)
    doubled = (
        ours.values("professional_id", "start").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    result = {
        "clients": CLIENTS,
        "attempts": len(attempts),
        "distinct_slots": BOOKED_SLOTS,
        "booked": len(booked),
        "slot_unavailable": sum(o["slot_unavailable"] for o in outcomes),
        "other_errors": sum(len(o["errors"]) for o in outcomes),
        "first_errors": [e for o in outcomes for e in o["errors"]][:3],
        "double_bookings": doubled,
        "seconds": round(wall, 2),
        "bookings_per_second": round(len(booked) / wall, 1),
        "attempts_per_second": round(len(attempts) / wall, 1),
        **{
            f"attempt_{k}": v
            for k, v in stats_ms([s for o in outcomes for s in o["latencies"]]).items()
        },
    }
    # Leave the agenda as it was for the next run.
    Event.objects.filter(
        clinic=clinic,
        event_type="appointment.booked",
        payload__appointment_id__in=booked,
    ).delete()
    ours.delete()
    return result


def main() -> dict:
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from scheduling.models import Appointment

    call_command("migrate", verbosity=0)
    clinic, service = generate()
    rng = random.Random(7)  # noqa: S311 - sampling search dates, not secrets
    counts = Appointment.objects.filter(clinic=clinic)
    data = {
        "professionals": 50,
        "appointments": counts.count(),
        "occupying": counts.occupying().count(),
        "range": f"{FIRST_DAY} – {LAST_DAY}",
        "postgresql": connection.cursor().connection.info.server_version,
    }
    one = measure_search(clinic, service, days=14, one_professional=True, rng=rng)
    any_ = measure_search(clinic, service, days=7, one_professional=False, rng=rng)
    booking = measure_booking(clinic, service, rng)
    return {
        "data": data,
        "one_professional_14_days": {**one, "target_p95_ms": 20, "met": one["p95_ms"] <= 20},
        "any_of_50_7_days": {**any_, "target_p95_ms": 150, "met": any_["p95_ms"] <= 150},
        "booking": booking,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
