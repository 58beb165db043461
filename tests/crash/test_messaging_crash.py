"""A real Celery worker killed with SIGKILL, again and again, while it delivers a batch of
1,000 reminders: none is sent twice, none is lost.

Two worker processes (``celery -A config worker --pool=solo``) consume the notifications
queue on Redis and write to this test's PostgreSQL database; the test kills one of them
every couple of seconds and starts it again, as an OOM killer or a deploy would. The
console provider appends the key of every send call to a file (``CUIDAR_CONSOLE_SEND_LOG``),
outside the database, so a send cannot be hidden by a rolled-back transaction.

Reminders are at-most-once: a send the worker died in the middle of is marked "uncertain"
and shown to the desk (it may or may not have gone out), never sent again. "Lost" means a
message left queued, failed, or silently dropped: none may be. The periodic sweep
(``messages_retry_due``, every minute in production) is run by the test.

Runs in CI (PostgreSQL + Redis). Locally: DATABASE_URL=postgres://… and
CELERY_BROKER_URL=redis://… .
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MessageStatus
from clinic.messaging import services as messaging
from clinic.messaging.models import OutboundMessage
from tests.clinic.factories import PatientFactory

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 1000
PATIENTS = 50
KILLS = 8
LEASE = 3  # seconds: a live send takes milliseconds
DEADLINE = 150  # seconds for the whole run (about 40 on an idle machine)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Worker:
    """One prefork worker on the notifications queue, in its own process group: its pool
    processes can be killed one by one (an OOM kill), or the whole worker at once (kill -9
    of the container), and it is started again."""

    def __init__(self, tmp_path: Path, send_log: Path):
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@"
                f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "CONN_MAX_AGE": "60",
            "CUIDAR_MESSAGE_SEND_LEASE": str(LEASE),
            "CUIDAR_CONSOLE_SEND_LOG": str(send_log),
        }
        self.log = tmp_path / "worker.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker",
                    "--pool=prefork", "--concurrency=2", "--hostname=crash@%h",
                    "--queues=notifications", "--without-mingle", "--without-gossip",
                    "--without-heartbeat", "--loglevel=WARNING",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    def wait_consuming(self, timeout: float = 60) -> None:
        """Until the worker printed its start-up banner (it then consumes) and forked its
        pool."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            banners = self.log.read_text(errors="replace").count("-------------- crash@")
            if banners >= self.starts and len(self.children()) >= 2:
                return
            time.sleep(0.1)

    def children(self) -> list[int]:
        pid = self.process.pid
        try:
            return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def kill_a_pool_process(self) -> None:
        children = self.children()
        if children:
            os.kill(random.choice(children), signal.SIGKILL)
            self.kills += 1

    def kill_all(self) -> None:
        """SIGKILL to the worker and its pool at once; then it is started again."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.kills += 1
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def celery_on_redis():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis broker: set CELERY_BROKER_URL=redis://…")
    from config.celery import app

    app.conf.task_always_eager = False  # really go through Redis
    app.control.purge()
    yield app
    app.control.purge()


def queue_reminders(clinic) -> list[int]:
    patients = PatientFactory.create_batch(PATIENTS, clinic=clinic)
    for patient in patients:
        services.consent_record(
            patient=patient,
            channel=ContactChannel.WHATSAPP,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )
    messages = OutboundMessage.objects.bulk_create(
        OutboundMessage(
            clinic=clinic,
            patient=patients[i % PATIENTS],
            template="lembrete_vespera",
            purpose=ConsentPurpose.UTILITY,
            idempotency_key=f"crash:{i}",
            body=f"Lembrete {i}: sua consulta é amanhã.",
        )
        for i in range(MESSAGES)
    )
    return [m.pk for m in messages]


def counts() -> Counter:
    return Counter(OutboundMessage.objects.values_list("status", flat=True))


def test_a_worker_killed_again_and_again_mid_batch_loses_no_reminder_and_sends_none_twice(
    clinic_a, celery_on_redis, tmp_path, settings
):
    from clinic.messaging.tasks import message_deliver_task

    settings.CUIDAR_MESSAGE_SEND_LEASE = LEASE
    send_log = tmp_path / "sends.log"
    send_log.touch()
    ids = queue_reminders(clinic_a)
    worker = Worker(tmp_path, send_log)
    started = time.monotonic()
    try:
        worker.start()
        for message_id in ids:
            message_deliver_task.apply_async(args=[message_id], queue="notifications")

        # While the batch is delivered: SIGKILL a pool process a moment after the pool is
        # up (Celery forks another and, acks late, redelivers its task at once), and every
        # fourth time the whole worker (its tasks are lost with it), started again.
        rng = random.Random(16)
        while worker.kills < KILLS and counts()[MessageStatus.QUEUED]:
            worker.wait_consuming()
            time.sleep(rng.uniform(0.3, 1.0))
            if worker.kills % 4 == 3:
                worker.kill_all()
                worker.start()
            else:
                worker.kill_a_pool_process()
        kills_during_batch = worker.kills
        batch_seconds = time.monotonic() - started

        # The tasks the killed workers held are lost with them (acks late, but Redis gives
        # them back only after its visibility timeout): once the queue is drained, the
        # periodic sweep finds their messages (3 minutes ahead: they are all "stale").
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        while counts()[MessageStatus.QUEUED] and time.monotonic() - started < DEADLINE:
            time.sleep(0.5)
            if broker.llen("notifications") == 0:
                time.sleep(LEASE)
                messaging.messages_retry_due(now=timezone.now() + timedelta(minutes=3))
    finally:
        worker.stop()
    elapsed = time.monotonic() - started

    by_status = counts()
    sends = Counter(send_log.read_text().split())
    keys = dict(OutboundMessage.objects.values_list("idempotency_key", "status"))
    print(  # the figures, for the report (pytest -s)
        f"\n{MESSAGES} reminders, {kills_during_batch} SIGKILLs in {batch_seconds:.1f} s, "
        f"all done in {elapsed:.1f} s: "
        f"{dict(by_status)}; provider calls {sum(sends.values())}"
    )

    assert kills_during_batch >= KILLS // 2, "the batch ended before the workers were killed"
    # 0 duplicates: no key reached the provider twice.
    assert [key for key, n in sends.items() if n > 1] == []
    # 0 lost: every reminder is sent, or marked uncertain for the desk.
    assert set(by_status) <= {"sent", "uncertain"}, by_status
    assert sum(by_status.values()) == MESSAGES
    # Every reminder marked sent did reach the provider; uncertain ones at most once.
    sent = {key for key, status in keys.items() if status == MessageStatus.SENT}
    assert {f"{key}:whatsapp" for key in sent} <= set(sends)
    assert set(sends) <= {f"{key}:whatsapp" for key in keys}
