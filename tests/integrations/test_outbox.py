"""Domain events through the transactional outbox: published with the change or not at all,
delivered to every subscriber once in effect, retried with backoff, swept when lost, buried
after 5 attempts, and retried from the dead-letter list."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from integrations import events, outbox
from integrations.choices import DeliveryStatus
from integrations.models import Delivery, Event
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=False)


class Recorder:
    """A subscriber that writes a row per call (so a rollback undoes it) and can be told
    to fail."""

    def __init__(self, name):
        self.name = name
        self.calls = []
        self.fail = False

    def __call__(self, event, delivery):
        self.calls.append(str(event.pk))
        # A database write, to show it commits with the delivery (or not at all).
        PatientFactory(clinic_id=event.clinic_id, full_name=f"{self.name} {len(self.calls)}")
        if self.fail:
            raise RuntimeError("partner system down")


@pytest.fixture
def recorders():
    made = []

    def make(*types, name):
        recorder = Recorder(name)
        events.subscriber(*types, name=f"tests.{name}")(recorder)
        made.append(f"{events.HANDLER_PREFIX}tests.{name}")
        return recorder

    yield make
    for key in made:
        events.unsubscribe(key)


def test_it_refuses_an_event_type_outside_the_catalogue(clinic_a):
    with pytest.raises(events.UnknownEventType):
        events.publish("patient.deleted_forever", clinic=clinic_a, payload={})
    with pytest.raises(events.UnknownEventType):
        events.subscriber("patient.deleted_forever")
    assert Event.objects.count() == 0


def test_a_service_that_publishes_and_then_fails_leaves_no_event(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    audit = recorders("patient.created", name="audit")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValueError),
        transaction.atomic(),
    ):
        events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 1})
        raise ValueError("the service failed after publishing")
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert callbacks == []
    assert audit.calls == []


def test_a_committed_event_reaches_every_subscriber_once(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    audit = recorders("patient.created", name="audit")
    crm = recorders("patient.created", "patient.updated", name="crm")
    other = recorders("payment.received", name="billing")
    with django_capture_on_commit_callbacks(execute=True):
        event = events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 7})
    assert audit.calls == [str(event.pk)]
    assert crm.calls == [str(event.pk)]
    assert other.calls == []
    assert set(Delivery.objects.values_list("subscriber", "status")) == {
        ("handler:tests.audit", DeliveryStatus.SUCCEEDED),
        ("handler:tests.crm", DeliveryStatus.SUCCEEDED),
    }


def test_one_dispatch_task_per_transaction(clinic_a, recorders, django_capture_on_commit_callbacks):
    recorders("patient.created", name="audit")
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        for n in range(3):
            events.publish("patient.created", clinic=clinic_a, payload={"patient_id": n})
    assert len(callbacks) == 1


def test_a_rolled_back_savepoint_does_not_swallow_later_events(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    audit = recorders("patient.created", name="audit")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        try:
            with transaction.atomic():
                events.publish("patient.created", clinic=clinic_a, payload={"n": 1})
                raise ValueError
        except ValueError:
            pass
        kept = events.publish("patient.created", clinic=clinic_a, payload={"n": 2})
    assert audit.calls == [str(kept.pk)]


def test_running_the_same_delivery_twice_has_the_effect_of_once(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    audit = recorders("patient.created", name="audit")
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={})
    delivery = Delivery.objects.get()
    # The broker redelivers the task (acks late, worker lost …): nothing happens again.
    assert outbox.delivery_run(delivery_id=delivery.pk) is None
    from integrations.tasks import delivery_run_task

    delivery_run_task.delay(delivery.pk)
    assert len(audit.calls) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_a_failed_handler_leaves_no_write_behind(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    from clinic.models import Patient

    broken = recorders("patient.created", name="broken")
    broken.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={})
    assert broken.calls  # it ran …
    assert not Patient.objects.filter(full_name__startswith="broken").exists()  # … and undid
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


def test_a_lost_task_is_picked_up_by_the_sweeper(
    clinic_a, recorders, django_capture_on_commit_callbacks, monkeypatch
):
    audit = recorders("patient.created", name="audit")
    # Simulate a lost task: the dispatch is never enqueued.
    monkeypatch.setattr(events, "_dispatch_on_commit", lambda event_id: None)
    events.publish("patient.created", clinic=clinic_a, payload={})
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.outbox_sweep().requeued == 0  # not lost yet: its task may be on its way
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=2)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert outbox.outbox_sweep().requeued == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(audit.calls) == 1


def test_an_always_failing_subscriber_backs_off_and_is_dead_after_5_attempts(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    broken = recorders("patient.created", name="broken")
    broken.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={})
    delivery = Delivery.objects.get()
    delays = []
    clock = timezone.now()
    for attempt in range(2, 6):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED
        wait = delivery.next_attempt_at - clock
        delays.append(wait)
        # Not due yet: an early task (or sweep) does nothing.
        assert outbox.delivery_run(delivery_id=delivery.pk) is None
        with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                outbox.outbox_sweep()
            clock = timezone.now()
        assert len(broken.calls) == attempt
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 5
    assert "partner system down" in delivery.last_error
    assert delivery.attempt_log.count() == 5
    # Each wait is drawn from a window twice as far as the one before (jittered).
    windows = [(15, 30), (30, 60), (60, 120), (120, 240)]
    for wait, (low, high) in zip(delays, windows, strict=True):
        assert low - 2 <= wait.total_seconds() <= high + 2


def test_retry_from_the_dead_letter_list_delivers_once_it_works(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    broken = recorders("patient.created", name="broken")
    broken.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={})
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DEAD, attempts=5, dead_at=timezone.now()
    )
    delivery.refresh_from_db()

    broken.fail = False  # the cause was fixed
    with django_capture_on_commit_callbacks(execute=True):
        outbox.delivery_retry(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.attempt_log.filter(succeeded=True).count() == 1


def test_the_sweeper_buries_deliveries_that_ran_out_of_attempts(clinic_a, recorders):
    recorders("patient.created", name="audit")
    with transaction.atomic():
        events.publish("patient.created", clinic=clinic_a, payload={})
    Delivery.objects.update(status=DeliveryStatus.FAILED, attempts=5)
    assert outbox.outbox_sweep().dead == 1
    assert Delivery.objects.get().status == DeliveryStatus.DEAD


def test_an_unknown_subscriber_fails_instead_of_vanishing(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    recorders("patient.created", name="gone")
    with django_capture_on_commit_callbacks(execute=False):
        events.publish("patient.created", clinic=clinic_a, payload={})
    events.unsubscribe("handler:tests.gone")  # the code was removed meanwhile
    delivery = Delivery.objects.get()
    assert outbox.delivery_run(delivery_id=delivery.pk) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert "SubscriberMissing" in delivery.last_error


def test_events_are_published_for_the_right_clinic(
    clinic_a, clinic_b, recorders, django_capture_on_commit_callbacks
):
    recorders("patient.created", name="audit")
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_b.pk, payload={})
    assert Event.objects.get().clinic_id == clinic_b.pk
    assert Delivery.objects.get().clinic_id == clinic_b.pk
    assert Event.objects.for_clinic(clinic_a).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweepers_never_claim_the_same_delivery(clinic_a, recorders, monkeypatch):
    """Two sweepers at once (two connections): SKIP LOCKED hands each row to one of them."""
    import threading

    from django.db import connections

    recorders("patient.created", name="audit")
    monkeypatch.setattr(events, "_dispatch_on_commit", lambda event_id: None)
    for _ in range(40):
        events.publish("patient.created", clinic=clinic_a, payload={})
    enqueued = []
    monkeypatch.setattr(
        outbox, "enqueue", lambda delivery, countdown=None: enqueued.append(delivery.pk)
    )
    later = timezone.now() + timedelta(minutes=2)
    barrier = threading.Barrier(2)

    def sweep():
        try:
            barrier.wait()
            outbox.outbox_sweep(now=later, batch=40)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(enqueued) == sorted(set(enqueued))
    assert len(enqueued) == 40


def test_a_failing_subscriber_does_not_hold_back_the_others(
    clinic_a, recorders, django_capture_on_commit_callbacks
):
    from clinic.models import Patient

    recorders("patient.created", name="good")
    bad = recorders("patient.created", name="bad")
    bad.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("patient.created", clinic=clinic_a, payload={})
    statuses = dict(Delivery.objects.values_list("subscriber", "status"))
    assert statuses == {
        "handler:tests.good": DeliveryStatus.SUCCEEDED,
        "handler:tests.bad": DeliveryStatus.FAILED,
    }
    assert len(bad.calls) == 1  # one attempt, recorded once
    # The good subscriber's write survived the bad one's rollback (exactly once).
    assert Patient.objects.filter(full_name__startswith="good").count() == 1
