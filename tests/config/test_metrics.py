"""/metrics: the operator's snapshot (taken every minute) in Prometheus text format."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from clinic.messaging.models import ReceivedMessage
from config.metrics import CACHE_KEY, metrics_snapshot
from integrations.backups import services
from integrations.backups.choices import BackupRunKind, BackupRunStatus
from integrations.models import BackupRun, ExternalCall

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.CUIDAR_HEALTH_TOKEN = TOKEN
    cache.delete(CACHE_KEY)
    yield
    cache.delete(CACHE_KEY)


def test_it_refuses_anyone_without_the_token_or_an_operator_session(
    client, client_for, receptionist_a
):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client_for(receptionist_a).get("/metrics").status_code == 401


def test_it_serves_the_snapshot_in_prometheus_format(client, clinic_a, patient_a):
    ReceivedMessage.objects.create(
        clinic=clinic_a,
        patient=patient_a,
        channel="whatsapp",
        from_address=patient_a.phone,
        text="Oi",
        source_key="m:1",
        needs_reply=True,
    )
    ExternalCall.objects.create(
        clinic=clinic_a,
        provider="meta_cloud",
        operation="send",
        method="POST",
        host="graph.facebook.com",
        status_code=503,
        succeeded=False,
        latency_ms=120,
        attempt=1,
    )

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE cuidar_messages_unanswered gauge" in text
    assert "cuidar_messages_unanswered 1" in text
    assert "cuidar_provider_error_rate 1.0" in text
    assert "cuidar_outbox_dead_letters 0" in text


def test_the_periodic_snapshot_is_what_is_served(client):
    old = metrics_snapshot(now=timezone.now() - timedelta(minutes=1))
    old["messages"]["queued"] = 7  # what the last run saw
    cache.set(CACHE_KEY, old)

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "cuidar_messages_queued 7" in text


#: A Redis that does not answer: nothing listens on port 1.
DEAD = "redis://127.0.0.1:1/0"


def test_redis_down_is_shown_and_the_metrics_are_still_served(client):
    dead = {  # production: the cache is that Redis too
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD}
    }
    with override_settings(REDIS_URL=DEAD, CACHES=dead):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    text = response.content.decode()
    assert "cuidar_redis_configured 1" in text
    assert "cuidar_redis_up 0" in text
    assert "cuidar_messages_queued 0" in text  # the snapshot, taken without its cache


def test_without_redis_the_metrics_say_it_is_not_configured(client, settings):
    settings.REDIS_URL = ""
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "cuidar_redis_configured 0" in text
    assert "\ncuidar_redis_up " not in text  # no sample: nothing to alert on


# --- Backups (issue 27) ---------------------------------------------------------------------
def _backup(*, ago, repositories=None, method="sqlite"):
    finished = timezone.now() - ago
    details = {"repositories": repositories} if repositories is not None else {}
    return BackupRun.objects.create(
        kind=BackupRunKind.COPY if method == "sqlite" else BackupRunKind.DIFF,
        method=method,
        status=BackupRunStatus.SUCCEEDED,
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
        details=details,
    )


@pytest.fixture
def installed_ten_days_ago():
    """An installation older than any alert's grace period (its first migration's time)."""
    from django.db.migrations.recorder import MigrationRecorder

    MigrationRecorder.Migration.objects.update(applied=timezone.now() - timedelta(days=10))


def age_of(text: str, repository: str) -> int:
    prefix = f'cuidar_backup_age_seconds{{repository="{repository}",'
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return int(line.rsplit(" ", 1)[1])


def test_the_age_of_the_last_backup_is_served_and_grows_between_snapshots(
    client, settings, installed_ten_days_ago
):
    """A monitor alerts on the backup's age: seconds since the last successful one, brought
    up to the scrape's time even when the snapshot is a minute old."""
    settings.CUIDAR_BACKUP_METHOD = "sqlite"
    _backup(ago=timedelta(hours=3), repositories={"sqlite": {"type": "file"}})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        metrics_snapshot()
        first = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
        clock.shift(timedelta(seconds=50))  # the cached snapshot is served again
        later = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert abs(age_of(first, "sqlite") - 3 * 3600) <= 2
    assert age_of(later, "sqlite") - age_of(first, "sqlite") == 50
    assert "cuidar_backup_max_age_seconds 93600" in first  # 26 h, the alert's threshold
    assert "cuidar_backup_status 1" in first  # no drill yet on an old installation: warning


def test_each_pgbackrest_repository_has_its_own_age(client, settings, installed_ten_days_ago):
    """A second repository that no backup reached ages on its own, and the health page
    says so, while the first is fresh."""
    settings.CUIDAR_BACKUP_METHOD = "pgbackrest"
    settings.CUIDAR_BACKUP_S3 = {"bucket": "b", "key": "k", "key_secret": "s"}
    settings.CUIDAR_BACKUP_CIPHER_PASS = "pass"
    settings.CUIDAR_BACKUP_REPO2_PATH = "/srv/pgbackrest"
    _backup(ago=timedelta(days=3), method="pgbackrest")  # before per-repository runs: repo1
    _backup(ago=timedelta(hours=2), method="pgbackrest", repositories={"repo1": {}})

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert abs(age_of(text, "repo1") - 2 * 3600) <= 5
    assert 'repository="repo1",type="s3"' in text
    assert age_of(text, "repo2") >= 10 * 24 * 3600  # since the installation: never backed up
    problems = services.backups_health()["problems"]
    assert any(p.startswith("repo2: no backup for") for p in problems)
    assert not any(p.startswith("repo1") for p in problems)
