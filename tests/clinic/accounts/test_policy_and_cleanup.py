"""Issue 19's last gaps: a policy changed while staff are signed in applies at their next
request (not only at their next sign-in), and a weekly job closes sessions that ended
unseen and deletes old ones."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.accounts import services
from clinic.accounts.models import SecurityPolicy, StaffSession
from tests.clinic.accounts.test_sign_in import LOGIN, VERIFY, code, enrol, sign_in_password

pytestmark = pytest.mark.usefixtures("staff_security")


def test_a_shorter_idle_timeout_applies_to_sessions_already_signed_in(
    receptionist_a, clinic_a, django_capture_on_commit_callbacks
):
    device = enrol(receptionist_a)
    with time_machine.travel("2026-12-01 12:00:00 +0000", tick=False) as clock:
        client = Client()
        sign_in_password(client, receptionist_a.username)
        client.post(VERIFY, {"code": code(device)})
        assert client.session[services.SESSION_IDLE] == 30 * 60  # the default policy
        with django_capture_on_commit_callbacks(execute=True):
            SecurityPolicy.objects.create(clinic=clinic_a, idle_minutes_sensitive=10)
        clock.shift(60 * 5)
        assert client.get("/admin/").status_code == 200  # reads the new policy here
        assert client.session[services.SESSION_IDLE] == 10 * 60
        clock.shift(60 * 11)  # within the old 30 minutes, past the new 10
        expired = client.get("/admin/")
        assert expired.status_code == 302 and expired["Location"].startswith(LOGIN)


def test_an_unchanged_policy_is_not_read_again(receptionist_a):
    """The common path stays free of policy queries: only a changed version re-reads."""
    device = enrol(receptionist_a)
    client = Client()
    sign_in_password(client, receptionist_a.username)
    client.post(VERIFY, {"code": code(device)})
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/admin/password_change/").status_code == 200
    assert not [q for q in queries if "accounts_securitypolicy" in q["sql"]]
    services.policy_changed()
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/password_change/")
    assert [q for q in queries if "accounts_securitypolicy" in q["sql"]]


def test_the_weekly_cleanup_closes_sessions_that_ended_unseen_and_deletes_old_ones(
    receptionist_a,
):
    now = timezone.now()

    def row(key, *, seen, ended=None):
        return StaffSession.objects.create(
            user=receptionist_a,
            session_key=key,
            created_at=seen,
            last_seen_at=seen,
            ended_at=ended,
            end_reason="signed_out" if ended else "",
        )

    live = row("live", seen=now - timedelta(minutes=5))
    unseen = row("unseen", seen=now - timedelta(hours=13))
    recent = row("recent", seen=now - timedelta(days=3), ended=now - timedelta(days=3))
    old = row("old", seen=now - timedelta(days=100), ended=now - timedelta(days=91))

    assert services.staff_sessions_cleanup(now=now) == {"expired": 1, "deleted": 1}
    assert services.staff_sessions_cleanup(now=now) == {"expired": 0, "deleted": 0}

    unseen.refresh_from_db()
    assert (unseen.ended_at, unseen.end_reason) == (now, "expired")
    live.refresh_from_db()
    assert live.ended_at is None
    assert set(StaffSession.objects.values_list("session_key", flat=True)) == {
        "live",
        "unseen",
        "recent",
    }
    assert not StaffSession.objects.filter(pk=old.pk).exists()
    assert recent.pk


def test_the_cleanup_is_a_weekly_job():
    from config.celery import app

    (entry,) = [
        e for e in app.conf.beat_schedule.values() if e["task"] == "accounts.staff_sessions_cleanup"
    ]
    assert entry["schedule"].day_of_week == {0}  # Sunday
    app.loader.import_default_modules()
    assert "accounts.staff_sessions_cleanup" in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "integrations-low"
