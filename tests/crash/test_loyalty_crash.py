"""Crash test: the worker running loyalty's ``payment.received`` handler is killed with
SIGKILL after it wrote the points entry and before its transaction committed. Nothing was
credited (the transaction died with the process); the delivery runs again and credits the
points exactly once; a third run does nothing.

PostgreSQL only (the worker is another process on the test database). Runs in CI;
locally: DATABASE_URL=postgres://… .
"""

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from billing import services as billing
from integrations.models import Delivery
from integrations.outbox import delivery_run
from loyalty import services
from loyalty.models import PointsEntry
from tests.clinic.factories import PatientFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

#: The worker: runs one delivery with the earning wrapped so that, once the entry is
#: written (inside the delivery's transaction), it writes its pid to the hang file and
#: sleeps until killed.
WORKER = """
import os, sys, time
from pathlib import Path
import django
django.setup()
from loyalty import services
original = services.payment_points_sync
hang = Path(sys.argv[2])
def hanging(**kwargs):
    moved = original(**kwargs)
    hang.write_text(str(os.getpid()))
    time.sleep(600)
    return moved
services.payment_points_sync = hanging
from integrations.outbox import delivery_run
delivery_run(delivery_id=int(sys.argv[1]))
"""


def _database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def test_a_worker_killed_mid_earning_credits_the_points_exactly_once(
    clinic_a, tmp_path, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    program = services.program_for(clinic_a)
    program.is_active, program.points_per_real = True, Decimal("2")
    program.save()
    maria = PatientFactory(clinic=clinic_a)
    # Keep the deliveries queued (no worker here): the crashing worker runs loyalty's.
    monkeypatch.setattr("integrations.outbox.request_dispatch", lambda event_ids: None)
    monkeypatch.setattr("integrations.events._dispatch_on_commit", lambda event_id: None)
    billing.payment_register(clinic=clinic_a, patient=maria, amount="75.50", method="cash")
    delivery = Delivery.objects.get(
        event__event_type="payment.received", subscriber__startswith="handler:loyalty"
    )
    hang = tmp_path / "hang"
    hang.write_text("")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(delivery.pk), str(hang)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not hang.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read().decode(errors="replace")
            time.sleep(0.1)
        assert hang.read_text(), "the worker never reached the earning"
        # Written but not committed: nobody else sees it.
        assert not PointsEntry.objects.exists()
        os.kill(int(hang.read_text()), signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert not PointsEntry.objects.exists()
    assert delivery_run(delivery_id=delivery.pk) == "succeeded"
    assert delivery_run(delivery_id=delivery.pk) is None  # done: nothing more

    account = services.account_for(maria)
    assert account.balance == 151  # R$ 75,50 × 2, once
    assert PointsEntry.objects.filter(account=account).count() == 1
