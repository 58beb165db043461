"""Periodic jobs are defined in code, synced into django-celery-beat, and a pause made in
the admin survives a restart of beat."""

import json

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


def test_the_daily_jobs_run_hourly_for_the_clinics_where_it_is_their_time():
    start_beat()
    jobs = {task.name: task for task in PeriodicTask.objects.select_related("crontab")}
    for name, hours in (
        ("reminders-48h", [8, 18]),
        ("reminders-eve", [18]),
        ("birthdays", [8]),
        ("packages-expiry", [9]),
        ("dunning", [9]),
    ):
        crontab = jobs[name].crontab
        assert (crontab.minute, crontab.hour) == ("0", "*"), name
        assert json.loads(jobs[name].kwargs) == {"local_hours": hours}, name
    assert jobs["no-shows-detect"].crontab.minute == "*/30"
    assert jobs["messages-retry"].task == "clinic.messages_retry"
