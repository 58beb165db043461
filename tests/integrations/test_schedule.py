"""Periodic jobs are defined in code, synced into django-celery-beat, and a pause made in
the admin survives a restart of beat."""

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app

# The beat scheduler calls close_old_connections(), which closes a connection that is
# inside a transaction: these tests run on real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


def start_beat():
    return DatabaseScheduler(app=app, lazy=False)


def test_beat_syncs_the_jobs_defined_in_code():
    start_beat()
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {"outbox-sweep", "inbound-webhooks-requeue", "integrations-cleanup"} <= names
    sweep = PeriodicTask.objects.get(name="outbox-sweep")
    assert sweep.task == "integrations.outbox_sweep"
    assert sweep.interval.every == 60


def test_a_job_paused_in_the_admin_stays_paused_after_a_restart():
    start_beat()
    PeriodicTask.objects.filter(name="outbox-sweep").update(enabled=False)
    start_beat()
    assert PeriodicTask.objects.get(name="outbox-sweep").enabled is False


def test_every_scheduled_task_exists():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
