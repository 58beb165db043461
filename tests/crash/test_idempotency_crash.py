"""Crash test: a real gunicorn worker killed with SIGKILL in the middle of a request that
holds an Idempotency-Key. Nothing was written (its transaction died with it); a retry is
refused with 409 only while the request could still have been running (the worker timeout,
``CUIDAR_WEB_WORKER_TIMEOUT``, shortened here), then runs and creates the patient once.

PostgreSQL only (gunicorn serves the test database from another process). Runs in CI;
locally: DATABASE_URL=postgres://… .
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 4  # seconds: gunicorn's --timeout and the claim's bound, in both processes
PATIENTS = "/api/v1/patients/"
MARIA = {
    "full_name": "Maria das Dores Silva",
    "cpf": "529.982.247-25",
    "phone": "(11) 98765-4321",
    "birth_date": "1980-05-17",
}

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def hanging_application():
    """The project's WSGI application, whose first patient creation (while the file named by
    ``CRASH_HANG_FILE`` exists) writes its worker's pid there and hangs with the row
    inserted but not committed: the test kills that worker. (gunicorn factory, test only.)"""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    from django.db import transaction

    from clinic import services

    original = services.patient_create
    hang_file = Path(os.environ["CRASH_HANG_FILE"])

    def patient_create(**kwargs):
        with transaction.atomic():
            patient = original(**kwargs)
            if hang_file.exists() and not hang_file.read_text():
                hang_file.write_text(str(os.getpid()))
                time.sleep(600)
        return patient

    services.patient_create = patient_create
    return application


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"  # the test database
    )
    port = _free_port()
    hang_file = tmp_path / "hang"
    hang_file.write_text("")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CUIDAR_WEB_WORKER_TIMEOUT": str(WORKER_TIMEOUT),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "CRASH_HANG_FILE": str(hang_file),
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
            "tests.crash.test_idempotency_crash:hanging_application()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    import requests

    while True:
        try:
            requests.get(f"{base}/health/", timeout=15)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gunicorn did not start: {process.stdout.read().decode()[-3000:]}")
            time.sleep(0.2)
    yield base, hang_file
    process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_a_retry_succeeds_soon_after_the_worker_holding_its_key_is_killed(clinic_a, gunicorn):
    import requests
    from django.test import override_settings
    from django.utils import timezone

    from clinic.models import Patient
    from clinic.partner_api.idempotency import idempotency_claim_ttl
    from clinic.partner_api.models import IdempotencyRecord
    from tests.clinic.partner_api.helpers import key_client

    base, hang_file = gunicorn
    secret = key_client(clinic_a, "patients:write")._credentials["HTTP_AUTHORIZATION"]
    headers = {"Authorization": secret, "Idempotency-Key": "crash-test-1"}

    def post():
        return requests.post(f"{base}{PATIENTS}", json=MARIA, headers=headers, timeout=10)

    outcome = []

    def first_request():
        try:
            outcome.append(post().status_code)
        except requests.RequestException as exc:  # the worker died under it
            outcome.append(exc.__class__.__name__)

    first = threading.Thread(target=first_request)
    first.start()
    deadline = time.monotonic() + 20
    while not hang_file.read_text():  # the worker is inside the request, the key claimed
        assert time.monotonic() < deadline, "the first request never reached the booking"
        time.sleep(0.05)
    claim = IdempotencyRecord.objects.get(key="crash-test-1")
    assert claim.in_flight
    os.kill(int(hang_file.read_text()), signal.SIGKILL)
    first.join(timeout=15)
    assert outcome and not isinstance(outcome[0], int), outcome  # it never answered

    busy = post()  # the claim stands while the request could still be running
    assert busy.status_code == 409, busy.text
    assert int(busy.headers["Retry-After"]) >= 1

    with override_settings(CUIDAR_WEB_WORKER_TIMEOUT=WORKER_TIMEOUT):
        bound = claim.created_at + idempotency_claim_ttl()
    while (response := post()).status_code == 409:
        assert time.monotonic() < deadline + 30, "the key stayed in flight"
        time.sleep(0.25)
    assert response.status_code == 201, response.text
    assert timezone.now() <= bound + timedelta(seconds=2)  # within the bound (and a poll)
    assert Patient.objects.filter(clinic=clinic_a).count() == 1  # the killed one wrote nothing
    replayed = post()
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == response.json()["id"]
