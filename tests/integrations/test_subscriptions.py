"""Partner webhook subscriptions: what a partner receives, how it checks the signature with
nothing but the documented recipe (docs/webhooks.md), and what counts as delivered."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
import time_machine
from django.utils import timezone

from integrations import events, subscriptions
from integrations.base import PermanentProviderError, ProviderError, TransientProviderError
from integrations.choices import DeliveryStatus
from integrations.models import Delivery, ExternalCall, WebhookSubscription

pytestmark = pytest.mark.django_db

PARTNER_URL = "https://crm.parceiro.example/hooks/cuidar"
CREATED_AT = datetime(2026, 3, 9, 13, 30, 5, tzinfo=UTC)


def partner_verifies(secret: str, raw_body: bytes, header: str, tolerance: int = 300) -> bool:
    """The receiver's side, written from docs/webhooks.md with the standard library only
    (deliberately not the project's signing module)."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit() or not signatures:
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed_payload = timestamp.encode() + b"." + raw_body
    expected = hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


@pytest.fixture
def subscription(clinic_a):
    return subscriptions.subscription_create(
        clinic=clinic_a, name="CRM do parceiro", url=PARTNER_URL, event_types=["patient.created"]
    )


def post(subscription, **overrides):
    kwargs = {
        "event_type": "patient.created",
        "event_id": "0f8e1c0a-7f5e-4a54-9a57-3c1a3f1f0c11",
        "delivery_id": "42",
        "created_at": CREATED_AT,
        "payload": {"patient_id": 7},
    }
    kwargs.update(overrides)
    return subscriptions.subscription_post(subscription, **kwargs)


# --- Creating -------------------------------------------------------------------------------
def test_it_creates_a_subscription_with_a_fresh_secret(subscription, clinic_a):
    assert subscription.clinic == clinic_a
    assert subscription.signing_secret.startswith("whsec_")
    other = subscriptions.subscription_create(
        clinic=clinic_a, name="Outro", url=PARTNER_URL, event_types=[]
    )
    assert other.signing_secret != subscription.signing_secret
    assert other.wants("appointment.booked")  # empty means every event


def test_it_refuses_event_types_outside_the_catalogue(clinic_a):
    with pytest.raises(subscriptions.InvalidSubscription) as caught:
        subscriptions.subscription_create(
            clinic=clinic_a,
            name="CRM",
            url=PARTNER_URL,
            event_types=["patient.created", "patient.teleported"],
        )
    assert "patient.teleported" in caught.value.fields["event_types"][0]
    assert WebhookSubscription.objects.count() == 0


def test_it_refuses_urls_that_are_not_http(clinic_a):
    with pytest.raises(subscriptions.InvalidSubscription) as caught:
        subscriptions.subscription_create(
            clinic=clinic_a, name="CRM", url="ftp://crm.example/x", event_types=[]
        )
    assert set(caught.value.fields) == {"url"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://db.internal/hook",
    ],
)
def test_it_refuses_internal_addresses(clinic_a, url):
    with pytest.raises(subscriptions.InvalidSubscription) as caught:
        subscriptions.subscription_create(clinic=clinic_a, name="x", url=url, event_types=[])
    assert set(caught.value.fields) == {"url"}


def test_it_accepts_public_addresses(clinic_a):
    subscription = subscriptions.subscription_create(
        clinic=clinic_a, name="CRM", url="https://crm.example.com/hooks", event_types=[]
    )
    assert subscription.pk


@pytest.fixture
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


# --- Posting --------------------------------------------------------------------------------
@responses.activate
def test_a_partner_receives_the_documented_headers_and_body(subscription):
    responses.post(PARTNER_URL, status=204)
    post(subscription)

    [call] = responses.calls
    sent = call.request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == "Cuidar-Webhooks/1.0"
    assert sent.headers["X-Cuidar-Event"] == "patient.created"
    assert sent.headers["X-Cuidar-Event-Id"] == "0f8e1c0a-7f5e-4a54-9a57-3c1a3f1f0c11"
    assert sent.headers["X-Cuidar-Delivery"] == "42"
    assert json.loads(sent.body) == {
        "id": "0f8e1c0a-7f5e-4a54-9a57-3c1a3f1f0c11",
        "type": "patient.created",
        "clinic_id": subscription.clinic_id,
        "created_at": "2026-03-09T13:30:05Z",
        "data": {"patient_id": 7},
    }


