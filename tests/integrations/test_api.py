"""Partner API of the integrations: events, webhook subscriptions, dead letters, health."""

import json
from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from integrations import events, subscriptions
from integrations.choices import DeliveryStatus
from integrations.models import Delivery, DeliveryAttempt, Event, WebhookSubscription
from tests.clinic.partner_api.helpers import key_client

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
EVENTS = "/api/v1/events/"
WEBHOOKS = "/api/v1/webhooks/"
DLQ = "/api/v1/dlq/"
HEALTH = "/api/v1/health/integrations"
PARTNER_URL = "https://crm.parceiro.example/hooks/cuidar"


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def event(clinic, event_type="patient.created", *, ago=timedelta(0), **payload):
    return Event.objects.create(
        clinic=clinic,
        event_type=event_type,
        payload=payload or {"patient_id": 1},
        created_at=timezone.now() - ago,
    )


def dead_letter(clinic, *, event_type="payment.received", status=DeliveryStatus.DEAD):
    delivery = Delivery.objects.create(
        event=event(clinic, event_type, payment_id=9),
        clinic=clinic,
        event_type=event_type,
        subscriber="handler:billing.x",
        status=status,
        attempts=5,
        last_error="RuntimeError: gateway said no",
        dead_at=timezone.now(),
    )
    DeliveryAttempt.objects.create(delivery=delivery, number=1, error="error #1")
    return delivery


def subscription(clinic, **kwargs):
    return subscriptions.subscription_create(
        clinic=clinic,
        name=kwargs.pop("name", "CRM do parceiro"),
        url=kwargs.pop("url", PARTNER_URL),
        event_types=kwargs.pop("event_types", ["patient.created"]),
        **kwargs,
    )


def assert_same_queries_for_3_and_30(client, url, make, django_assert_max_num_queries):
    make(3)
    client.get(url)  # the key's last_used_at is written on its first use
    with CaptureQueriesContext(connection) as three:
        assert len(results(client.get(url))) == 3
    make(27)
    with django_assert_max_num_queries(len(three)):
        assert len(results(client.get(url))) == 30


# --- Events ---------------------------------------------------------------------------------
def test_it_lists_the_clinics_events_newest_first(clinic_a, clinic_b):
    old = event(clinic_a, ago=timedelta(hours=2), patient_id=1)
    new = event(clinic_a, "appointment.booked", appointment_id=5)
    event(clinic_b)
    found = results(key_client(clinic_a, "events:read").get(EVENTS))
    assert [e["id"] for e in found] == [str(new.pk), str(old.pk)]
    assert found[0]["type"] == "appointment.booked"
    assert found[0]["payload"] == {"appointment_id": 5}
    assert found[0]["created_at"].endswith("-03:00")


def test_it_filters_events_by_type(clinic_a):
    booked = event(clinic_a, "appointment.booked")
    paid = event(clinic_a, "payment.received")
    event(clinic_a, "patient.created")
    client = key_client(clinic_a, "events:read")
    assert [e["id"] for e in results(client.get(EVENTS, {"type": "appointment.booked"}))] == [
        str(booked.pk)
    ]
    both = results(client.get(EVENTS, {"type": "appointment.booked,payment.received"}))
    assert {e["id"] for e in both} == {str(booked.pk), str(paid.pk)}
    repeated = client.get(f"{EVENTS}?type=appointment.booked&type=payment.received")
    assert {e["id"] for e in results(repeated)} == {str(booked.pk), str(paid.pk)}


def test_it_filters_events_after_a_moment(clinic_a):
    event(clinic_a, ago=timedelta(days=2))
    recent = event(clinic_a)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    found = results(key_client(clinic_a, "events:read").get(EVENTS, {"created_after": since}))
    assert [e["id"] for e in found] == [str(recent.pk)]


def test_a_moment_without_an_offset_is_refused(clinic_a):
    response = key_client(clinic_a, "events:read").get(
        EVENTS, {"created_after": "2026-03-02T09:00:00"}
    )
    assert response.status_code == 400
    assert "created_after" in response.json()["errors"]


def test_datetimes_are_in_the_clinics_time_zone(clinic_a):
    clinic_a.time_zone = "America/Manaus"
    clinic_a.save(update_fields=["time_zone"])
    event(clinic_a)
    [shown] = results(key_client(clinic_a, "events:read").get(EVENTS))
    assert shown["created_at"].endswith("-04:00")


