"""What publishing an event costs the database: it runs inside every booking, payment and
message, so it is kept to the statements it needs."""

import pytest
from django.db import transaction

from integrations import events, subscriptions
from integrations.choices import DeliveryStatus
from integrations.models import Delivery, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def handler():
    calls = []
    events.subscriber("patient.created", name="tests.publish-count")(
        lambda event, delivery: calls.append(event.pk)
    )
    yield calls
    events.unsubscribe(f"{events.HANDLER_PREFIX}tests.publish-count")


def partner(clinic, **fields):
    return subscriptions.subscription_create(
        clinic=clinic, name="CRM", url="https://crm.example/hook", **fields
    )


@pytest.mark.postgres
def test_one_publish_reads_the_subscriptions_and_writes_event_and_deliveries_in_one_go(
    clinic_a, handler, django_assert_num_queries
):
    partner(clinic_a, event_types=["patient.created"])

    with transaction.atomic(), django_assert_num_queries(2):
        events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 7})

    assert Delivery.objects.count() == 2


def test_a_publish_records_the_event_and_a_pending_delivery_per_subscriber(
    clinic_a, clinic_b, handler, django_assert_max_num_queries
):
    covered = partner(clinic_a, event_types=["patient.created"])
    partner(clinic_a, event_types=["payment.received"])  # another event's
    partner(clinic_b, event_types=["patient.created"])  # another clinic's

    with transaction.atomic(), django_assert_max_num_queries(3):
        event = events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 7})

    stored = Event.objects.get()
    assert (stored.pk, stored.clinic_id, stored.event_type, stored.payload) == (
        event.pk,
        clinic_a.pk,
        "patient.created",
        {"patient_id": 7},
    )
    assert stored.created_at == event.created_at
    deliveries = Delivery.objects.filter(event=stored)
    assert sorted(deliveries.values_list("subscriber", flat=True)) == sorted(
        [f"{events.HANDLER_PREFIX}tests.publish-count", f"{events.WEBHOOK_PREFIX}{covered.pk}"]
    )
    for delivery in deliveries:
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempts == 0
        assert delivery.clinic_id == clinic_a.pk
        assert delivery.next_attempt_at == delivery.created_at == event.created_at
