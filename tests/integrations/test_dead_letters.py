"""The dead-letter list, in the admin and on the command line."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.choices import DeliveryStatus
from integrations.models import DeadLetter, Delivery, DeliveryAttempt, Event

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:integrations_deadletter_changelist")


def dead_letter(clinic, *, event_type="payment.received", subscriber="handler:billing.x", age=None):
    event = Event.objects.create(clinic=clinic, event_type=event_type, payload={"payment_id": 9})
    delivery = Delivery.objects.create(
        event=event,
        clinic=clinic,
        event_type=event_type,
        subscriber=subscriber,
        status=DeliveryStatus.DEAD,
        attempts=5,
        last_error="RuntimeError: gateway said no",
        dead_at=timezone.now() - (age or timedelta(minutes=5)),
    )
    for n in range(1, 6):
        DeliveryAttempt.objects.create(delivery=delivery, number=n, error=f"error #{n}")
    return delivery


@pytest.fixture
def admin_b(clinic_b):
    from clinic import services
    from clinic.models import Membership
    from tests.clinic.factories import UserFactory

    user = UserFactory(username="admin_b")
    services.membership_save(membership=Membership(user=user, clinic=clinic_b, role="admin"))
    return user


def test_it_lists_only_dead_deliveries_of_the_users_clinic(clinic_a, clinic_b, admin_a, client_for):
    mine = dead_letter(clinic_a)
    dead_letter(clinic_b)
    Delivery.objects.create(
        event=mine.event, clinic=clinic_a, event_type="payment.received", subscriber="handler:ok"
    )
    response = client_for(admin_a).get(CHANGELIST)
    assert [d.pk for d in response.context["cl"].result_list] == [mine.pk]


def test_the_detail_shows_the_payload_and_every_attempts_error(clinic_a, admin_a, client_for):
    delivery = dead_letter(clinic_a)
    url = reverse("admin:integrations_deadletter_change", args=[delivery.pk])
    page = client_for(admin_a).get(url).content.decode()
    assert "payment_id" in page
    for n in range(1, 6):
        assert f"error #{n}" in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event_type": "payment.received"}, {"payment"}),
        ({"subscriber": "webhook:3"}, {"webhook"}),
        ({"age": "hour"}, {"payment", "webhook"}),
        ({"age": "older"}, {"old"}),
    ],
)
def test_it_filters_by_event_type_subscriber_and_age(
    params, expected, clinic_a, admin_a, client_for
):
    made = {
        "payment": dead_letter(clinic_a),
        "webhook": dead_letter(clinic_a, event_type="patient.created", subscriber="webhook:3"),
        "old": dead_letter(clinic_a, event_type="slot.freed", age=timedelta(days=10)),
    }
    response = client_for(admin_a).get(CHANGELIST, params)
    shown = {d.pk for d in response.context["cl"].result_list}
    assert shown == {made[name].pk for name in expected}


def test_retry_and_archive_actions(
    clinic_a, admin_a, client_for, django_capture_on_commit_callbacks
):
    first, second = dead_letter(clinic_a), dead_letter(clinic_a)
    client = client_for(admin_a)
    client.post(CHANGELIST, {"action": "archive", "_selected_action": [second.pk]})
    second.refresh_from_db()
    assert second.status == DeliveryStatus.ARCHIVED

    with django_capture_on_commit_callbacks(execute=True):
        client.post(CHANGELIST, {"action": "retry", "_selected_action": [first.pk]})
    first.refresh_from_db()
    # Retried at once (tasks are eager in tests); the handler no longer exists, so it
    # fails again — but with a fresh set of attempts.
    assert first.status in {DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED}
    assert first.attempts == 1


def test_a_manager_may_look_but_not_retry(clinic_a, manager_a, client_for):
    delivery = dead_letter(clinic_a)
    client = client_for(manager_a)
    assert client.get(CHANGELIST).status_code == 200
    client.post(CHANGELIST, {"action": "archive", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD


def test_a_receptionist_does_not_see_the_dead_letters(receptionist_a, client_for):
    assert client_for(receptionist_a).get(CHANGELIST).status_code == 403


def test_the_changelist_runs_a_constant_number_of_queries(clinic_a, admin_a, client_for):
    client = client_for(admin_a)
    for _ in range(3):
        dead_letter(clinic_a)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for _ in range(30):
        dead_letter(clinic_a)
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(few) == len(many)


def test_the_command_lists_retries_and_archives(clinic_a, django_capture_on_commit_callbacks):
    first, second = dead_letter(clinic_a), dead_letter(clinic_a, event_type="slot.freed")
    out = StringIO()
    call_command("dlq", "list", stdout=out)
    assert str(first.pk) in out.getvalue()
    assert "slot.freed" in out.getvalue()

    call_command("dlq", "archive", str(second.pk), stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("dlq", "retry", str(first.pk), stdout=StringIO())
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == DeliveryStatus.ARCHIVED
    assert first.attempts == 1
    assert DeadLetter.objects.filter(status=DeliveryStatus.DEAD).count() == 0


def test_the_command_changes_nothing_when_an_id_is_wrong(clinic_a):
    delivery = dead_letter(clinic_a)
    with pytest.raises(CommandError, match="not found: 999999"):
        call_command("dlq", "archive", str(delivery.pk), "999999", stdout=StringIO())
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
