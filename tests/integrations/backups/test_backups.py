"""Backups without external tools: the SQLite copies and their checksum, pgBackRest's
configuration, the alerts on /health/integrations, the audit trail and the commands."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEntry
from integrations import outbox
from integrations.backups import services
from integrations.backups.choices import BackupRunKind, BackupRunStatus
from integrations.backups.config import PgBackRestConfig, Repository
from integrations.backups.errors import ChecksumMismatch
from integrations.backups.sqlite import sqlite_backup, sqlite_copies, sqlite_prune, sqlite_restore
from integrations.models import BackupRun, Delivery

pytestmark = pytest.mark.django_db


def _database(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, note TEXT)")
    db.executemany("INSERT INTO visits VALUES (?, ?)", [(i, f"visit {i}") for i in rows])
    db.commit()
    db.close()


def _ids(path):
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT id FROM visits ORDER BY id")]
    finally:
        db.close()


# --- SQLite ---------------------------------------------------------------------------------
def test_a_sqlite_copy_restores_the_rows_it_was_taken_with(tmp_path):
    live = tmp_path / "cuidar.sqlite3"
    _database(live, range(1, 11))
    copy = sqlite_backup(source=live, dest_dir=tmp_path / "copies")
    _database(live, range(11, 21))
    assert len(_ids(live)) == 20

    restored = sqlite_restore(copy=copy.path, target=live)

    assert _ids(live) == list(range(1, 11))
    assert restored.sha256 == copy.sha256
    sidecar = copy.path.with_name(copy.name + ".sha256").read_text()
    assert sidecar == f"{copy.sha256}  {copy.name}\n"  # `sha256sum -c` reads it too


def test_a_damaged_sqlite_copy_is_refused_and_the_database_left_alone(tmp_path):
    live = tmp_path / "cuidar.sqlite3"
    _database(live, range(1, 6))
    copy = sqlite_backup(source=live, dest_dir=tmp_path / "copies")
    _database(live, [6])
    data = bytearray(copy.path.read_bytes())
    data[-100] ^= 0xFF
    copy.path.write_bytes(bytes(data))

    with pytest.raises(ChecksumMismatch):
        sqlite_restore(copy=copy.path, target=live)
    assert _ids(live) == [1, 2, 3, 4, 5, 6]


def test_old_copies_are_pruned_newest_kept(tmp_path):
    live = tmp_path / "cuidar.sqlite3"
    _database(live, [1])
    now = timezone.now()
    for days in (3, 2, 1):
        sqlite_backup(source=live, dest_dir=tmp_path / "c", now=now - timedelta(days=days))
    sqlite_prune(tmp_path / "c", keep=2)
    kept = sqlite_copies(tmp_path / "c")
    assert [c.taken_at.date() for c in kept] == [
        (now - timedelta(days=2)).date(),
        (now - timedelta(days=1)).date(),
    ]
    assert len(list((tmp_path / "c").glob("*.sha256"))) == 2


# --- pgBackRest's configuration -------------------------------------------------------------
def test_the_rendered_configuration_encrypts_the_s3_repository_and_archives_within_a_minute():
    config = PgBackRestConfig(
        stanza="cuidar",
        repositories=(
            Repository(
                type="s3",
                cipher_pass="secret-pass",
                endpoint="s3.example.com",
                bucket="clinic-backups",
                key="AKIA",
                key_secret="shh",
                uri_style="path",
            ),
            Repository(type="posix", path="/srv/backups", cipher_pass="secret-pass"),
        ),
        pg_path="/var/lib/postgresql/15/main",
        config_path="/etc/pgbackrest/pgbackrest.conf",
    )
    text = config.render()
    for line in (
        "repo1-type=s3",
        "repo1-cipher-type=aes-256-cbc",
        "repo1-s3-bucket=clinic-backups",
        "repo1-s3-uri-style=path",
        "repo1-retention-full=4",
        "repo2-type=posix",
        "repo2-cipher-type=aes-256-cbc",
        "[cuidar]",
        "pg1-path=/var/lib/postgresql/15/main",
    ):
        assert line in text.splitlines()
    pg = config.postgresql_settings()
    assert pg["archive_mode"] == "on"
    assert pg["archive_timeout"] == "60s"
    assert pg["archive_command"] == (
        "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=cuidar archive-push %p"
    )
    assert config.problems() == []


def test_an_unencrypted_repository_is_a_problem(settings):
    settings.CUIDAR_BACKUP_S3 = {"bucket": "b", "key": "k", "key_secret": "s"}
    settings.CUIDAR_BACKUP_CIPHER_PASS = ""
    settings.CUIDAR_BACKUP_REPO2_PATH = ""
    problems = PgBackRestConfig.from_settings().problems()
    assert problems == ["repo1 is not encrypted: set CUIDAR_BACKUP_CIPHER_PASS"]


def test_the_written_configuration_is_readable_by_its_owner_only(tmp_path):
    config = PgBackRestConfig(stanza="s", repositories=(), pg_path="/x")
    path = config.write(tmp_path / "pgbackrest.conf")
    assert path.stat().st_mode & 0o777 == 0o600


# --- Alerts ---------------------------------------------------------------------------------
def _run(kind, status, *, ago, **fields):
    finished = timezone.now() - ago
    return BackupRun.objects.create(
        kind=kind,
        method="sqlite",
        status=status,
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
        **fields,
    )


@pytest.fixture
def sqlite_backups(settings):
    settings.CUIDAR_BACKUP_METHOD = "sqlite"


def test_recent_backup_and_drill_are_ok(sqlite_backups):
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=3), label="c1")
    _run(
        BackupRunKind.DRILL,
        BackupRunStatus.SUCCEEDED,
        ago=timedelta(days=2),
        rto_seconds=42.0,
        rpo_seconds=35.5,
    )
    report = services.backups_health()
    assert report["level"] == "ok", report["problems"]
    assert report["last_backup"]["label"] == "c1"
    assert (report["last_drill"]["rto_seconds"], report["last_drill"]["rpo_seconds"]) == (
        42.0,
        35.5,
    )


def test_a_backup_older_than_its_schedule_is_an_alert(sqlite_backups):
    _run(BackupRunKind.DRILL, BackupRunStatus.SUCCEEDED, ago=timedelta(days=1))
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=30))
    assert services.backups_health()["level"] == "warning"
    BackupRun.objects.filter(kind=BackupRunKind.COPY).update(
        finished_at=timezone.now() - timedelta(hours=60)
    )
    report = services.backups_health()
    assert report["level"] == "critical"
    assert report["problems"] == ["no backup for 60 h"]


def test_a_failed_drill_is_critical_and_a_stale_one_shows_on_the_health_page(
    sqlite_backups, client, superuser
):
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=1))
    _run(BackupRunKind.DRILL, BackupRunStatus.SUCCEEDED, ago=timedelta(days=9), rto_seconds=50)
    client.force_login(superuser)

    body = client.get(reverse("health-integrations")).json()
    assert body["status"] == "degraded"
    assert body["backups"]["problems"] == ["the last successful restore drill is 9 days old"]
    assert body["backups"]["last_drill"]["rto_seconds"] == 50

    _run(
        BackupRunKind.DRILL,
        BackupRunStatus.FAILED,
        ago=timedelta(hours=1),
        error="checks failed: row_counts",
    )
    response = client.get(reverse("health-integrations"))
    assert response.status_code == 503
    assert response.json()["status"] == "critical"


def test_backups_off_in_production_is_critical(settings):
    settings.CUIDAR_BACKUP_METHOD = "off"
    settings.CUIDAR_BACKUP_REQUIRED = True
    assert services.backups_health()["level"] == "critical"
    settings.CUIDAR_BACKUP_REQUIRED = False
    assert services.backups_health()["level"] == "ok"


# --- Audit trail ----------------------------------------------------------------------------
def test_a_backup_goes_to_the_audit_trail_of_every_clinic(sqlite_backups, clinic_a, clinic_b):
    run = BackupRun.objects.create(
        kind=BackupRunKind.COPY, method="sqlite", triggered_by="beat", label="cuidar-1.sqlite3"
    )
    services._run_finish(run, status=BackupRunStatus.SUCCEEDED)
    for delivery in Delivery.objects.filter(event_type="backup.completed"):
        outbox.delivery_run(delivery_id=delivery.pk)

    entries = AuditEntry.objects.filter(action="backup")
    assert sorted(e.clinic_id for e in entries) == sorted([clinic_a.pk, clinic_b.pk])
    entry = entries.get(clinic=clinic_a)
    assert (entry.actor_kind, entry.actor_label) == ("system", "beat")
    assert entry.details["backup_run_id"] == run.pk


def test_a_failed_backup_is_not_audited_but_recorded(sqlite_backups, clinic_a):
    run = BackupRun.objects.create(kind=BackupRunKind.COPY, method="sqlite")
    services._run_finish(run, status=BackupRunStatus.FAILED, error="disk full")
    assert not Delivery.objects.filter(event_type__startswith="backup.").exists()
    assert BackupRun.objects.get().error == "disk full"


# --- Commands -------------------------------------------------------------------------------
def test_backup_status_names_what_is_late(sqlite_backups):
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=30))
    out = StringIO()
    call_command("backup", "status", stdout=out)
    text = out.getvalue()
    assert "level: warning" in text
    assert "! no backup for 30 h" in text


def test_backup_configure_prints_the_encrypted_repository(settings):
    settings.CUIDAR_BACKUP_S3 = {"bucket": "b", "key": "k", "key_secret": "s"}
    settings.CUIDAR_BACKUP_CIPHER_PASS = "pass"
    out = StringIO()
    call_command("backup", "configure", "--print", stdout=out)
    assert "repo1-cipher-type=aes-256-cbc" in out.getvalue()


def test_a_drill_of_a_copy_that_is_not_cuidars_database_fails_and_alerts(
    sqlite_backups, settings, tmp_path
):
    from integrations.backups.drill import drill_run

    settings.CUIDAR_BACKUP_DIR = tmp_path / "backups"
    settings.CUIDAR_BACKUP_DRILL_DIR = str(tmp_path / "drill")
    stranger = tmp_path / "stranger.sqlite3"
    _database(stranger, range(1, 4))
    copy = sqlite_backup(source=stranger, dest_dir=tmp_path / "backups" / "sqlite")
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=1))

    drill = drill_run(triggered_by="test")

    assert drill.status == BackupRunStatus.FAILED
    failed = {c["name"] for c in drill.details["checks"] if not c["ok"]}
    assert {"migrations", "row_counts"} <= failed
    assert drill.label == copy.name
    assert drill.rto_seconds is not None and drill.rto_seconds >= 0
    assert drill.rpo_seconds is not None and drill.rpo_seconds >= 0
    assert not list((tmp_path / "drill").iterdir())  # the scratch copy is gone
    report = services.backups_health()
    assert report["level"] == "critical"
    assert set(report["last_drill"]["failed_checks"]) == failed


def _cuidar_sqlite_database(path, *, clinics: list[str]) -> None:
    """A database of the embedded default as `make run` makes it: every migration applied
    by ``manage.py migrate`` in its own process (on SQLite, whatever this test runs on),
    with the given clinics in it."""
    root = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env["DATABASE_URL"] = f"sqlite:///{path}"
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=root, env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    script = (
        "from tests.clinic.factories import ClinicFactory\n"
        f"for name in {clinics!r}: ClinicFactory(name=name)"
    )
    subprocess.run([*manage, "shell", "-c", script], cwd=root, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip


def test_a_drill_of_a_good_copy_succeeds_and_records_rto_and_rpo(
    sqlite_backups, settings, tmp_path, clinic_a, client, superuser
):
    """The success path of the embedded default's drill: the newest copy of a real Cuidar
    database is restored into a scratch file, every check passes, RTO and RPO are
    recorded, the scratch copy is deleted, and the health page says all is well."""
    from integrations.backups.drill import drill_run

    settings.CUIDAR_BACKUP_DIR = tmp_path / "backups"
    settings.CUIDAR_BACKUP_DRILL_DIR = str(tmp_path / "drill")
    live = tmp_path / "cuidar.sqlite3"
    _cuidar_sqlite_database(live, clinics=[clinic_a.name])
    taken = timezone.now() - timedelta(minutes=10)
    copy = sqlite_backup(source=live, dest_dir=tmp_path / "backups" / "sqlite", now=taken)
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(minutes=10))

    drill = drill_run(triggered_by="test")

    checks = {c["name"]: c["ok"] for c in drill.details["checks"]}
    assert drill.status == BackupRunStatus.SUCCEEDED, drill.details["checks"]
    assert {"migrations", "row_counts", "file_references"} <= set(checks)
    assert all(checks.values())
    assert drill.label == copy.name
    assert drill.restored_until == copy.taken_at
    assert 0 <= drill.rto_seconds < 60
    assert 600 <= drill.rpo_seconds < 900  # the copy is ten minutes old
    assert not list((tmp_path / "drill").iterdir())  # the scratch copy is gone
    report = services.backups_health()
    assert (report["level"], report["problems"]) == ("ok", [])
    assert report["last_drill"]["rto_seconds"] == drill.rto_seconds
    client.force_login(superuser)
    assert client.get(reverse("health-integrations")).json()["backups"]["level"] == "ok"


# --- Admin ----------------------------------------------------------------------------------
def test_operators_see_backups_and_drills_with_their_measures(
    sqlite_backups, client_for, superuser, django_assert_max_num_queries
):
    _run(BackupRunKind.COPY, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=2), label="c-1")
    _run(BackupRunKind.DRILL, BackupRunStatus.SUCCEEDED, ago=timedelta(hours=1), rto_seconds=12.4)
    client = client_for(superuser)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("admin:integrations_backuprun_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "c-1" in page
    assert "12.4 s" in page
    assert reverse("admin:integrations_backuprun_run", args=["drill"]) in page


def test_clinic_staff_do_not_see_the_installations_backups(sqlite_backups, client_for, manager_a):
    response = client_for(manager_a).get(reverse("admin:integrations_backuprun_changelist"))
    assert response.status_code == 403


def test_the_backup_button_queues_a_backup_named_after_the_operator(
    sqlite_backups, client_for, superuser, monkeypatch
):
    from integrations.backups import tasks

    queued = []
    monkeypatch.setattr(tasks.backup_run_task, "apply_async", lambda **kw: queued.append(kw))
    response = client_for(superuser).post(
        reverse("admin:integrations_backuprun_run", args=["backup"])
    )
    assert response.status_code == 302
    assert queued == [{"kwargs": {"triggered_by": f"admin: {superuser.get_username()}"}}]


def test_a_pgbackrest_backup_goes_into_every_repository_and_each_is_verified(settings, monkeypatch):
    """pgBackRest backs up into one repository per run (repo1 unless told): the optional
    second repository gets its own run and its own verify, or it would only ever hold WAL."""
    from datetime import UTC, datetime

    from integrations.backups.pgbackrest import BackupInfo, VerifyResult

    settings.CUIDAR_BACKUP_METHOD = "pgbackrest"
    settings.CUIDAR_BACKUP_S3 = {"bucket": "b", "key": "k", "key_secret": "s"}
    settings.CUIDAR_BACKUP_CIPHER_PASS = "pass"
    settings.CUIDAR_BACKUP_REPO2_PATH = "/srv/pgbackrest"
    calls = []

    class Tool:
        config = PgBackRestConfig.from_settings()

        def backup(self, kind, *, repo):
            calls.append(("backup", kind, repo))
            stamp = datetime(2026, 12, 6, 5, repo, tzinfo=UTC)
            return BackupInfo(f"20261206-05000{repo}F", "full", stamp, stamp, 100, 40, repo=repo)

        def verify(self, *, repo):
            calls.append(("verify", repo))
            return VerifyResult(ok=True, report="status: ok")

    monkeypatch.setattr(services, "pgbackrest", lambda config=None: Tool())

    run = services.backup_take(kind="full", triggered_by="test")

    assert calls == [("backup", "full", 1), ("verify", 1), ("backup", "full", 2), ("verify", 2)]
    assert run.status == BackupRunStatus.SUCCEEDED
    assert set(run.details["repositories"]) == {"repo1", "repo2"}
    assert run.details["repositories"]["repo2"]["type"] == "posix"
    assert [r["name"] for r in services.backups_health()["repositories"]] == ["repo1", "repo2"]
    assert all(r["age_seconds"] < 60 for r in services.backups_health()["repositories"])
