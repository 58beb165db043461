"""The bulk path's deliveries (reminder sweeps): one task per bounded batch of messages,
routed like a single message, and as safe redelivered as one message's task."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MessageStatus
from clinic.messaging import delivery
from clinic.messaging import services as messaging
from clinic.messaging.models import OutboundMessage
from clinic.messaging.tasks import messages_deliver_batch_task
from config.celery import PATIENT_QUEUE, app
from integrations import breakers
from integrations.console import ConsoleMessaging
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """A SIGKILL seen from inside: nothing after it runs, no ``except Exception`` catches it."""


@pytest.fixture(autouse=True)
def _fresh_breakers():
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


def patients(clinic, n):
    made = []
    for i in range(n):
        patient = PatientFactory(
            clinic=clinic, phone=f"+55119812{i:05d}", preferred_channel=ContactChannel.WHATSAPP
        )
        services.consent_record(
            patient=patient,
            channel=ContactChannel.WHATSAPP,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )
        made.append(patient)
    return made


def send_many(clinic, people, capture):
    with capture(execute=False):
        messaging.messages_send_many(
            clinic=clinic,
            template="mensagem_livre",
            messages=[(p, {"text": "Amanhã"}, f"k{p.pk}") for p in people],
        )
    return list(OutboundMessage.objects.order_by("pk").values_list("pk", flat=True))


def test_the_bulk_path_enqueues_one_task_per_fifty_messages_on_the_patient_queue(
    clinic_a, monkeypatch, django_capture_on_commit_callbacks
):
    enqueued = []
    monkeypatch.setattr(
        messages_deliver_batch_task,
        "apply_async",
        lambda *a, **kw: enqueued.append((kw["args"][0], kw["queue"])),
    )
    with django_capture_on_commit_callbacks(execute=True):
        messaging.messages_send_many(
            clinic=clinic_a,
            template="mensagem_livre",
            messages=[(p, {"text": "Amanhã"}, f"k{p.pk}") for p in patients(clinic_a, 120)],
        )

    ids = list(OutboundMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert [len(batch) for batch, _queue in enqueued] == [50, 50, 20]
    assert [i for batch, _queue in enqueued for i in batch] == ids
    assert {queue for _batch, queue in enqueued} == {PATIENT_QUEUE}
    assert app.amqp.router.route({}, "clinic.messages_deliver_batch")["queue"].name == (
        PATIENT_QUEUE
    )


@pytest.fixture
def provider_sends(monkeypatch):
    """Every message the console provider took, counted outside the database;
    ``kill_after(n)`` kills the worker right after the provider took the n-th message."""
    original = ConsoleMessaging.send
    state = {"kill_at": None}

    class Sends(list):
        def kill_after(self, n):
            state["kill_at"] = n

    sends = Sends()

    def send(self, message):
        result = original(self, message)
        sends.append(message.idempotency_key)
        if len(sends) == state["kill_at"]:
            state["kill_at"] = None
            raise WorkerKilled
        return result

    monkeypatch.setattr(ConsoleMessaging, "send", send)
    return sends


def test_a_batch_task_delivers_every_message_of_its_batch_once(
    clinic_a, provider_sends, django_capture_on_commit_callbacks
):
    people = patients(clinic_a, 3)
    ids = send_many(clinic_a, people, django_capture_on_commit_callbacks)

    messages_deliver_batch_task(ids)
    messages_deliver_batch_task(ids)  # redelivered (acks late): nothing goes twice

    assert sorted(provider_sends) == sorted(f"k{p.pk}:whatsapp" for p in people)
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_a_batch_task_redelivered_after_its_worker_died_mid_batch_sends_nothing_twice(
    clinic_a, provider_sends, django_capture_on_commit_callbacks
):
    people = patients(clinic_a, 4)
    ids = send_many(clinic_a, people, django_capture_on_commit_callbacks)
    provider_sends.kill_after(2)
    with pytest.raises(WorkerKilled):
        messages_deliver_batch_task(ids)

    messages_deliver_batch_task(ids)  # the task, redelivered to another worker
    messaging.messages_retry_due()  # and the retry sweep, for good measure
    later = timezone.now() + delivery.send_lease() + timedelta(seconds=1)
    for message_id in ids:
        messaging.message_deliver(message_id=message_id, now=later)

    # Each patient got the reminder once: the one whose send died is uncertain, not resent.
    assert sorted(provider_sends) == sorted(f"k{p.pk}:whatsapp" for p in people)
    statuses = dict(OutboundMessage.objects.values_list("pk", "status"))
    assert statuses[ids[1]] == MessageStatus.UNCERTAIN
    assert [statuses[i] for i in (ids[0], ids[2], ids[3])] == [MessageStatus.SENT] * 3


def test_a_message_recorded_in_bulk_is_the_row_a_single_send_records(
    clinic_a, django_capture_on_commit_callbacks
):
    alone, many = patients(clinic_a, 2)
    context = {"date": "24/11/2026", "time": "09:00", "confirm_link": "https://x/c"}
    with django_capture_on_commit_callbacks(execute=False):
        one = messaging.message_send(
            clinic=clinic_a, patient=alone, template="lembrete_vespera", context=context,
            idempotency_key="alone",
        )  # fmt: skip
        messaging.messages_send_many(
            clinic=clinic_a, template="lembrete_vespera", messages=[(many, context, "many")]
        )

    def row(message):
        return {
            f.attname: getattr(message, f.attname)
            for f in OutboundMessage._meta.concrete_fields
            if f.attname not in {"id", "patient_id", "idempotency_key", "created_at"}
        }

    bulk = OutboundMessage.objects.get(idempotency_key="many")
    one.refresh_from_db()
    assert row(bulk) == row(one)
    assert bulk.template_variables and bulk.created_at is not None
