"""The console providers also write what they would have sent to the log (`make run`'s
terminal): the demo's portal sign-in code is read there, no admin page needed."""

import logging

import pytest

from integrations import registry
from integrations.base import MessageRequest
from integrations.chains import chain_for

pytestmark = pytest.mark.django_db


def send(clinic, kind, message):
    (account,) = chain_for(clinic, kind)
    return registry.get(kind, "console")(account).send(message)


def console_lines(caplog):
    return [r for r in caplog.records if r.name == "integrations.console"]


@pytest.mark.parametrize("kind", ["whatsapp", "sms"])
def test_a_console_message_is_written_to_the_log_at_the_level_make_run_shows(
    kind, clinic_a, settings, caplog
):
    settings.DEBUG = True  # as under `make run`
    # No caplog.at_level: the project's own LOGGING decides whether the line shows.
    send(
        clinic_a, kind, MessageRequest(to="+5511999990000", text="Seu código: 123456\nVale 10 min")
    )

    (record,) = console_lines(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"console {kind} → +5511999990000: Seu código: 123456 ⏎ Vale 10 min"
    )


def test_a_console_email_is_logged_with_its_subject(clinic_a, settings, caplog):
    settings.DEBUG = True
    send(clinic_a, "email", MessageRequest(to="ana@example.com", subject="Código", text="123456"))

    (record,) = console_lines(caplog)
    assert record.getMessage() == "console email → ana@example.com: Código ⏎ 123456"


def test_with_debug_off_the_log_line_leaves_the_patients_message_out(clinic_a, settings, caplog):
    settings.DEBUG = False
    send(clinic_a, "whatsapp", MessageRequest(to="+5511999990000", text="Seu código: 123456"))

    (record,) = console_lines(caplog)
    assert "123456" not in record.getMessage()
    assert record.getMessage().startswith("console whatsapp → +5511999990000: ")


def test_a_replayed_send_is_not_logged_twice(clinic_a, settings, caplog):
    settings.DEBUG = True
    message = MessageRequest(to="+5511999990000", text="Oi", idempotency_key="k1")
    send(clinic_a, "whatsapp", message)
    send(clinic_a, "whatsapp", message)

    assert len(console_lines(caplog)) == 1


def test_reception_reads_its_own_clinics_console_records_and_cannot_change_them(
    clinic_a, clinic_b, receptionist_a, client_for
):
    from django.urls import reverse

    from integrations.models import ConsoleRecord

    send(clinic_a, "whatsapp", MessageRequest(to="+5511911110000", text="Alfa 111111"))
    send(clinic_b, "whatsapp", MessageRequest(to="+5511922220000", text="Beta 222222"))
    client = client_for(receptionist_a)

    page = client.get(reverse("admin:integrations_consolerecord_changelist"))
    assert page.status_code == 200
    assert "+5511911110000" in page.content.decode()
    assert "+5511922220000" not in page.content.decode()

    own = ConsoleRecord.objects.get(clinic=clinic_a)
    other = ConsoleRecord.objects.get(clinic=clinic_b)
    detail = client.get(reverse("admin:integrations_consolerecord_change", args=[own.pk]))
    assert detail.status_code == 200
    assert "Alfa 111111" in detail.content.decode()
    assert b'name="_save"' not in detail.content
    assert client.get(
        reverse("admin:integrations_consolerecord_change", args=[other.pk])
    ).status_code in (302, 404)
    assert (
        client.post(reverse("admin:integrations_consolerecord_delete", args=[own.pk])).status_code
        == 403
    )
