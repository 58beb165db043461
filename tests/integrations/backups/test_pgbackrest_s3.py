"""pgBackRest for real: a throwaway PostgreSQL cluster archives its WAL to an encrypted S3
repository on a local S3-compatible server (moto, over TLS); a point-in-time restore into
another directory brings back exactly the rows written up to T; the repository holds no
plaintext row; a damaged backup file makes ``verify`` fail; the restore drill restores the
latest backup of a database with Cuidar's schema and passes its checks.

Needs the pgbackrest Debian package and PostgreSQL's server programs (.ci/run installs
pgbackrest); fails without them, never skipped.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

from integrations.backups.cluster import Cluster, default_run_as, give_to
from integrations.backups.config import PgBackRestConfig, Repository
from integrations.backups.pgbackrest import PgBackRest
from integrations.backups.runner import run
from tests.conftest import POSTGRES_ONLY

from .servers import KEY, REGION, SECRET, S3Server

# ``django_db`` although they do not touch Django's database: pytest-django runs such tests
# before the transactional drill test, whose copy of the test database would otherwise
# sit in the repository that their verifications read back (three times as long).
pytestmark = [pytest.mark.processes, pytest.mark.django_db]

BUCKET = "cuidar-backups"
CIPHER_PASS = "a-long-test-passphrase-that-only-this-test-knows"
MARK = "PLAINTEXT-ROW-"  # every test row's note starts with it


@pytest.fixture(scope="module")
def workdir():
    # Not pytest's tmp_path: PostgreSQL (the postgres user, when the tests run as root)
    # must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="cuidar-backup-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(workdir):
    server = S3Server(workdir).start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


def _config(workdir: Path, s3: S3Server, source: Cluster) -> PgBackRestConfig:
    return PgBackRestConfig(
        stanza="test",
        repositories=(
            Repository(
                type="s3",
                path="/cuidar",
                cipher_pass=CIPHER_PASS,
                endpoint="localhost",
                port=s3.port,
                bucket=BUCKET,
                region=REGION,
                key=KEY,
                key_secret=SECRET,
                uri_style="path",
                ca_file=str(s3.ca),
            ),
        ),
        pg_path=str(source.data_dir),
        pg_port=source.port,
        pg_socket_path=str(source.run_dir),
        # Uncompressed, so that only the encryption can hide the rows in the repository.
        compress_type="none",
        log_path=str(workdir / "log"),
        lock_path=str(workdir / "lock"),
        spool_path=str(workdir / "spool"),
        config_path=str(workdir / "pgbackrest.conf"),
    )


@pytest.fixture(scope="module")
def source(workdir, s3):
    """The "production" cluster: archiving every WAL segment to the S3 repository."""
    run_as = default_run_as()
    cluster = Cluster(workdir / "source", run_dir=workdir / "run-source", run_as=run_as)
    cluster.initdb()
    config = _config(workdir, s3, cluster)
    for name in ("log", "lock", "spool"):
        (workdir / name).mkdir(exist_ok=True)
    config.write()
    give_to(workdir / "pgbackrest.conf", run_as)
    for name in ("log", "lock", "spool"):
        give_to(workdir / name, run_as)
    cluster.configure(config.postgresql_settings())
    cluster.start()
    tool = PgBackRest(config, run_as=run_as)
    tool.stanza_create()
    tool.check()
    yield cluster, tool
    cluster.remove()


def write_rows(cluster: Cluster, first: int, last: int) -> None:
    cluster.psql(
        f"INSERT INTO visits SELECT g, '{MARK}' || g FROM generate_series({first}, {last}) g"  # noqa: S608
    )


@pytest.fixture(scope="module")
def history(source):
    """Rows 1–100, a full backup, rows 101–200, time T, rows 201–300, all archived."""
    cluster, tool = source
    cluster.psql("CREATE TABLE visits (id int PRIMARY KEY, note text NOT NULL)")
    write_rows(cluster, 1, 100)
    began = time.monotonic()
    backup = tool.backup("full")
    backup_seconds = time.monotonic() - began
    write_rows(cluster, 101, 200)
    time.sleep(1.1)  # commit times on either side of T are a second apart
    target = datetime.fromisoformat(cluster.psql("SELECT now()"))
    time.sleep(1.1)
    write_rows(cluster, 201, 300)
    tool.check()  # switches the WAL segment and waits until it is in the archive
    return {"target": target, "backup": backup, "backup_seconds": backup_seconds}


def test_a_point_in_time_restore_brings_back_exactly_the_rows_up_to_t(workdir, source, history):
    cluster, tool = source
    assert history["backup"].type == "full"
    assert int(cluster.psql("SELECT count(*) FROM visits")) == 300

    restored = Cluster(
        workdir / "restored", run_dir=workdir / "run-restored", run_as=default_run_as()
    )
    restored.data_dir.mkdir()
    restored.data_dir.chmod(0o700)
    give_to(restored.data_dir, restored.run_as)
    try:
        began = time.monotonic()
        tool.restore(pg_path=str(restored.data_dir), target=history["target"])
        restored.start(options={"archive_mode": "off"})
        restored.wait_until_promoted()
        rto = time.monotonic() - began
        rows = restored.psql("SELECT count(*), min(id), max(id) FROM visits")
        assert rows == "200|1|200"
        assert restored.psql("SELECT count(*) FROM visits WHERE note <> 'x' || id") == "200"
        assert rto < 120
    finally:
        restored.remove()
    # The source cluster is untouched by the restore beside it.
    assert int(cluster.psql("SELECT count(*) FROM visits")) == 300


def test_the_repository_holds_no_plaintext_row(source, history, s3):
    cluster, _tool = source
    objects = s3.objects(BUCKET)
    backup_files = [key for key in objects if "/backup/test/" in key and "/pg_data/" in key]
    wal_files = [key for key in objects if "/archive/test/" in key and key[-1] != "/"]
    assert backup_files and wal_files
    for key, content in objects.items():
        assert MARK.encode() not in content, key
        if key.endswith((".info", ".copy")) or "/pg_data/" in key or "/archive/test/15-1/" in key:
            assert content.startswith(b"Salted__"), key  # OpenSSL's aes-256-cbc envelope
    # The scan would have found them: the cluster's own files hold the rows in the clear.
    data = cluster.data_dir
    found = any(
        MARK.encode() in path.read_bytes()
        for path in (data / "base").rglob("*")
        if path.is_file() and path.stat().st_size < 50_000_000
    )
    assert found


def test_a_damaged_backup_file_makes_verify_fail(source, history, s3):
    _cluster, tool = source
    assert tool.verify().ok
    client = s3.client()
    label = history["backup"].label
    key = next(
        k
        for k in s3.objects(BUCKET)
        if f"/backup/test/{label}/pg_data/base/" in k and not k.endswith("/")
    )
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(damaged))
    try:
        result = tool.verify()
        assert not result.ok
        assert "checksum invalid: 1" in result.report
    finally:
        client.put_object(Bucket=BUCKET, Key=key, Body=original)
    assert tool.verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason=POSTGRES_ONLY)
def test_the_drill_restores_a_cuidar_database_and_records_rto_and_rpo(
    workdir, source, history, settings
):
    """The drill on a copy of the test database (Cuidar's schema, every migration)."""
    from integrations.backups.choices import BackupRunStatus
    from integrations.backups.drill import drill_run

    cluster, tool = source
    dbname = connection.settings_dict["NAME"]
    dump = workdir / "cuidar.sql"
    db = connection.settings_dict
    run(
        [
            str(Path(cluster.bindir) / "pg_dump"),
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"] or "postgres",
            "--no-owner",
            "--no-privileges",
            "-f",
            str(dump),
            dbname,
        ],
        env={"PGPASSWORD": db.get("PASSWORD") or ""},
        timeout=300,
    )
    dump.chmod(0o644)
    cluster.psql(f'CREATE DATABASE "{dbname}"')
    run(
        [
            str(Path(cluster.bindir) / "psql"),
            "-h",
            str(cluster.run_dir),
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-d",
            dbname,
            "-v",
            "ON_ERROR_STOP=1",
            "-qX",
            "-f",
            str(dump),
        ],
        as_user=cluster.run_as,
        timeout=300,
    )
    tool.backup("diff")
    tool.check()
    settings.CUIDAR_BACKUP_DRILL_DIR = str(workdir / "drill")
    (workdir / "drill").mkdir(exist_ok=True)

    began = datetime.now(UTC)
    drill = drill_run(triggered_by="test", config=tool.config)

    checks = {c["name"]: c for c in drill.details["checks"]}
    assert drill.status == BackupRunStatus.SUCCEEDED, checks
    assert {"migrations", "row_counts", "file_references"} <= set(checks)
    assert all(c["ok"] for c in checks.values())
    assert 0 < drill.rto_seconds < 300
    assert drill.rpo_seconds is not None and 0 <= drill.rpo_seconds < 600
    assert drill.restored_until is not None and drill.restored_until <= datetime.now(UTC)
    assert drill.started_at >= began.replace(microsecond=0)
    assert not (workdir / "drill" / f"drill-{drill.pk}").exists()
