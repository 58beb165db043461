"""Coalesced dispatch (production, with Redis): a burst of transactions costs one drain
task, and nothing committed while a drain runs is left behind."""

import pytest
from django.core.cache import cache
from django.db import transaction

from integrations import events, outbox, tasks
from integrations.choices import DeliveryStatus
from integrations.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def coalescing(settings, monkeypatch):
    settings.CUIDAR_OUTBOX_COALESCE = True
    cache.delete(outbox.DRAIN_FLAG)
    sent = {"drain": 0, "dispatch": 0}
    monkeypatch.setattr(
        tasks.outbox_drain_task, "delay", lambda: sent.__setitem__("drain", sent["drain"] + 1)
    )
    monkeypatch.setattr(
        tasks.outbox_dispatch_task,
        "delay",
        lambda ids: sent.__setitem__("dispatch", sent["dispatch"] + 1),
    )
    yield sent
    cache.delete(outbox.DRAIN_FLAG)


@pytest.fixture
def counter():
    calls = []
    events.subscriber("patient.created", name="tests.count")(lambda e, d: calls.append(e.pk))
    yield calls
    events.unsubscribe("handler:tests.count")


def publish_in_own_transactions(clinic, n, capture):
    for i in range(n):
        with capture(execute=True), transaction.atomic():
            events.publish("patient.created", clinic=clinic, payload={"n": i})


def test_a_burst_of_transactions_sends_one_drain_task(
    clinic_a, coalescing, counter, django_capture_on_commit_callbacks
):
    publish_in_own_transactions(clinic_a, 5, django_capture_on_commit_callbacks)
    assert coalescing == {"drain": 1, "dispatch": 0}
    assert outbox.outbox_drain() == 5
    assert len(counter) == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}


def test_an_event_committed_during_a_drain_asks_for_another(
    clinic_a, coalescing, counter, django_capture_on_commit_callbacks
):
    publish_in_own_transactions(clinic_a, 1, django_capture_on_commit_callbacks)
    outbox.outbox_drain()  # clears the flag first
    publish_in_own_transactions(clinic_a, 1, django_capture_on_commit_callbacks)
    assert coalescing["drain"] == 2
    outbox.outbox_drain()
    assert len(counter) == 2


def test_a_long_drain_hands_over_to_a_new_task(
    clinic_a, coalescing, counter, django_capture_on_commit_callbacks
):
    publish_in_own_transactions(clinic_a, 7, django_capture_on_commit_callbacks)
    cache.delete(outbox.DRAIN_FLAG)
    assert outbox.outbox_drain(batch_size=2, max_batches=2) == 4
    assert coalescing["drain"] == 2  # the burst's task, and the hand-over
    assert outbox.outbox_drain(batch_size=2, max_batches=5) == 3
    assert len(counter) == 7


def test_partner_webhooks_are_enqueued_once_however_many_drains_run(
    clinic_a, coalescing, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.subscriptions import subscription_create

    subscription_create(
        clinic=clinic_a, name="Lab", url="https://lab.example/hook", event_types=["patient.created"]
    )
    enqueued = []
    monkeypatch.setattr(
        outbox, "enqueue", lambda delivery, countdown=None: enqueued.append(delivery.pk)
    )
    publish_in_own_transactions(clinic_a, 1, django_capture_on_commit_callbacks)
    outbox.outbox_drain()
    outbox.outbox_drain()
    assert len(enqueued) == 1
    assert Delivery.objects.get().status == DeliveryStatus.PENDING  # its own task runs it


def test_without_a_shared_cache_each_transaction_dispatches_its_own_events(
    clinic_a, coalescing, settings, counter, django_capture_on_commit_callbacks
):
    settings.CUIDAR_OUTBOX_COALESCE = False
    publish_in_own_transactions(clinic_a, 3, django_capture_on_commit_callbacks)
    assert coalescing == {"drain": 0, "dispatch": 3}
