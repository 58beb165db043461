"""Deliveries as a partner's webhook library reads them: the ``standardwebhooks`` library
(the Standard Webhooks reference implementation) verifies real deliveries of real events,
and each event's body matches its published JSON Schema (docs/webhooks.md)."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import responses
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from clinic.services import patient_create
from integrations import subscriptions
from scheduling import services as scheduling
from scheduling.models import Service
from tests.clinic.factories import ProfessionalFactory

pytestmark = pytest.mark.django_db

PARTNER_URL = "https://crm.parceiro.example/hooks/cuidar"
SP = ZoneInfo("America/Sao_Paulo")


@pytest.fixture
def subscription(clinic_a):
    return subscriptions.subscription_create(
        clinic=clinic_a, name="CRM do parceiro", url=PARTNER_URL, event_types=[]
    )


def _tomorrow_at(hour):
    day = timezone.now().astimezone(SP).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=SP)


@pytest.fixture
def deliveries(subscription, clinic_a, django_capture_on_commit_callbacks):
    """What the partner received for: a new patient, a booking and its confirmation."""
    professional = ProfessionalFactory(clinic=clinic_a)
    service = Service.objects.create(
        clinic=clinic_a, name="Consulta", duration_minutes=30, price=Decimal("200.00")
    )
    service.professionals.add(professional)
    with responses.RequestsMock() as partner:
        partner.post(PARTNER_URL, status=204)
        with django_capture_on_commit_callbacks(execute=True):
            patient = patient_create(clinic=clinic_a, full_name="Ana Souza", phone="+5511988887777")
        with django_capture_on_commit_callbacks(execute=True):
            appointment = scheduling.appointment_book(
                clinic=clinic_a,
                service=service,
                patient=patient,
                professional=professional,
                start=_tomorrow_at(10),
            )
        with django_capture_on_commit_callbacks(execute=True):
            scheduling.appointment_confirm(appointment=appointment)
        return {json.loads(call.request.body)["type"]: call.request for call in partner.calls}


def test_the_standard_library_verifies_three_event_types(subscription, deliveries):
    assert {"patient.created", "appointment.booked", "appointment.confirmed"} <= set(deliveries)
    library = Webhook(subscription.signing_secret)
    for event_type in ("patient.created", "appointment.booked", "appointment.confirmed"):
        sent = deliveries[event_type]
        payload = library.verify(sent.body, dict(sent.headers))
        assert payload["type"] == event_type
        assert sent.headers["webhook-id"] == payload["id"]


def test_the_standard_library_refuses_a_changed_body_or_another_secret(subscription, deliveries):
    sent = deliveries["appointment.booked"]
    with pytest.raises(WebhookVerificationError):
        Webhook(subscription.signing_secret).verify(sent.body + b" ", dict(sent.headers))
    other = subscriptions.subscription_create(
        clinic=subscription.clinic, name="Outro", url=PARTNER_URL, event_types=[]
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(other.signing_secret).verify(sent.body, dict(sent.headers))


def test_existing_subscribers_still_get_the_deprecated_header(deliveries):
    assert deliveries["patient.created"].headers["X-Cuidar-Signature"].startswith("t=")


def test_the_deprecated_header_stops_after_its_period(subscription, deliveries):
    from datetime import date

    from integrations import signing

    last = date.fromisoformat(signing.LEGACY_SIGNATURE_UNTIL)
    assert subscriptions.legacy_signature_sent(today=last)
    assert not subscriptions.legacy_signature_sent(today=last + timedelta(days=1))


@responses.activate
def test_during_a_rotation_the_library_accepts_either_secret(subscription):
    old = subscription.signing_secret
    new = subscriptions.subscription_secret_rotate(subscription=subscription)
    subscription.refresh_from_db()
    responses.post(PARTNER_URL, status=200)
    subscriptions.subscription_ping(subscription)
    sent = responses.calls[0].request
    Webhook(new).verify(sent.body, dict(sent.headers))
    Webhook(old).verify(sent.body, dict(sent.headers))


@responses.activate
def test_a_secret_issued_before_the_standard_still_signs_verifiably(subscription):
    # Old secrets are URL-safe base64; the receiver decodes them the same way.
    import base64

    subscription.secret = {"value": "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode()}
    subscription.save(update_fields=["secret"])
    responses.post(PARTNER_URL, status=200)
    subscriptions.subscription_ping(subscription)
    sent = responses.calls[0].request
    Webhook(b"\xfb" * 32).verify(sent.body, dict(sent.headers))


# --- One envelope, one time format, a published schema per event type -----------------------
UTC_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


def test_every_event_type_writes_its_times_in_utc(deliveries):
    import re

    booked = json.loads(deliveries["appointment.booked"].body)
    confirmed = json.loads(deliveries["appointment.confirmed"].body)
    for body in (booked, confirmed):
        assert re.match(UTC_Z, body["created_at"])
        assert re.match(UTC_Z, body["data"]["start"]), body["data"]["start"]
        assert re.match(UTC_Z, body["data"]["end"])
    assert booked["data"]["start"] == confirmed["data"]["start"]
    assert booked["data"]["start"].endswith("T13:00:00Z")  # 10:00 in São Paulo


def test_an_offset_queued_before_the_change_is_delivered_in_utc():
    from integrations.event_schemas import envelope

    body = envelope(
        event_id="e",
        event_type="appointment.booked",
        clinic_id=1,
        created_at=datetime(2026, 3, 9, 10, tzinfo=SP),
        data={"start": "2026-03-10T10:00:00-03:00", "label": "10:00"},
    )
    assert body["created_at"] == "2026-03-09T13:00:00Z"
    assert body["data"] == {"start": "2026-03-10T13:00:00Z", "label": "10:00"}


def _published_schema(client, event_type):
    response = client.get(f"/api/schema/events/{event_type}.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/schema+json"
    return response.json()


def test_each_delivered_event_validates_against_its_published_schema(client, deliveries):
    from jsonschema import Draft202012Validator, FormatChecker

    index = client.get("/api/schema/events/").json()["event_types"]
    assert set(deliveries) <= set(index)
    for event_type, sent in deliveries.items():
        schema = _published_schema(client, event_type)
        Draft202012Validator.check_schema(schema)
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(json.loads(sent.body))


def test_a_schema_refuses_an_offset_time_or_another_type(client, deliveries):
    from jsonschema import Draft202012Validator, ValidationError

    validator = Draft202012Validator(_published_schema(client, "appointment.booked"))
    body = json.loads(deliveries["appointment.booked"].body)
    validator.validate(body)
    with pytest.raises(ValidationError):
        validator.validate({**body, "data": {**body["data"], "start": "2026-03-10T10:00:00-03:00"}})
    with pytest.raises(ValidationError):
        validator.validate({**body, "type": "appointment.confirmed"})
    with pytest.raises(ValidationError):
        validator.validate({**body, "data": {**body["data"], "patient_id": "7"}})


def test_every_catalogued_event_type_has_a_valid_published_schema(client):
    from jsonschema import Draft202012Validator

    from integrations.events import EVENT_TYPES

    index = client.get("/api/schema/events/").json()["event_types"]
    assert set(index) == EVENT_TYPES | {"ping"}
    for event_type in index:
        Draft202012Validator.check_schema(_published_schema(client, event_type))
    assert client.get("/api/schema/events/patient.teleported.json").status_code == 404


# --- The documented example ----------------------------------------------------------------
def test_the_documented_example_verifies_with_the_library_and_the_old_recipe(client):
    import re
    from pathlib import Path

    import time_machine
    from jsonschema import Draft202012Validator

    from integrations import signing

    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    example = re.search(r"```http\n(.*?)```", doc, re.S).group(1)
    head, body = example.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    body = body.strip().encode()
    secret = re.search(r"With the secret `(whsec_[^`]+)`", doc).group(1)

    signed_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=ZoneInfo("UTC"))
    with time_machine.travel(signed_at, tick=False):
        event = Webhook(secret).verify(body, headers)
        assert signing.verify(secret, body, headers["X-Cuidar-Signature"])
    assert headers["webhook-id"] == event["id"]
    Draft202012Validator(_published_schema(client, event["type"])).validate(event)
