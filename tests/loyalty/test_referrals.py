"""Referrals: a lead with the code (CRM's ``lead.created`` with ``referral_code``) becomes
a patient (``lead.converted``); when the first visit is attended and paid both are
rewarded, once. Self-referral, an existing patient and the monthly limit are refused."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing import services as billing
from integrations.events import publish
from integrations.models import Event
from loyalty import services
from loyalty.choices import ReferralStatus
from loyalty.exceptions import ReferralRefused
from loyalty.models import Referral
from scheduling.choices import AppointmentStatus
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def visit(patient, *, paid=True, days_ago=1):
    """An appointment of the patient, attended (completed) and paid at the desk."""
    professional = ProfessionalFactory(clinic=patient.clinic)
    appointment = AppointmentFactory(
        clinic=patient.clinic,
        patient=patient,
        professional=professional,
        service=ServiceFactory(clinic=patient.clinic, professionals=[professional]),
        start=timezone.now() - timedelta(days=days_ago),
        status=AppointmentStatus.COMPLETED,
    )
    publish(
        "appointment.completed",
        clinic=patient.clinic,
        payload={"appointment_id": appointment.pk, "patient_id": patient.pk},
    )
    if paid:
        billing.payment_register(
            clinic=patient.clinic,
            patient=patient,
            amount="10",
            method="cash",
            appointment=appointment,
        )
    return appointment


def lead_arrives(clinic, account, lead_id):
    publish(
        "lead.created",
        clinic=clinic,
        payload={"lead_id": lead_id, "referral_code": account.referral_code.lower()},
    )


def test_the_honest_referral_rewards_both_once(
    clinic_a, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lead_arrives(clinic_a, account, 501)
        lead_arrives(clinic_a, account, 501)  # redelivered
    referral = Referral.objects.get(lead_id=501)
    assert referral.referrer == account and referral.status == ReferralStatus.PENDING

    joana = PatientFactory(clinic=clinic_a, phone="21999998888", email="joana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        publish("lead.converted", clinic=clinic_a, payload={"lead_id": 501, "patient_id": joana.pk})
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.CONVERTED

    with django_capture_on_commit_callbacks(execute=True):
        visit(joana, paid=False, days_ago=2)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.CONVERTED  # attended but not paid yet

    with django_capture_on_commit_callbacks(execute=True):
        billing.payment_register(clinic=clinic_a, patient=joana, amount="10", method="cash")
        visit(joana)  # a second visit and payment: still rewarded once
    referral.refresh_from_db()
    account.refresh_from_db()
    assert referral.status == ReferralStatus.REWARDED
    assert account.balance == 100
    joana_account = services.account_for(joana)
    # the referral bonus, two attended visits (20 each) and her two payments
    assert joana_account.balance == 50 + 2 * 20 + 10 + 10
    assert Event.objects.filter(event_type="referral.rewarded").count() == 1


def test_self_referral_by_phone_email_or_the_same_record_is_refused(clinic_a, maria, account):
    # (the same CPF is the same record: CPF is unique per clinic)
    for i, same in enumerate([{"phone": maria.phone}, {"email": maria.email.upper()}]):
        other = PatientFactory(
            clinic=clinic_a, **{"phone": f"3199999000{i}", "email": "", "cpf": "", **same}
        )
        referral = services.referral_register(patient=other, code=account.referral_code)
        assert referral.status == ReferralStatus.REFUSED
        assert referral.refusal_reason

    referral = Referral.objects.create(clinic=clinic_a, referrer=account, lead_id=9)
    services.referral_convert(clinic_id=clinic_a.pk, lead_id=9, patient_id=maria.pk)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.REFUSED


def test_referring_someone_who_already_was_a_patient_is_refused(
    clinic_a, account, django_capture_on_commit_callbacks
):
    with time_machine.travel(timezone.now() - timedelta(days=90)):
        old = PatientFactory(clinic=clinic_a, phone="21988887777")
    with django_capture_on_commit_callbacks(execute=True):
        lead_arrives(clinic_a, account, 77)
        publish("lead.converted", clinic=clinic_a, payload={"lead_id": 77, "patient_id": old.pk})
        visit(old)

    referral = Referral.objects.get(lead_id=77)
    assert referral.status == ReferralStatus.REFUSED
    assert referral.refusal_reason
    account.refresh_from_db()
    assert account.balance == 0


def test_more_than_the_monthly_limit_is_refused(
    clinic_a, account, program, django_capture_on_commit_callbacks
):
    program.referral_monthly_limit = 2
    program.save()
    friends = [PatientFactory(clinic=clinic_a, phone=f"2197777000{i}") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for friend in friends:
            services.referral_register(patient=friend, code=account.referral_code)
            visit(friend)

    statuses = [Referral.objects.get(referred_patient=f).status for f in friends]
    assert statuses == [ReferralStatus.REWARDED, ReferralStatus.REWARDED, ReferralStatus.REFUSED]
    account.refresh_from_db()
    assert account.balance == 200


def test_an_unknown_code_at_registration_is_a_clear_error(clinic_a, program):
    with pytest.raises(ReferralRefused) as exc:
        services.referral_register(patient=PatientFactory(clinic=clinic_a), code="ZZZZ9999")
    assert "referral_code" in exc.value.fields


def test_a_code_of_another_clinic_refers_no_one(
    clinic_a, clinic_b, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(
            "lead.created",
            clinic=clinic_b,
            payload={"lead_id": 1, "referral_code": account.referral_code},
        )
    assert not Referral.objects.exists()
