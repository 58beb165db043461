"""Patient-facing messages never wait behind partner webhooks: their tasks go to their own
queue, production (compose.yaml) gives that queue workers of its own, and a real worker
layout sends a reminder at once while a slow partner holds a backlog of deliveries."""

import os
import shlex
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection, transaction

from config.celery import PATIENT_QUEUE, app

ROOT = Path(__file__).resolve().parents[2]
#: Queues partner webhooks are delivered from (first attempt, retries) and partner syncs.
PARTNER_QUEUES = {"integrations", "integrations-retry", "integrations-low"}
PATIENT_TASKS = [
    "clinic.message_deliver",  # every message: reminders, confirmations, dunning …
    "clinic.messages_retry",
    "clinic.portal_code_send",  # the portal's sign-in code
    "scheduling.reminders_48h",
    "scheduling.reminders_eve",
    "billing.dunning",
]


def compose_workers() -> dict[str, set[str]]:
    """The Celery workers of compose.yaml and the queues each consumes (all of them when
    started without --queues)."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    workers = {}
    for name, service in services.items():
        command = service.get("command") or []
        words = shlex.split(command) if isinstance(command, str) else list(command)
        if words[:2] == ["sh", "-c"]:  # a script that ends by exec'ing the worker
            words = shlex.split(words[2].replace("$$", "$"))
        if "celery" not in words or "worker" not in words:
            continue
        queues = set(settings.CUIDAR_QUEUES)
        for i, word in enumerate(words):
            if word.startswith("--queues=") or (word.startswith("-Q") and len(word) > 2):
                queues = set(word.split("=", 1)[-1].removeprefix("-Q").split(","))
            elif word in ("--queues", "-Q"):
                queues = set(words[i + 1].split(","))
        workers[name] = queues
    return workers


@pytest.mark.parametrize("task", PATIENT_TASKS)
def test_patient_facing_tasks_are_routed_to_the_patient_queue(task):
    assert app.amqp.router.route({}, task)["queue"].name == PATIENT_QUEUE


def test_a_partner_delivery_goes_to_a_partner_queue():
    assert app.amqp.router.route({}, "integrations.delivery_run")["queue"].name in PARTNER_QUEUES


@pytest.mark.django_db
def test_messages_and_partner_webhooks_are_sent_to_their_own_queues(
    clinic_a, patient_a, monkeypatch, django_capture_on_commit_callbacks
):
    from clinic.messaging import services as messaging
    from clinic.messaging.tasks import message_deliver_task
    from integrations import events
    from integrations.subscriptions import subscription_create
    from integrations.tasks import delivery_run_task

    sent = []
    for task in (message_deliver_task, delivery_run_task):
        monkeypatch.setattr(
            task, "apply_async", lambda *a, _t=task, **kw: sent.append((_t.name, kw["queue"]))
        )
    monkeypatch.setattr(settings, "CUIDAR_OUTBOX_COALESCE", False)
    subscription_create(
        clinic=clinic_a,
        name="Lab",
        url="https://lab.example.com/hook",
        event_types=["patient.created"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 1})
    with django_capture_on_commit_callbacks(execute=True):
        messaging.message_send(
            clinic=clinic_a, patient=patient_a, template="mensagem_livre",
            context={"text": "Olá"}, idempotency_key="queue-test",
        )  # fmt: skip

    assert ("integrations.delivery_run", "integrations") in sent
    assert ("clinic.message_deliver", PATIENT_QUEUE) in sent


def test_production_gives_patient_messages_workers_partners_cannot_fill():
    workers = compose_workers()
    consumed = set().union(*workers.values())
    assert consumed == set(settings.CUIDAR_QUEUES), "every queue has a worker"
    patient_workers = [queues for queues in workers.values() if PATIENT_QUEUE in queues]
    assert patient_workers
    for queues in patient_workers:
        assert not queues & PARTNER_QUEUES, f"a patient worker also serves {queues}"


def test_the_embedded_worker_consumes_every_queue():
    """`make run` starts its worker without --queues: it consumes CELERY_TASK_QUEUES."""
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == set(settings.CUIDAR_QUEUES)
    assert PATIENT_QUEUE in settings.CUIDAR_QUEUES


# --- A real worker layout, a slow partner and a reminder ------------------------------------
#: Each partner delivery takes this long (a slow partner, within the webhook read timeout) …
PARTNER_SECONDS = 9
#: … while the reminder must be sent within this, counted from its commit (a fraction of a
#: second when its worker is free; behind the partners, at least one whole delivery).
REMINDER_WITHIN = 5


class SlowPartner(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        SlowPartner.received.append(time.monotonic())
        time.sleep(PARTNER_SECONDS)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_partner():
    SlowPartner.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowPartner)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture
def compose_layout():
    """compose.yaml's Celery workers, each as one process with one slot (--pool=solo: the
    worst case), on Redis and the test database."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis broker: set CELERY_BROKER_URL=redis://…")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"  # the test database
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CUIDAR_WEBHOOKS_ALLOW_INTERNAL": "true",
    }
    app.control.purge()  # this broker's queues: nothing left over from an earlier run
    processes = []
    for name, queues in compose_workers().items():
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
            f"--queues={','.join(sorted(queues))}", f"--hostname={name}@queue-test",
            "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=WARNING",
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5) or []) < len(processes):
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(p.poll() is None for p in processes), "a worker exited"
    yield processes
    for process in processes:
        process.kill()
        process.wait(timeout=10)
    app.control.purge()