def test_an_unknown_event_type_is_a_field_error(clinic_a):
    response = key_client(clinic_a, "events:read").get(EVENTS, {"type": "patient.deleted"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert "type" in response.json()["errors"]


def test_events_come_a_page_at_a_time(clinic_a):
    for n in range(3):
        event(clinic_a, ago=timedelta(minutes=n))
    client = key_client(clinic_a, "events:read")
    first = client.get(EVENTS, {"page_size": 2}).json()
    rest = client.get(first["next"]).json()
    assert len(first["results"]) == 2
    assert len(rest["results"]) == 1
    assert rest["next"] is None


def test_listing_events_costs_the_same_queries_for_3_or_30(clinic_a, django_assert_max_num_queries):
    assert_same_queries_for_3_and_30(
        key_client(clinic_a, "events:read"),
        EVENTS,
        lambda n: [event(clinic_a) for _ in range(n)],
        django_assert_max_num_queries,
    )


# --- Webhook subscriptions ------------------------------------------------------------------
@pytest.fixture
def integrator_a(clinic_a):
    return key_client(clinic_a, "webhooks:manage")


def test_it_creates_a_subscription_and_shows_its_secret_once(integrator_a, clinic_a):
    response = integrator_a.post(
        WEBHOOKS,
        {"url": PARTNER_URL, "event_types": ["appointment.booked", "patient.created"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    created = WebhookSubscription.objects.get()
    assert created.clinic == clinic_a
    assert body["secret"] == created.signing_secret
    assert body["event_types"] == ["appointment.booked", "patient.created"]
    assert body["active"] is True
    assert body["name"] == "crm.parceiro.example"

    shown = integrator_a.get(f"{WEBHOOKS}{created.pk}/").json()
    assert "secret" not in shown
    assert all("secret" not in s for s in results(integrator_a.get(WEBHOOKS)))


def test_a_subscription_refuses_unknown_event_types_and_non_http_urls(integrator_a):
    response = integrator_a.post(
        WEBHOOKS, {"url": "ftp://example.com/x", "event_types": ["patient.deleted"]}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"url", "event_types"}
    assert not WebhookSubscription.objects.exists()


def test_it_changes_a_subscription_and_keeps_its_secret(integrator_a, clinic_a):
    sub = subscription(clinic_a)
    secret = sub.signing_secret
    response = integrator_a.patch(
        f"{WEBHOOKS}{sub.pk}/", {"active": False, "event_types": []}, format="json"
    )
    assert response.status_code == 200, response.content
    sub.refresh_from_db()
    assert (sub.active, sub.event_types, sub.url) == (False, [], PARTNER_URL)
    assert sub.signing_secret == secret
    assert "secret" not in response.json()


def test_patch_validates_through_the_catalogue(integrator_a, clinic_a):
    sub = subscription(clinic_a)
    response = integrator_a.patch(f"{WEBHOOKS}{sub.pk}/", {"event_types": ["nope"]}, format="json")
    assert response.status_code == 400
    assert "event_types" in response.json()["errors"]


def test_it_deletes_a_subscription(integrator_a, clinic_a):
    sub = subscription(clinic_a)
    assert integrator_a.delete(f"{WEBHOOKS}{sub.pk}/").status_code == 204
    assert not WebhookSubscription.objects.exists()


@responses.activate
def test_a_ping_answers_202_at_once_and_a_worker_posts_it(
    integrator_a, clinic_a, django_capture_on_commit_callbacks
):
    """The request never waits on the partner's URL (issue 17): it answers 202 with the
    ping pending; a worker posts it after the commit, and the subscription then shows
    how the partner answered."""
    responses.post(PARTNER_URL, status=204)
    sub = subscription(clinic_a)
    with django_capture_on_commit_callbacks() as queued:
        response = integrator_a.post(f"{WEBHOOKS}{sub.pk}/ping/")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response.json()["ok"] is None
    assert len(responses.calls) == 0  # nothing sent by the web request
    assert integrator_a.get(f"{WEBHOOKS}{sub.pk}/").json()["ping"]["status"] == "pending"
    for callback in queued:
        callback()  # the worker (tasks run inline in tests)
    assert json.loads(responses.calls[0].request.body)["type"] == "ping"
    ping = integrator_a.get(f"{WEBHOOKS}{sub.pk}/").json()["ping"]
    assert (ping["status"], ping["ok"]) == ("succeeded", True)
    assert "HTTP 204" in ping["detail"]


@responses.activate
def test_a_failed_ping_is_reported_not_raised(
    integrator_a, clinic_a, django_capture_on_commit_callbacks
):
    responses.post(PARTNER_URL, status=500)
    sub = subscription(clinic_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert integrator_a.post(f"{WEBHOOKS}{sub.pk}/ping/").status_code == 202
    ping = integrator_a.get(f"{WEBHOOKS}{sub.pk}/").json()["ping"]
    assert (ping["status"], ping["ok"]) == ("failed", False)
    assert "500" in ping["detail"]


def test_listing_subscriptions_costs_the_same_queries_for_3_or_30(
    integrator_a, clinic_a, django_assert_max_num_queries
):
    assert_same_queries_for_3_and_30(
        integrator_a,
        WEBHOOKS,
        lambda n: [subscription(clinic_a) for _ in range(n)],
        django_assert_max_num_queries,
    )


# --- Dead letters ---------------------------------------------------------------------------
@pytest.fixture
def operator_a(clinic_a):
    return key_client(clinic_a, "dlq:manage")


def test_it_lists_the_clinics_dead_letters(operator_a, clinic_a, clinic_b):
    mine = dead_letter(clinic_a)
    dead_letter(clinic_b)
    dead_letter(clinic_a, status=DeliveryStatus.ARCHIVED)
    Delivery.objects.create(
        event=mine.event, clinic=clinic_a, event_type="payment.received", subscriber="handler:ok"
    )
    [shown] = results(operator_a.get(DLQ))
    assert shown["id"] == mine.pk
    assert shown["event_id"] == str(mine.event_id)
    assert shown["last_error"] == "RuntimeError: gateway said no"
    assert shown["payload"] == {"payment_id": 9}
    assert shown["attempts"] == 5


def test_it_lists_archived_dead_letters_on_request(operator_a, clinic_a):
    archived = dead_letter(clinic_a, status=DeliveryStatus.ARCHIVED)
    dead_letter(clinic_a)
    assert [d["id"] for d in results(operator_a.get(DLQ, {"status": "archived"}))] == [archived.pk]


def test_retrying_a_dead_letter_gives_it_fresh_attempts(operator_a, clinic_a):
    delivery = dead_letter(clinic_a)
    response = operator_a.post(f"{DLQ}{delivery.pk}/retry/")
    assert response.status_code == 202
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.dead_at) == ("pending", 0, None)
    assert response.json()["status"] == "pending"


def test_archiving_a_dead_letter_takes_it_off_the_list(operator_a, clinic_a):
    delivery = dead_letter(clinic_a)
    response = operator_a.post(f"{DLQ}{delivery.pk}/archive/")
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.ARCHIVED
    assert results(operator_a.get(DLQ)) == []
    assert operator_a.post(f"{DLQ}{delivery.pk}/archive/").status_code == 200  # again: no-op


def test_a_delivery_that_is_not_dead_is_not_a_dead_letter(operator_a, clinic_a):
    delivery = dead_letter(clinic_a, status=DeliveryStatus.SUCCEEDED)
    assert operator_a.get(f"{DLQ}{delivery.pk}/").status_code == 404
    assert operator_a.post(f"{DLQ}{delivery.pk}/retry/").status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_listing_dead_letters_costs_the_same_queries_for_3_or_30(
    operator_a, clinic_a, django_assert_max_num_queries
):
    assert_same_queries_for_3_and_30(
        operator_a,
        DLQ,
        lambda n: [dead_letter(clinic_a) for _ in range(n)],
        django_assert_max_num_queries,
    )


def test_the_health_answers_with_or_without_the_trailing_slash(clinic_a):
    assert key_client(clinic_a).get(f"{HEALTH}/").status_code == 200


# --- Scopes and authentication, every endpoint ----------------------------------------------
def _endpoints(clinic):
    sub = subscription(clinic)
    dead = dead_letter(clinic)
    ev = event(clinic)
    return {
        "events:read": [("get", EVENTS), ("get", f"{EVENTS}{ev.pk}/")],
        "webhooks:manage": [
            ("get", WEBHOOKS),
            ("post", WEBHOOKS),
            ("get", f"{WEBHOOKS}{sub.pk}/"),
            ("patch", f"{WEBHOOKS}{sub.pk}/"),
            ("delete", f"{WEBHOOKS}{sub.pk}/"),
            ("post", f"{WEBHOOKS}{sub.pk}/ping/"),
        ],
        "dlq:manage": [
            ("get", DLQ),
            ("get", f"{DLQ}{dead.pk}/"),
            ("post", f"{DLQ}{dead.pk}/retry/"),
            ("post", f"{DLQ}{dead.pk}/archive/"),
        ],
    }


@pytest.mark.parametrize("scope", ["events:read", "webhooks:manage", "dlq:manage"])
def test_a_key_without_the_scope_gets_403(clinic_a, scope):
    others = [s for s in ("events:read", "webhooks:manage", "dlq:manage") if s != scope]
    client = key_client(clinic_a, *others)
    for method, url in _endpoints(clinic_a)[scope]:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 403, (method, url)
        assert response["Content-Type"] == PROBLEM
    assert WebhookSubscription.objects.count() == 1
    assert Delivery.objects.get().status == DeliveryStatus.DEAD


def test_no_key_gets_401_everywhere(clinic_a):
    client = APIClient()
    requests_ = [r for rs in _endpoints(clinic_a).values() for r in rs] + [("get", HEALTH)]
    for method, url in requests_:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 401, (method, url)
        assert response["Content-Type"] == PROBLEM


def test_staff_may_read_but_not_change(clinic_a, receptionist_a):
    sub = subscription(clinic_a)
    client = APIClient()
    client.force_login(receptionist_a)
    assert client.get(WEBHOOKS).status_code == 200
    assert client.get(HEALTH).status_code == 200
    assert client.patch(f"{WEBHOOKS}{sub.pk}/", {"active": False}, format="json").status_code == 403
    assert client.delete(f"{WEBHOOKS}{sub.pk}/").status_code == 403


def test_a_published_event_is_listed_for_its_clinic(clinic_a):
    published = events.publish("patient.updated", clinic=clinic_a, payload={"patient_id": 3})
    found = results(key_client(clinic_a, "events:read").get(EVENTS, {"type": "patient.updated"}))
    assert [e["id"] for e in found] == [str(published.pk)]