@responses.activate
def test_a_partner_can_verify_the_signature_with_the_documented_recipe(subscription):
    responses.post(PARTNER_URL, status=200)
    post(subscription, payload={"patient_id": 7, "note": "acentuação"})

    sent = responses.calls[0].request
    header = sent.headers["X-Cuidar-Signature"]
    assert partner_verifies(subscription.signing_secret, sent.body, header)
    assert not partner_verifies("whsec_someone-else", sent.body, header)
    assert not partner_verifies(subscription.signing_secret, sent.body + b" ", header)


@responses.activate
def test_a_stale_signature_is_rejected_by_the_recipe(subscription):
    responses.post(PARTNER_URL, status=200)
    with time_machine.travel(timezone.now() - timedelta(minutes=10)):
        post(subscription)
    sent = responses.calls[0].request
    assert not partner_verifies(
        subscription.signing_secret, sent.body, sent.headers["X-Cuidar-Signature"]
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, TransientProviderError), (429, TransientProviderError), (410, PermanentProviderError)],
)
@responses.activate
def test_a_non_2xx_answer_raises_and_is_not_retried_here(subscription, status, error):
    responses.post(PARTNER_URL, status=status, body="nope")
    with pytest.raises(error) as caught:
        post(subscription)
    assert caught.value.http_status == status
    assert len(responses.calls) == 1  # the outbox retries, with its own backoff


@responses.activate
def test_a_redirect_is_a_failure_and_is_not_followed(subscription):
    responses.post(PARTNER_URL, status=302, headers={"Location": "https://elsewhere.example/"})
    with pytest.raises(ProviderError) as caught:
        post(subscription)
    assert caught.value.http_status == 302
    assert [c.request.url for c in responses.calls] == [PARTNER_URL]


@responses.activate
def test_the_call_is_logged_without_the_secret(subscription):
    responses.post(
        PARTNER_URL, body=requests.ConnectionError(f"refused {subscription.signing_secret}")
    )
    with pytest.raises(TransientProviderError) as caught:
        post(subscription)
    call = ExternalCall.objects.get()
    assert (call.provider, call.operation, call.clinic_id) == (
        "partner_webhook",
        "event",
        subscription.clinic_id,
    )
    assert subscription.signing_secret not in call.error_message
    assert subscription.signing_secret not in str(caught.value)


# --- Rotation -------------------------------------------------------------------------------
@responses.activate
def test_during_a_rotation_both_secrets_verify_until_the_grace_ends(subscription):
    old = subscription.signing_secret
    new = subscriptions.subscription_secret_rotate(subscription=subscription)
    subscription.refresh_from_db()
    assert new != old
    assert subscription.signing_secret == new
    responses.post(PARTNER_URL, status=200)

    post(subscription)
    sent = responses.calls[0].request
    assert partner_verifies(new, sent.body, sent.headers["X-Cuidar-Signature"])
    assert partner_verifies(old, sent.body, sent.headers["X-Cuidar-Signature"])

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        post(subscription)
        sent = responses.calls[1].request
        assert partner_verifies(new, sent.body, sent.headers["X-Cuidar-Signature"], 10**9)
        assert not partner_verifies(old, sent.body, sent.headers["X-Cuidar-Signature"], 10**9)


@responses.activate
def test_a_rotation_without_grace_drops_the_old_secret_at_once(subscription):
    old = subscription.signing_secret
    subscriptions.subscription_secret_rotate(subscription=subscription, grace=timedelta(0))
    subscription.refresh_from_db()
    responses.post(PARTNER_URL, status=200)
    post(subscription)
    sent = responses.calls[0].request
    assert sent.headers["X-Cuidar-Signature"].count("v1=") == 1
    assert not partner_verifies(old, sent.body, sent.headers["X-Cuidar-Signature"])


# --- Ping -----------------------------------------------------------------------------------
@responses.activate
def test_a_ping_reports_the_partners_answer(subscription):
    responses.post(PARTNER_URL, status=200)
    ok, message = subscriptions.subscription_ping(subscription)
    assert ok
    assert "HTTP 200" in message
    body = json.loads(responses.calls[0].request.body)
    assert body["type"] == "ping"
    assert responses.calls[0].request.headers["X-Cuidar-Event"] == "ping"
    uuid.UUID(body["id"])  # a fresh event id


@responses.activate
@pytest.mark.usefixtures("english")
def test_a_failed_ping_says_why(subscription):
    responses.post(PARTNER_URL, status=503)
    assert subscriptions.subscription_ping(subscription) == (
        False,
        "CRM do parceiro answered HTTP 503.",
    )
    responses.replace(responses.POST, PARTNER_URL, body=requests.ConnectionError("refused"))
    ok, message = subscriptions.subscription_ping(subscription)
    assert not ok
    assert "could not be reached" in message