@pytest.mark.postgres
@pytest.mark.xdist_group("processes")  # with the other tests that start real processes
@pytest.mark.django_db(transaction=True)
def test_a_backlog_of_slow_partner_deliveries_does_not_delay_a_reminder(
    clinic_a, slow_partner, compose_layout, settings
):
    from clinic import services
    from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MessageStatus
    from clinic.messaging import services as messaging
    from clinic.messaging.models import OutboundMessage
    from integrations import events
    from integrations.subscriptions import subscription_create
    from tests.clinic.factories import PatientFactory

    settings.CUIDAR_WEBHOOKS_ALLOW_INTERNAL = True
    patient = PatientFactory(
        clinic=clinic_a, phone="+5511981234567", preferred_channel=ContactChannel.WHATSAPP
    )
    services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    app.conf.task_always_eager = False  # really through Redis
    subscription_create(
        clinic=clinic_a, name="Laboratório", url=slow_partner, event_types=["patient.created"]
    )
    with transaction.atomic():  # a flood: more deliveries than the partners' workers can take
        for n in range(12):
            events.publish("patient.created", clinic=clinic_a, payload={"patient_id": n})
    deadline = time.monotonic() + 60
    while not SlowPartner.received:  # the partners' workers are busy
        assert time.monotonic() < deadline, "no partner delivery started"
        time.sleep(0.05)

    with transaction.atomic():
        message = messaging.message_send(
            clinic=clinic_a, patient=patient, template="lembrete_consulta",
            context={"date": "25/11/2026", "time": "14:00"}, idempotency_key="reminder-1",
        )  # fmt: skip
    committed = time.monotonic()
    while True:
        status = OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)
        if status != MessageStatus.QUEUED or time.monotonic() - committed > 3 * PARTNER_SECONDS:
            break
        time.sleep(0.05)
    waited = time.monotonic() - committed

    assert status == MessageStatus.SENT
    assert waited < REMINDER_WITHIN, f"the reminder waited {waited:.1f} s behind partners"
    assert len(SlowPartner.received) < 12  # the partners' backlog was still there


@pytest.mark.django_db
def test_a_campaign_never_queues_ahead_of_sign_in_codes_and_reminders(
    clinic_a, patient_a, monkeypatch, django_capture_on_commit_callbacks
):
    """A campaign of thousands goes to the low-priority queue, also when the retry sweep
    picks it up again; a utility message stays on the patient queue."""
    from datetime import timedelta

    from django.utils import timezone

    from clinic.messaging import services as messaging
    from clinic.messaging.models import OutboundMessage
    from clinic.messaging.tasks import message_deliver_task
    from clinic.models import ConsentPurpose

    sent = []
    monkeypatch.setattr(
        message_deliver_task,
        "apply_async",
        lambda *a, **kw: sent.append((kw["args"][0], kw["queue"])),
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign = messaging.message_send(
            clinic=clinic_a, patient=patient_a, template="mensagem_livre",
            context={"text": "Promo"}, purpose=ConsentPurpose.MARKETING,
            idempotency_key="campaign-1",
        )  # fmt: skip
        reminder = messaging.message_send(
            clinic=clinic_a, patient=patient_a, template="mensagem_livre",
            context={"text": "Amanhã"}, idempotency_key="reminder-1",
        )  # fmt: skip
    assert sent == [(campaign.pk, "integrations-low"), (reminder.pk, PATIENT_QUEUE)]

    sent.clear()
    OutboundMessage.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert messaging.messages_retry_due() == 2
    assert sorted(sent) == sorted([(campaign.pk, "integrations-low"), (reminder.pk, PATIENT_QUEUE)])
