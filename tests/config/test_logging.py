"""Quiet, correct logs: a refused request is one line, written once."""

import logging

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _handlers_reached(logger: logging.Logger) -> list[logging.Handler]:
    """Every handler a record of this logger is written by (pytest's capture excluded)."""
    handlers = []
    while logger:
        handlers += [h for h in logger.handlers if "_pytest" not in type(h).__module__]
        if not logger.propagate:
            break
        logger = logger.parent
    return handlers


def test_a_receptionists_403_is_logged_as_one_line_without_traceback(
    client_for, receptionist_a, caplog
):
    client = client_for(receptionist_a)
    with caplog.at_level(logging.INFO):
        response = client.get(reverse("admin:clinic_auditentry_changelist"))

    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("Forbidden (Permission denied)")
    assert records[0].exc_info is None
    assert "Traceback" not in caplog.text


def test_a_request_log_line_is_written_by_one_handler():
    assert len(_handlers_reached(logging.getLogger("django.request"))) == 1


def test_a_server_error_keeps_its_traceback(rf, caplog):
    from django.http import HttpResponseServerError
    from django.utils.log import log_response

    try:
        raise RuntimeError("broken")
    except RuntimeError as exc:
        with caplog.at_level(logging.INFO):
            # What Django's handler does with an unhandled exception.
            log_response(
                "Internal Server Error: %s",
                "/boom/",
                response=HttpResponseServerError(),
                request=rf.get("/boom/"),
                exception=exc,
            )

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None
    assert "Traceback" in caplog.text


def test_the_embedded_broker_connects_without_a_hostname_warning(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CELERY_BROKER_URL", "DATABASE_URL", "REDIS_URL"}
    }
    env["CUIDAR_VAR_DIR"] = str(tmp_path)
    script = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    conn.ensure_connection(max_retries=1)\n"
        "    print(conn.as_uri())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("filesystem://")
    assert "No hostname was supplied" not in result.stderr + result.stdout
