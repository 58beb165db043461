"""A lead turning hot alerts its owner within a minute, through a real Celery worker on
Redis and PostgreSQL: the owner's admin notification is there and the e-mail has gone.

Runs in CI (PostgreSQL + Redis). Locally: DATABASE_URL=postgres://… and
CELERY_BROKER_URL=redis://… .
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from clinic.choices import MembershipRole
from crm import services
from crm.choices import InteractionKind, Temperature
from crm.models import LeadAlert
from tests.clinic.factories import MembershipFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("needs a Redis broker: set CELERY_BROKER_URL=redis://…")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CONN_MAX_AGE": "0",
        # The e-mail the worker sends is printed (no SMTP server in tests).
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
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


def test_a_lead_turning_hot_alerts_its_owner_within_a_minute(clinic_a, worker):
    from config.celery import app

    process = worker
    app.conf.task_always_eager = False  # really through Redis, to the worker
    owner = MembershipFactory(
        clinic=clinic_a, role=MembershipRole.RECEPTIONIST, user__email="vendas@clinica.example"
    ).user
    lead, _ = services.lead_capture(
        clinic=clinic_a,
        name="Joana",
        phone="11987654321",
        source="referral",
        interest_type="dor_lombar",
        marketing_consent=True,
    )
    assert lead.owner_id == owner.pk
    started = time.monotonic()
    # She visits the booking page twice: hot.
    for _ in range(2):
        services.interaction_record(
            clinic=clinic_a, lead=lead, kind=InteractionKind.BOOKING_PAGE, channel="portal"
        )
    lead.refresh_from_db()
    assert lead.temperature == Temperature.HOT

    alert = None
    while time.monotonic() - started < 60:
        alert = LeadAlert.objects.filter(lead=lead, user=owner, sent_at__isnull=False).first()
        if alert is not None:
            break
        if process.poll() is not None:
            pytest.fail(f"worker exited: {process.stdout.read().decode()[-2000:]}")
        time.sleep(0.2)
    assert alert is not None, "no alert within a minute"
    assert LeadAlert.objects.filter(lead=lead).count() == 1
    process.terminate()
    output = process.communicate(timeout=20)[0].decode(errors="replace")
    assert "vendas@clinica.example" in output and "Joana" in output  # the e-mail went
