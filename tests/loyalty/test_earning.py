"""Earning rules: points per R$ paid net of discounts and refunds, converging whatever the
order and however often the gateway's notifications (and the events) arrive; visit,
confirmation and survey bonuses once per source; the medical switch keeps visit prizes off."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services as billing
from integrations.base import PaymentUpdate
from integrations.events import publish
from integrations.models import Delivery, Event
from integrations.outbox import delivery_run
from loyalty import services
from loyalty.choices import EntryKind
from loyalty.models import PointsEntry
from scheduling.choices import AppointmentStatus
from tests.clinic.factories import ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def balance(account) -> int:
    account.refresh_from_db()
    return account.balance


def charge(clinic, patient, amount="100.00", **kwargs):
    return billing.payment_charge_create(
        clinic=clinic, patient=patient, amount=amount, method="pix", **kwargs
    )


def notify(payment, status, **fields):
    billing.payment_apply_update(
        clinic_id=payment.clinic_id,
        update=PaymentUpdate(
            gateway_payment_id=payment.gateway_payment_id, status=status, **fields
        ),
    )


def test_a_payment_received_earns_points_per_real_paid(
    clinic_a, maria, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        billing.payment_register(clinic=clinic_a, patient=maria, amount="180.90", method="cash")

    assert balance(account) == 180
    [entry] = PointsEntry.objects.filter(account=account)
    assert entry.kind == EntryKind.EARN and entry.reference_type == "payment"
    assert Event.objects.filter(event_type="loyalty.points_earned").count() == 1


def test_a_webhook_replayed_five_times_out_of_order_with_its_refund_nets_the_right_points(
    clinic_a, maria, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        payment = charge(clinic_a, maria, amount="100.00")
    with django_capture_on_commit_callbacks(execute=True):
        # The refund's notification arrives first, then "paid", five times each.
        for _ in range(5):
            notify(payment, "refunded", refunded_amount=Decimal("40.00"))
        for _ in range(5):
            notify(payment, "paid", paid_at=timezone.now())

    assert balance(account) == 60
    # Every loyalty delivery redelivered (a lost acknowledgement), in reverse order.
    deliveries = Delivery.objects.filter(subscriber__startswith="handler:loyalty").order_by("-pk")
    assert deliveries.count() >= 2
    for delivery in deliveries:
        Delivery.objects.filter(pk=delivery.pk).update(status="pending")
        delivery_run(delivery_id=delivery.pk)
    assert balance(account) == 60
    assert PointsEntry.objects.filter(account=account, kind=EntryKind.EARN).count() == 1


def test_a_refund_after_the_points_reverses_its_share_once(
    clinic_a, maria, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        payment = charge(clinic_a, maria, amount="100.00")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            notify(payment, "paid", paid_at=timezone.now())
    assert balance(account) == 100

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            notify(payment, "refunded", refunded_amount=Decimal("40.00"))
    assert balance(account) == 60
    with django_capture_on_commit_callbacks(execute=True):
        notify(payment, "refunded")  # the whole payment (a chargeback)
    assert balance(account) == 0
    reversals = PointsEntry.objects.filter(account=account, kind=EntryKind.REVERSE)
    assert sorted(reversals.values_list("points", flat=True)) == [-60, -40]


def test_points_already_spent_are_not_taken_below_zero_by_a_refund(
    clinic_a, maria, account, voucher_reward, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        payment = billing.payment_register(
            clinic=clinic_a, patient=maria, amount="120", method="cash"
        )
    services.reward_redeem(account=account, reward=voucher_reward)  # 100 of the 120 spent
    with django_capture_on_commit_callbacks(execute=True):
        billing.payment_refund(payment=payment)

    assert balance(account) == 0  # the 20 left are reversed; the 100 spent stay spent


def test_a_voucher_discount_earns_on_the_net_amount_and_the_invoice_sees_it(
    clinic_a, maria, account, voucher_reward, django_capture_on_commit_callbacks
):
    from .conftest import give

    give(account, 100, "seed")
    redemption = services.reward_redeem(account=account, reward=voucher_reward)
    with django_capture_on_commit_callbacks(execute=True):
        payment = billing.payment_register(
            clinic=clinic_a,
            patient=maria,
            amount="150.00",
            method="cash",
            discount_code=redemption.code.lower(),
        )

    payment.refresh_from_db()
    assert payment.amount == Decimal("130.00")
    assert payment.amount_received == Decimal("130.00")
    assert payment.transactions.get().amount == Decimal("130.00")  # the cash report's line
    [discount] = payment.discounts.all()
    assert (discount.gross_amount, discount.amount) == (Decimal("150.00"), Decimal("20.00"))
    assert balance(account) == 130  # 100 − 100 + 130 earned on what was paid
    redemption.refresh_from_db()
    assert redemption.status == "used" and redemption.payment == payment


def test_a_voucher_is_used_once_and_only_by_its_patient(
    clinic_a, maria, account, voucher_reward, django_capture_on_commit_callbacks
):
    from billing.exceptions import DiscountRefused
    from billing.models import Payment
    from tests.clinic.factories import PatientFactory

    from .conftest import give

    give(account, 100, "seed")
    code = services.reward_redeem(account=account, reward=voucher_reward).code
    other = PatientFactory(clinic=clinic_a)
    with pytest.raises(DiscountRefused, match="another patient"):
        billing.payment_register(
            clinic=clinic_a, patient=other, amount="150", method="cash", discount_code=code
        )
    billing.payment_register(
        clinic=clinic_a, patient=maria, amount="150", method="cash", discount_code=code
    )
    with pytest.raises(DiscountRefused, match="already used"):
        billing.payment_register(
            clinic=clinic_a, patient=maria, amount="150", method="cash", discount_code=code
        )
    with pytest.raises(DiscountRefused, match="not a valid voucher"):
        billing.payment_register(
            clinic=clinic_a, patient=maria, amount="150", method="cash", discount_code="NOPE1234"
        )
    assert Payment.objects.filter(clinic=clinic_a).count() == 1  # no partial writes


def _appointment(clinic, patient, **kwargs):
    professional = ProfessionalFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, professionals=[professional])
    return AppointmentFactory(
        clinic=clinic, patient=patient, professional=professional, service=service, **kwargs
    )


def test_visit_and_confirmation_bonuses_are_credited_once(
    clinic_a, maria, account, django_capture_on_commit_callbacks
):
    appointment = _appointment(
        clinic_a,
        maria,
        start=timezone.now() + timedelta(days=3),
        status=AppointmentStatus.CONFIRMED,
        confirmed_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            publish(
                "appointment.confirmed", clinic=clinic_a, payload={"appointment_id": appointment.pk}
            )
            publish(
                "appointment.completed", clinic=clinic_a, payload={"appointment_id": appointment.pk}
            )

    assert balance(account) == 5 + 20


def test_a_medical_clinic_gives_no_prize_for_a_visit(
    clinic_a, maria, account, program, django_capture_on_commit_callbacks
):
    program.medical_mode = True
    program.save()
    appointment = _appointment(clinic_a, maria, start=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        publish(
            "appointment.completed", clinic=clinic_a, payload={"appointment_id": appointment.pk}
        )

    assert balance(account) == 0


def test_the_survey_hook_credits_once_per_answer(
    clinic_a, maria, account, program, django_capture_on_commit_callbacks
):
    program.survey_points = 15
    program.save()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            publish(
                "feedback.received",
                clinic=clinic_a,
                payload={"patient_id": maria.pk, "feedback_id": 7},
            )

    assert balance(account) == 15


def test_nothing_is_earned_while_the_programme_is_off(
    clinic_a, maria, account, program, django_capture_on_commit_callbacks
):
    program.is_active = False
    program.save()
    with django_capture_on_commit_callbacks(execute=True):
        billing.payment_register(clinic=clinic_a, patient=maria, amount="100", method="cash")

    assert balance(account) == 0


def test_the_birthday_bonus_is_credited_once_a_year(clinic_a, maria, account, program):
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    import time_machine

    from loyalty.tasks import tiers_evaluate_task

    program.birthday_points = 30
    program.save()
    maria.birth_date = date(1980, 3, 15)
    maria.save(update_fields=["birth_date"])
    with time_machine.travel(datetime(2026, 3, 15, 2, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))):
        tiers_evaluate_task(local_hours=[2])
        tiers_evaluate_task(local_hours=[2])  # a rerun of the night
    with time_machine.travel(datetime(2026, 3, 16, 2, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))):
        tiers_evaluate_task(local_hours=[2])

    assert balance(account) == 30
