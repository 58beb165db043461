"""The docker compose stack's backups (issue 27): PostgreSQL with pgBackRest and a backup
worker beside it. Docker cannot run on this machine or in CI, so the files are checked
instead: the Dockerfile stages compose builds exist and install what the commands run,
the worker consumes only the backups queue and sees the database's files, socket and
pgBackRest configuration where its settings say, and the database archives WAL with the
command ``manage.py backup configure`` prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from config.celery import app
from integrations.backups.config import PgBackRestConfig

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def stages(dockerfile: str) -> dict[str, str]:
    """Each named stage's text (from its FROM to the next)."""
    found = {}
    parts = re.split(r"^(?=FROM )", dockerfile, flags=re.MULTILINE)
    for part in parts:
        match = re.match(r"FROM \S+ AS (\S+)", part)
        if match:
            found[match.group(1)] = part
    return found


def words(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def mounts(service: dict) -> dict[str, str]:
    """Container path → volume name."""
    found = {}
    for volume in service.get("volumes", []):
        name, path, *_mode = volume.split(":")
        found[path] = name
    return found


def shell(service: dict) -> str:
    """The worker's ``sh -c`` script, with compose's ``$$`` unescaped."""
    command = words(service["command"])
    assert command[:2] == ["sh", "-c"]
    return command[2].replace("$$", "$")


def test_the_plain_build_is_still_the_application_and_compose_names_every_target(
    compose, dockerfile
):
    named = stages(dockerfile)
    assert {"build", "runtime", "postgres", "backup", "app"} <= set(named)
    last = re.findall(r"^FROM \S+ AS (\S+)", dockerfile, flags=re.MULTILINE)[-1]
    assert last == "app"  # `docker build .` makes the web image, as before
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            assert build["target"] in named, name


def test_the_database_and_the_backup_worker_install_pgbackrest_and_matching_servers(
    compose, dockerfile
):
    named = stages(dockerfile)
    assert "pgbackrest" in named["postgres"]
    assert "pgbackrest" in named["backup"]
    assert '"postgresql-${PG_MAJOR}"' in named["backup"]
    major = re.search(r"^ARG PG_MAJOR=(\d+)$", dockerfile, flags=re.MULTILINE).group(1)
    assert compose["services"]["postgres"]["image"].endswith(f":{major}")
    assert "FROM postgres:${PG_MAJOR} AS postgres" in dockerfile
    # The worker runs as the database's owner: uid 999 in the official image.
    assert "--uid 999" in named["backup"]
    assert "USER postgres" in named["backup"]


def test_the_backup_worker_alone_consumes_the_backups_queue(compose):
    for task in ("integrations.backup_run", "integrations.backup_drill"):
        assert app.amqp.router.route({}, task)["queue"].name == "backups"
    consumers = []
    for name, service in compose["services"].items():
        command = service.get("command") or []
        text = shell(service) if words(command)[:2] == ["sh", "-c"] else " ".join(words(command))
        if "celery" in text and " worker" in text:
            queues = re.search(r"--queues[= ](\S+)", text)
            assert queues, f"{name} consumes every queue: the backups would land there"
            if "backups" in queues.group(1).split(","):
                consumers.append((name, queues.group(1)))
    assert consumers == [("worker-backup", "backups")]


def test_the_worker_sees_the_databases_files_socket_and_configuration(compose):
    postgres = compose["services"]["postgres"]
    worker = compose["services"]["worker-backup"]
    env = worker["environment"]
    shared = mounts(postgres)
    mine = mounts(worker)
    data = env["CUIDAR_BACKUP_PG_DATA"]
    assert shared[data] == mine[data] == "postgres-data"  # pgBackRest reads the cluster here
    socket = env["CUIDAR_BACKUP_PG_SOCKET_PATH"]
    assert shared[socket] == mine[socket] == "postgres-socket"
    config_dir = str(Path(env["CUIDAR_BACKUP_PGBACKREST_CONFIG"]).parent)
    assert shared[config_dir] == mine[config_dir] == "backup-config"
    assert env["CUIDAR_BACKUP_DRILL_DIR"].startswith(env["CUIDAR_BACKUP_DIR"])
    assert mine[env["CUIDAR_BACKUP_DIR"]] == "backup-scratch"
    assert env["CUIDAR_BACKUP_PG_USER"] == postgres["environment"]["POSTGRES_USER"]
    # The application's database settings too (a service's environment replaces, not
    # merges, the anchor's).
    assert env["DATABASE_URL"] == compose["x-cuidar-env"]["DATABASE_URL"]
    declared = set(compose["volumes"])
    for service in (postgres, worker):
        assert set(mounts(service).values()) <= declared


def test_the_database_archives_with_the_command_backup_configure_prints(compose, settings):
    env = compose["services"]["worker-backup"]["environment"]
    settings.CUIDAR_BACKUP_S3 = {"bucket": "b", "key": "k", "key_secret": "s"}
    settings.CUIDAR_BACKUP_CIPHER_PASS = "pass"
    settings.CUIDAR_BACKUP_PGBACKREST_CONFIG = env["CUIDAR_BACKUP_PGBACKREST_CONFIG"]
    settings.CUIDAR_BACKUP_PG_DATA = env["CUIDAR_BACKUP_PG_DATA"]
    expected = PgBackRestConfig.from_settings().postgresql_settings()
    command = words(compose["services"]["postgres"]["command"])
    assert command[0] == "postgres"
    assert set(command[1::2]) == {"-c"}
    options = dict(arg.split("=", 1) for arg in command[2::2])
    guard = f"test ! -f {env['CUIDAR_BACKUP_PGBACKREST_CONFIG']} || "
    assert options.pop("archive_command") == guard + expected.pop("archive_command")
    assert options == expected  # wal_level, archive_mode, archive_timeout (RPO), senders


def test_the_worker_configures_pgbackrest_only_when_a_repository_is_set(compose):
    script = shell(compose["services"]["worker-backup"])
    assert 'if [ -n "${CUIDAR_BACKUP_S3_BUCKET:-}${CUIDAR_BACKUP_REPO2_PATH:-}" ]' in script
    assert "python manage.py backup configure" in script
    assert (ROOT / "manage.py").is_file()
    assert (ROOT / "integrations/management/commands/backup.py").is_file()
    assert "exec celery -A config worker" in script
    assert (ROOT / "config/celery.py").is_file()