@responses.activate
def test_a_ping_run_twice_or_superseded_is_sent_once(subscription):
    """The worker's job is safe twice, and a newer request makes an older one moot."""
    responses.post(PARTNER_URL, status=200)
    subscriptions.subscription_ping_request(subscription=subscription)
    first = subscription.ping_requested_at
    assert subscriptions.subscription_ping_run(subscription_id=subscription.pk, requested_at=first)
    assert not subscriptions.subscription_ping_run(
        subscription_id=subscription.pk, requested_at=first
    )
    assert len(responses.calls) == 1
    subscriptions.subscription_ping_request(subscription=subscription)
    assert not subscriptions.subscription_ping_run(
        subscription_id=subscription.pk, requested_at=first
    )
    assert len(responses.calls) == 1
    subscription.refresh_from_db()
    assert (subscription.ping_answered_at, subscription.ping_ok) == (None, None)


# --- Through the outbox ---------------------------------------------------------------------
@responses.activate
def test_a_published_event_reaches_the_partner_signed(
    subscription, clinic_a, django_capture_on_commit_callbacks
):
    responses.post(PARTNER_URL, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        event = events.publish("patient.created", clinic=clinic_a, payload={"patient_id": 1})
        events.publish("appointment.booked", clinic=clinic_a, payload={"appointment_id": 2})

    [call] = responses.calls  # appointment.booked is not one of its event types
    sent = call.request
    assert sent.headers["X-Cuidar-Event-Id"] == str(event.pk)
    assert partner_verifies(
        subscription.signing_secret, sent.body, sent.headers["X-Cuidar-Signature"]
    )
    delivery = Delivery.objects.get(event=event)
    assert sent.headers["X-Cuidar-Delivery"] == str(delivery.pk)
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_a_name_that_now_resolves_to_an_internal_address_is_not_called(subscription, monkeypatch):
    import socket

    def resolve(host, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(PermanentProviderError, match="internal address"):
        subscriptions.subscription_post(
            subscription,
            event_id="e1",
            event_type="appointment.booked",
            delivery_id="d1",
            created_at=datetime.now(UTC),
            payload={},
        )


# --- The URL, validated fully when saved (issue 17) -----------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com:99999/hooks",
        "https://crm.example.com:0/hooks",
        "https://user:secret@crm.example.com/hooks",
        "https://crm.example.com/" + "a" * 500,
    ],
)
def test_it_refuses_urls_the_http_layer_could_not_call(clinic_a, url):
    with pytest.raises(subscriptions.InvalidSubscription) as caught:
        subscriptions.subscription_create(clinic=clinic_a, name="x", url=url, event_types=[])
    assert set(caught.value.fields) == {"url"}


def test_the_api_answers_a_field_error_for_an_impossible_port(clinic_a):
    from tests.clinic.partner_api.helpers import key_client

    client = key_client(clinic_a, "webhooks:manage")
    response = client.post(
        "/api/v1/webhooks/", {"url": "https://crm.example.com:99999/h"}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert set(response.json()["errors"]) == {"url"}


def test_the_admin_form_shows_the_port_error_on_the_url_field(clinic_a):
    from integrations.admin.webhooks import WebhookSubscriptionForm

    form = WebhookSubscriptionForm(
        data={
            "clinic": clinic_a.pk,
            "name": "CRM",
            "url": "https://crm.example.com:99999/h",
            "active": "on",
        }
    )
    assert not form.is_valid()
    assert "url" in form.errors


@pytest.mark.usefixtures("english")
def test_a_ping_to_a_url_saved_before_the_check_fails_cleanly(subscription):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        url="https://crm.example.com:99999/h"
    )
    subscription.refresh_from_db()
    ok, message = subscriptions.subscription_ping(subscription)
    assert not ok
    assert "could not be reached" in message


@responses.activate
def test_a_ping_does_not_wait_as_long_as_a_delivery(subscription, monkeypatch):
    from integrations import http

    seen = {}
    real = http.request

    def spy(*args, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return real(*args, **kwargs)

    monkeypatch.setattr(http, "request", spy)
    responses.post(PARTNER_URL, status=204)
    subscriptions.subscription_ping(subscription)
    assert sum(seen["timeout"]) <= 8
    post(subscription)
    assert seen["timeout"] == subscriptions.TIMEOUT
