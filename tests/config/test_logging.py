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
