"""Profile partner-API requests in process, on the benchmark's million-appointment
database (``bench/scheduling.py`` makes it; ``python bench/api.py`` once is enough).

Not a benchmark scenario (the leading underscore keeps ``make bench`` from running it):
it prints where the CPU goes for one kind of request, to decide what to make cheaper.
Needs pyinstrument (``.venv/bin/pip install pyinstrument``; not a project dependency).

    python bench/_profile_api.py list          # GET /api/v1/appointments/ (a week, 50)
    python bench/_profile_api.py availability  # GET /api/v1/availability (one day)
    python bench/_profile_api.py cached        # the same, 20 questions: cache hits
    python bench/_profile_api.py booking       # POST /api/v1/appointments/ (free slots)

Run with the same settings as bench/api.py's gunicorn (DEBUG off, Redis), through Django's
test client: its own cost shows in the profile too, so compare shares, not totals.
"""

import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUESTS = 400


def main(kind: str) -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.api_settings",
            "DEBUG": "False",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "testserver",
            "CUIDAR_FERNET_KEYS": Fernet.generate_key().decode(),
            "SECURE_SSL_REDIRECT": "False",
            "CUIDAR_API_RATE": "100000000/min",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
            "CELERY_BROKER_URL": "memory://",
        }
    )
    import django

    import bench.scheduling as data  # sets DATABASE_URL to the bench database on import

    django.setup()
    from django.test import Client
    from django.utils import timezone
    from pyinstrument import Profiler

    from clinic.models import Clinic, Professional
    from clinic.partner_api.keys import api_key_create
    from clinic.partner_api.models import ApiKey
    from clinic.partner_api.scopes import API_SCOPES
    from scheduling.models import Service

    clinic = Clinic.objects.order_by("pk").first()
    key, secret = api_key_create(clinic=clinic, name="profile", scopes=list(API_SCOPES))
    professionals = list(Professional.objects.filter(clinic=clinic).values_list("pk", flat=True))
    service = Service.objects.filter(clinic=clinic).first()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    today = timezone.localdate()
    rng = random.Random(7)  # noqa: S311 - sampling, not secrets

    if kind == "cached":  # few questions, asked again and again: answered from the cache
        professionals = professionals[:4]

    def path() -> str:
        day = today + timedelta(days=rng.randint(1, 5 if kind == "cached" else 30))
        if kind in ("availability", "cached"):
            query = {
                "service": service.pk,
                "professional": rng.choice(professionals),
                "start": data.local_midnight(day).isoformat(),
                "end": data.local_midnight(day + timedelta(days=1)).isoformat(),
            }
            return "/api/v1/availability?" + urlencode(query)
        query = {
            "professional": rng.choice(professionals),
            "start_from": data.local_midnight(day).isoformat(),
            "start_to": data.local_midnight(day + timedelta(days=7)).isoformat(),
            "page_size": 50,
        }
        return "/api/v1/appointments/?" + urlencode(query)

    if kind == "booking":
        bodies = iter(_booking_bodies(data, clinic, service, today, rng))

        def send():
            response = client.post(
                "/api/v1/appointments/", next(bodies), content_type="application/json"
            )
            assert response.status_code in (201, 409), response.content
    else:

        def send():
            assert client.get(path()).status_code == 200

    try:
        for _ in range(50):  # warm: connections, caches
            send()
        profiler = Profiler(interval=0.0005)
        started = time.process_time()
        profiler.start()
        for _ in range(REQUESTS):
            send()
        profiler.stop()
        cpu_ms = (time.process_time() - started) / REQUESTS * 1000
        print(f"{kind}: {cpu_ms:.2f} ms of CPU per request (profiler included)")
        print(
            profiler.output_text(
                unicode=False, color=False, show_all=os.environ.get("PROFILE_ALL") == "1"
            )
        )
    finally:
        ApiKey.objects.filter(pk=key.pk).delete()
        if kind == "booking":
            from scheduling.models import Appointment

            Appointment.objects.filter(clinic=clinic, notes=PROFILE_MARK).delete()


PROFILE_MARK = "bench-profile"  # notes of the profile's bookings, deleted afterwards


def _booking_bodies(data, clinic, service, today, rng) -> list[str]:
    """One JSON body per free slot of the coming weeks, each with a fresh patient."""
    import json

    from django.utils import timezone

    from clinic.models import Patient
    from scheduling.availability import slot_list_available

    earliest = timezone.now() + timedelta(hours=3)
    free = []
    for days in range(1, 36):
        day = today + timedelta(days=days)
        free += [
            slot
            for slot in slot_list_available(
                clinic=clinic,
                service=service,
                start=data.local_midnight(day),
                end=data.local_midnight(day + timedelta(days=1)),
            )
            if slot.start > earliest
        ]
        if len(free) > 2 * (REQUESTS + 50):
            break
    chosen = rng.sample(free, REQUESTS + 50)
    patients = Patient.objects.filter(clinic=clinic, lead_source=f"{data.MARK}-booking")
    patient_ids = patients.order_by("-pk").values_list("pk", flat=True)[: len(chosen)]
    return [
        json.dumps(
            {
                "patient": patient,
                "professional": slot.professional_id,
                "service": service.pk,
                "start": slot.start.astimezone(data.TZ).isoformat(),
                "notes": PROFILE_MARK,
            }
        )
        for slot, patient in zip(chosen, patient_ids, strict=True)
    ]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "list")
