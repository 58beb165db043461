"""A real Celery worker, in its own process, on Redis and PostgreSQL: an event goes from
``publish`` to a succeeded delivery at a partner's URL (a receiver on this machine).

Runs in CI (PostgreSQL + Redis). Locally: DATABASE_URL=postgres://… and
CELERY_BROKER_URL=redis://… .
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from integrations import events
from integrations.choices import DeliveryStatus
from integrations.models import Delivery
from integrations.subscriptions import subscription_create

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.processes, pytest.mark.django_db(transaction=True)]


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cuidar-hook"
    server.shutdown()


@pytest.fixture
def worker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis broker: set CELERY_BROKER_URL=redis://…")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"  # the test database
    )
    # The partner here is a local HTTP server: allow the internal address, in the worker too.
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CUIDAR_WEBHOOKS_ALLOW_INTERNAL": "true",
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
            "--queues=default,integrations,integrations-retry", "--without-mingle",
            "--without-gossip", "--without-heartbeat", "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_a_real_worker_delivers_an_event_to_a_partner(clinic_a, receiver, worker, settings):
    from config.celery import app

    settings.CUIDAR_WEBHOOKS_ALLOW_INTERNAL = True
    app.conf.task_always_eager = False  # really go through Redis
    subscription_create(
        clinic=clinic_a, name="Laboratório", url=receiver, event_types=["patient.created"]
    )
    with transaction.atomic():
        event = events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 42})

    delivery = Delivery.objects.get(event=event)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status != DeliveryStatus.PENDING:
            break
        if worker.poll() is not None:
            pytest.fail(f"worker exited: {worker.stdout.read().decode()[-2000:]}")
        time.sleep(0.2)

    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    [(headers, body)] = Receiver.received
    assert headers["X-Cuidar-Event"] == "patient.created"
    assert body["data"] == {"patient_id": 42}
    assert body["id"] == str(event.pk)
