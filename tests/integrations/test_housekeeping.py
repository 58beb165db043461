"""Retention of the integrations logs (weekly cleanup job)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.choices import DeliveryStatus, InboundWebhookStatus
from integrations.housekeeping import integrations_cleanup
from integrations.models import ConsoleRecord, Delivery, Event, ExternalCall, InboundWebhook

pytestmark = pytest.mark.django_db


def ago(days):
    return timezone.now() - timedelta(days=days)


def call(clinic, days):
    return ExternalCall.objects.create(
        clinic=clinic, provider="x", operation="send", method="POST", host="h", created_at=ago(days)
    )


def webhook(clinic, days, status, key):
    return InboundWebhook.objects.create(
        clinic=clinic,
        provider="x",
        body=b"{}",
        dedupe_key=key,
        status=status,
        received_at=ago(days),
    )


def event_with(clinic, days, status):
    event = Event.objects.create(clinic=clinic, event_type="slot.freed", created_at=ago(days))
    Delivery.objects.create(
        event=event,
        clinic=clinic,
        event_type="slot.freed",
        subscriber="handler:x",
        status=status,
        succeeded_at=ago(days) if status == DeliveryStatus.SUCCEEDED else None,
    )
    return event


def test_it_deletes_what_is_past_retention_and_keeps_the_rest(clinic_a):
    old_call, new_call = call(clinic_a, 31), call(clinic_a, 29)
    done = webhook(clinic_a, 91, InboundWebhookStatus.PROCESSED, "a")
    failed = webhook(clinic_a, 200, InboundWebhookStatus.FAILED, "b")  # someone must act
    recent = webhook(clinic_a, 10, InboundWebhookStatus.PROCESSED, "c")
    finished = event_with(clinic_a, 181, DeliveryStatus.SUCCEEDED)
    dead = event_with(clinic_a, 400, DeliveryStatus.DEAD)  # a dead letter keeps its event
    ConsoleRecord.objects.create(
        clinic=clinic_a, kind="sms", provider="console", operation="send", created_at=ago(31)
    )

    result = integrations_cleanup()

    assert set(ExternalCall.objects.all()) == {new_call}
    assert set(InboundWebhook.objects.all()) == {failed, recent}
    assert not Event.objects.filter(pk=finished.pk).exists()
    assert Event.objects.filter(pk=dead.pk).exists()
    assert Delivery.objects.filter(event=dead).exists()
    assert ConsoleRecord.objects.count() == 0
    assert (result.external_calls, result.inbound_webhooks, result.events) == (1, 1, 1)
    assert old_call.pk and done.pk  # (created above)


def test_running_it_twice_deletes_nothing_more(clinic_a):
    call(clinic_a, 40)
    integrations_cleanup()
    again = integrations_cleanup()
    assert again == type(again)(0, 0, 0, 0, 0)
