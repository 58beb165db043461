"""Outbox throughput and latency.

Publishes events — each in its own transaction, the worst case, with one in-process
subscriber each — and delivers them with ONE Celery worker process (solo pool, acks late,
prefetch 1) on Redis, against PostgreSQL, all on this machine. Two phases:

1. live: N events published as fast as one process can while the worker delivers them;
   reports events/s and the publish-to-delivered latency (p50, p95, max).
2. backlog: N events published with the worker stopped, then drained; reports the worker's
   capacity in deliveries/s (first to last delivery).

Both dispatch modes are measured, each in its own processes: ``coalesce`` (production,
with Redis: commits share drain tasks) and ``per-transaction`` (the embedded default: one
task per committed transaction).

Target (issue #3): at least 500 deliveries/s per worker process and p95 publish-to-delivered
latency under 2 s — met by the coalesce mode. The per-transaction mode is capped by Celery's
per-task overhead (a few ms), so its backlog grows once publishers outrun it; it serves the
single-machine embedded default, where the load is one clinic's.

Needs PostgreSQL and Redis on this machine (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/cuidar_bench, created if missing; Redis db 14).
Run: ``make bench`` or ``python bench/outbox.py [N]``; prints a JSON object.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._production import bench_environment, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ.update(bench_environment(DATABASE_URL, BROKER_URL))


def ensure_database() -> None:
    database_create(DATABASE_URL)


def start_worker():
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
            "--include=bench.outbox_handlers", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "--loglevel=WARNING",
            *os.environ.get("BENCH_WORKER_ARGS", "").split(),
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )  # fmt: skip


def wait_for(clinic_id, event_ids, timeout=600):
    left = None
    from integrations.models import Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = Delivery.objects.filter(event_id__in=event_ids, status="pending").count()
        if left == 0:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{left} deliveries still pending")


def measure(event_ids, *, from_first_delivery=False):
    from integrations.health import percentile
    from integrations.models import Delivery

    rows = list(
        Delivery.objects.filter(event_id__in=event_ids).values_list(
            "status", "event__created_at", "succeeded_at"
        )
    )
    ok = [r for r in rows if r[0] == "succeeded"]
    latencies = [(done - created).total_seconds() for _s, created, done in ok]
    first = min(r[2] for r in ok) if from_first_delivery else min(r[1] for r in rows)
    last = max(r[2] for r in ok)
    return {
        "delivered": len(ok),
        "failed": len(rows) - len(ok),
        "drain_seconds": round((last - first).total_seconds(), 2),
        "deliveries_per_second": round(len(ok) / (last - first).total_seconds(), 1),
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000),
        "latency_p95_ms": round(percentile(latencies, 0.95) * 1000),
        "latency_max_ms": round(max(latencies) * 1000),
    }


def publish(clinic, count):
    from django.db import transaction

    from integrations.events import publish as publish_event

    ids, started = [], time.monotonic()
    for n in range(count):
        with transaction.atomic():
            ids.append(publish_event("patient.created", clinic=clinic, payload={"n": n}).pk)
    return ids, time.monotonic() - started


def publish_floor(clinic, count):
    """The same work by hand, psycopg directly (no Django): per event, in one transaction,
    insert the event, read the clinic's active webhook subscriptions, insert the delivery,
    commit. Returns the ids and the seconds it took."""
    import uuid

    import psycopg
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    ids = []
    with psycopg.connect(DATABASE_URL) as conn:
        started = time.monotonic()
        for n in range(count):
            event_id, now = uuid.uuid4(), timezone.now()
            conn.execute(
                "INSERT INTO integrations_event (id, clinic_id, event_type, payload, created_at)"
                " VALUES (%s, %s, 'patient.created', %s, %s)",
                [event_id, clinic.pk, Jsonb({"n": n}), now],
            )
            conn.execute(
                "SELECT id, event_types FROM integrations_webhooksubscription "
                "WHERE clinic_id = %s AND active",
                [clinic.pk],
            ).fetchall()
            conn.execute(
                "INSERT INTO integrations_delivery (event_id, clinic_id, event_type, subscriber,"
                " status, attempts, next_attempt_at, last_error, created_at, updated_at)"
                " VALUES (%s, %s, 'patient.created', 'handler:bench.noop', 'pending', 0, %s,"
                " '', %s, %s)",
                [event_id, clinic.pk, now, now, now],
            )
            conn.commit()
            ids.append(event_id)
        seconds = time.monotonic() - started
    return ids, seconds


def main(count=10_000):
    ensure_database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connection

    import bench.outbox_handlers  # noqa: F401
    from clinic.models import Clinic

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE integrations_deliveryattempt, integrations_delivery, integrations_event"
        )
    redis.Redis.from_url(BROKER_URL).flushdb()
    clinic, _ = Clinic.objects.get_or_create(cnpj="11222333000181", defaults={"name": "Bench"})

    worker = start_worker()
    try:
        time.sleep(4)  # worker start-up
        ids, seconds = publish(clinic, count)
        wait_for(clinic.pk, ids)
        live = {"events": count, "publish_per_second": round(count / seconds, 1), **measure(ids)}
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    # Publishing beside its floor, the worker stopped (the backlog of the next phase):
    # alternately, so that both see the same load on the machine.
    from integrations.models import Event

    rounds, ids = [], []
    for _ in range(FLOOR_ROUNDS):
        floor_ids, floor_seconds = publish_floor(clinic, count // FLOOR_ROUNDS)
        Event.objects.filter(pk__in=floor_ids).delete()  # and their deliveries
        more, seconds = publish(clinic, count // FLOOR_ROUNDS)
        ids += more
        rounds.append(
            {
                "publish_per_second": round(len(more) / seconds, 1),
                "floor_per_second": round(len(floor_ids) / floor_seconds, 1),
            }
        )
    worker = start_worker()
    try:
        wait_for(clinic.pk, ids)
        backlog = measure(ids, from_first_delivery=True)
        backlog = {
            "events": count,
            "delivered": backlog["delivered"],
            "failed": backlog["failed"],
            "drain_seconds": backlog["drain_seconds"],
            "deliveries_per_second": backlog["deliveries_per_second"],
        }
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    shares = [round(r["publish_per_second"] / r["floor_per_second"], 2) for r in rounds]
    publishing = {
        "rounds": FLOOR_ROUNDS,
        "events_per_round": count // FLOOR_ROUNDS,
        "publish_per_second": summary([r["publish_per_second"] for r in rounds]),
        "floor_per_second": summary([r["floor_per_second"] for r in rounds]),
        "share_of_floor": summary(shares),
        "target_share": 0.5,
        "met": statistics.median(shares) >= 0.5,
    }
    return {"live": live, "backlog": backlog, "publish_beside_floor": publishing}


def summary(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


FLOOR_ROUNDS = 5
MODES = {"coalesce": "true", "per-transaction": "false"}

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--mode=")]
    count = int(args[0]) if args else 10_000
    mode = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--mode=")), None)
    if mode:  # one mode, in this process
        os.environ["CUIDAR_OUTBOX_COALESCE"] = MODES[mode]
        print(json.dumps(main(count)))
    else:  # every mode, each in fresh processes (settings are read once per process)
        results = {}
        for name in MODES:
            out = subprocess.run(
                [sys.executable, __file__, str(count), f"--mode={name}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(results))
