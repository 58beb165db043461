"""The partner API under load: gunicorn with 2 workers on PostgreSQL and the million
appointments of ``bench/scheduling.py``, 32 concurrent clients.

Measured, each as p50/p95/p99 latency and requests per second, next to a bare Django JSON
view served by the same gunicorn in the same run (the framework floor):

1. ``GET /api/v1/availability`` for one professional and one day (random future days).
2. ``GET /api/v1/appointments/`` for one professional and one week, 50 a page.
3. ``POST /api/v1/appointments/``: free slots found beforehand, each booked once with a
   fresh patient (201), or 409 when the slot went meanwhile; the bookings are deleted
   afterwards.

Targets (issue 8): p95 < 100 ms for reads, < 150 ms for booking, and the appointment list
at ≥ 40 % of the floor's throughput. Clients, server and PostgreSQL share this machine's
CPUs: the client threads take part of them.
Needs PostgreSQL (BENCH_DATABASE_URL as in bench/scheduling.py). Run: ``make bench`` or
``python bench/api.py``; prints a JSON object.
"""

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.scheduling as data  # noqa: E402  (sets the benchmark database first)

CLIENTS = 32
READS = 1500
FLOOR_REQUESTS = 3000
BOOKINGS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DEBUG": "False",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CUIDAR_FERNET_KEYS": Fernet.generate_key().decode(),
        "SECURE_SSL_REDIRECT": "False",
        "CUIDAR_API_RATE": "100000000/min",
        "CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": "memory://",
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2",
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/bench/floor", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start")


def load(requests_list, *, method="GET", key=None, bodies=None) -> dict:
    """Send the requests from CLIENTS threads (one session each); latencies and rate."""
    import requests

    latencies, statuses, lock = [], {}, threading.Lock()
    queue = list(enumerate(requests_list))
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def client():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                index, url = queue.pop()
            started = time.perf_counter()
            if method == "POST":
                response = session.post(url, json=bodies[index], headers=headers, timeout=30)
            else:
                response = session.get(url, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    from integrations.health import percentile

    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> dict:
    data.ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from clinic.api_framework import api_key_create
    from clinic.models import API_SCOPES, ApiKey, Patient, Professional
    from integrations.models import Event
    from scheduling.availability import slot_list_available
    from scheduling.models import Appointment

    call_command("migrate", verbosity=0)
    clinic, service = data.generate()
    ApiKey.objects.filter(clinic=clinic, name="bench-api").delete()
    _key, secret = api_key_create(clinic=clinic, name="bench-api", scopes=list(API_SCOPES))
    rng = random.Random(11)  # noqa: S311 - sampling, not secrets
    professionals = list(
        Professional.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True)
    )
    today = timezone.localdate()
    days = [today + timedelta(days=d) for d in range(1, 36)]

    def day_start(day):
        return data.local_midnight(day)

    started_at = datetime.now(data.TZ)
    port = free_port()
    server = start_gunicorn(port)
    try:
        base = f"http://127.0.0.1:{port}"
        floor = load([f"{base}/bench/floor"] * FLOOR_REQUESTS)
        availability = load(
            [
                f"{base}/api/v1/availability?"
                + urlencode(
                    {
                        "service": service.pk,
                        "professional": rng.choice(professionals),
                        "start": day_start(day).isoformat(),
                        "end": day_start(day + timedelta(days=1)).isoformat(),
                    }
                )
                for day in (rng.choice(days) for _ in range(READS))
            ],
            key=secret,
        )
        listing = load(
            [
                f"{base}/api/v1/appointments/?"
                + urlencode(
                    {
                        "professional": rng.choice(professionals),
                        "start_from": day_start(day).isoformat(),
                        "start_to": day_start(day + timedelta(days=7)).isoformat(),
                        "page_size": 50,
                    }
                )
                for day in (rng.choice(days) for _ in range(READS))
            ],
            key=secret,
        )
        # Booking: free future slots, each posted once with a fresh patient.
        free = []
        now = timezone.now() + timedelta(hours=3)
        while len(free) < BOOKINGS:
            day = rng.choice(days)
            free += [
                s
                for s in slot_list_available(
                    clinic=clinic,
                    service=service,
                    start=day_start(day),
                    end=day_start(day + timedelta(days=1)),
                )
                if s.start > now
            ]
        chosen = rng.sample(free, BOOKINGS)
        patients = list(
            Patient.objects.filter(clinic=clinic, lead_source=f"{data.MARK}-booking")
            .order_by("pk")
            .values_list("pk", flat=True)[:BOOKINGS]
        )
        bodies = [
            {
                "patient": patient,
                "professional": slot.professional_id,
                "service": service.pk,
                "start": slot.start.astimezone(data.TZ).isoformat(),
                "notes": data.MARK,
            }
            for slot, patient in zip(chosen, patients, strict=True)
        ]
        booking = load(
            [f"{base}/api/v1/appointments/"] * BOOKINGS, method="POST", key=secret, bodies=bodies
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        booked = Appointment.objects.filter(
            clinic=clinic, notes=data.MARK, created_at__gte=started_at - timedelta(minutes=1)
        )
        Event.objects.filter(
            clinic=clinic,
            event_type__in=["appointment.booked"],
            payload__appointment_id__in=list(booked.values_list("pk", flat=True)),
        ).delete()
        booked.delete()

    return {
        "data": {"appointments": Appointment.objects.filter(clinic=clinic).count()},
        "clients": CLIENTS,
        "gunicorn_workers": 2,
        "floor_bare_django_json": floor,
        "availability_one_professional_one_day": {
            **availability,
            "target_p95_ms": 100,
            "met": availability["p95_ms"] < 100,
        },
        "appointment_list_one_week": {
            **listing,
            "target_p95_ms": 100,
            "met": listing["p95_ms"] < 100,
            "share_of_floor_throughput": round(listing["per_second"] / floor["per_second"], 2),
            "target_share": 0.4,
        },
        "booking": {**booking, "target_p95_ms": 150, "met": booking["p95_ms"] < 150},
    }


if __name__ == "__main__":
    print(json.dumps(main()))
