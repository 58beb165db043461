"""Production settings: refuse to start without secrets, pass Django's deploy checks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "x9!prod-" + "k" * 60,
    "ALLOWED_HOSTS": "cuidar.example.com",
    "CUIDAR_FERNET_KEYS": "q3uSmYD3F8bE2hAqg9lJx6h2yS6nq5m0vQyGAtGQk1Q=",
    "REDIS_URL": "redis://redis.example.com:6379/0",  # only named: the check connects nowhere
}


#: Set by the browser tests' session (Playwright's event loop); a deployment never has it.
NOT_INHERITED = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k not in NOT_INHERITED}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deploy_check_warns_when_production_has_no_redis():
    env = {k: v for k, v in PRODUCTION.items() if k != "REDIS_URL"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=env)
    assert result.returncode != 0
    assert "cuidar.W001" in result.stderr + result.stdout
    assert "REDIS_URL is not set" in result.stderr + result.stdout


def test_only_the_deploy_check_asks_for_redis(settings):
    from django.core import checks

    settings.REDIS_URL = ""
    assert "cuidar.W001" in [m.id for m in checks.run_checks(include_deployment_checks=True)]
    assert "cuidar.W001" not in [m.id for m in checks.run_checks()]


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "CUIDAR_FERNET_KEYS"])
def test_it_refuses_to_start_in_production_without(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env_overrides=env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_a_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("f1le-" + "s" * 60 + "\n")
    env = {**PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=env)
    assert result.returncode == 0, result.stderr


def test_seed_demo_is_refused_in_production():
    result = manage("seed_demo", env_overrides=PRODUCTION)
    assert result.returncode != 0
    assert "refused with DEBUG off" in result.stderr


def test_the_default_language_is_brazilian_portuguese_with_english_available(settings):
    assert settings.LANGUAGE_CODE == "pt-br"
    assert "en" in dict(settings.LANGUAGES)


def test_celery_is_configured_for_safe_redelivery(settings):
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"]
    queues = {q.name for q in app.conf.task_queues}
    assert {
        "integrations-high",
        "integrations",
        "notifications",
        "integrations-low",
        "integrations-retry",
    } <= queues


def _database_settings(**env_overrides) -> str:
    """``DATABASES["default"]`` as the settings build it in a fresh process."""
    code = (
        "import json; from django.conf import settings as s;"
        "print(json.dumps(s.DATABASES['default'], default=str))"
    )
    env = {**os.environ, "DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}
    for name in ("CONN_MAX_AGE", "DATABASE_PREPARED_STATEMENTS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, **env_overrides, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postgres_connections_are_kept_between_requests():
    """env.db() sets CONN_MAX_AGE=0 itself; a reconnect per request or Celery task cost the
    outbox worker more than its work (found by bench/outbox.py)."""
    database = _database_settings()
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (60, True)


def test_postgres_uses_the_fast_backend_and_prepared_statements_unless_told_not_to():
    database = _database_settings()
    assert database["ENGINE"] == "config.postgresql"
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 5
    assert database["OPTIONS"]["options"] == "-c plan_cache_mode=force_generic_plan"
    behind_pgbouncer = _database_settings(DATABASE_PREPARED_STATEMENTS="False")
    for option in ("server_side_binding", "prepare_threshold", "options"):
        assert option not in behind_pgbouncer.get("OPTIONS", {})
