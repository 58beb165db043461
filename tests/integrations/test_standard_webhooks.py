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
