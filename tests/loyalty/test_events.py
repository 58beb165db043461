"""loyalty.points_earned, loyalty.tier_changed and referral.rewarded, as a partner's webhook
receives them, validate against their published JSON Schemas."""

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from integrations.event_schemas import envelope, schema_for
from integrations.models import Event
from loyalty import services
from tests.clinic.factories import PatientFactory

from .conftest import give

pytestmark = pytest.mark.django_db


def _validate(event: Event) -> None:
    body = envelope(
        event_id=str(event.pk),
        event_type=event.event_type,
        clinic_id=event.clinic_id,
        created_at=event.created_at,
        data=event.payload,
    )
    schema = schema_for(event.event_type)
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(body)


def test_loyalty_events_validate_against_their_schemas(clinic_a, account, program):
    give(account, 600, "big")  # points earned and a tier up
    friend = PatientFactory(clinic=clinic_a, phone="21955554444")
    services.referral_register(patient=friend, code=account.referral_code)
    from .test_referrals import visit

    visit(friend)  # attended and paid (events not delivered here: the reward is called)
    services.referral_reward(clinic_id=clinic_a.pk, patient_id=friend.pk, now=timezone.now())

    types = set(Event.objects.values_list("event_type", flat=True))
    assert {"loyalty.points_earned", "loyalty.tier_changed", "referral.rewarded"} <= types
    loyalty_types = {"loyalty.points_earned", "loyalty.tier_changed", "referral.rewarded"}
    for event in Event.objects.filter(event_type__in=loyalty_types):
        _validate(event)
