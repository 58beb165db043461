"""What a gateway says arrived is what the ledger books: a notification reporting less than
the charge leaves the rest owed and flags the payment for the desk; more is booked and
flagged too; replays book nothing twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.choices import PaymentDivergence, PaymentStatus, TransactionKind
from billing.models import FinancialTransaction, Payment
from clinic import services as clinic_services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from integrations.base import PaymentUpdate
from integrations.models import Event
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a):
    patient = PatientFactory(clinic=clinic_a, email="maria@example.com")
    clinic_services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    return patient


def charge(patient, amount="150.90", **kwargs) -> Payment:
    return services.payment_charge_create(
        clinic=patient.clinic, patient=patient, amount=amount, method="pix", **kwargs
    )


def notify(payment, amount, status="paid"):
    services.payment_apply_update(
        clinic_id=payment.clinic_id,
        update=PaymentUpdate(
            gateway_payment_id=payment.gateway_payment_id,
            status=status,
            amount=Decimal(amount) if amount is not None else None,
            external_reference=payment.reference,
            paid_at=timezone.now(),
        ),
    )
    payment.refresh_from_db()
    return payment


def income(payment) -> list[Decimal]:
    return sorted(
        FinancialTransaction.objects.filter(
            payment=payment, kind=TransactionKind.INCOME
        ).values_list("amount", flat=True)
    )


def test_a_notification_of_less_than_the_charge_leaves_the_rest_owed_and_flags_it(patient):
    payment = notify(charge(patient), "1.00")

    assert payment.status == PaymentStatus.PENDING  # not "paid"
    assert payment.amount_received == Decimal("1.00")
    assert payment.amount_owed == Decimal("149.90")
    assert payment.divergence == PaymentDivergence.UNDERPAID
    assert income(payment) == [Decimal("1.00")]  # only what arrived is income
    assert not Event.objects.filter(event_type="payment.received").exists()


def test_a_replayed_partial_notification_books_nothing_more(patient):
    payment = charge(patient)
    for _ in range(3):
        payment = notify(payment, "1.00")
    assert income(payment) == [Decimal("1.00")]


def test_the_rest_arriving_pays_it_and_books_only_the_rest(patient):
    payment = notify(charge(patient), "1.00")
    payment = notify(payment, "150.90")

    assert payment.status == PaymentStatus.PAID
    assert payment.amount_received == Decimal("150.90")
    assert payment.divergence == PaymentDivergence.NONE
    assert income(payment) == [Decimal("1.00"), Decimal("149.90")]
    assert sum(income(payment)) == payment.amount


def test_the_desk_confirming_an_underpaid_charge_books_the_rest(patient):
    payment = notify(charge(patient), "50.00")
    services.payment_confirm(payment=payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert income(payment) == [Decimal("50.00"), Decimal("100.90")]


def test_an_overpayment_is_paid_booked_as_it_arrived_and_flagged(patient):
    payment = notify(charge(patient), "200.00")

    assert payment.status == PaymentStatus.PAID
    assert payment.amount_received == Decimal("200.00")
    assert payment.divergence == PaymentDivergence.OVERPAID
    assert payment.amount_owed == Decimal("0")
    assert income(payment) == [Decimal("200.00")]
    event = Event.objects.get(event_type="payment.received")
    assert event.payload["amount_received"] == "200.00"


def test_a_notification_without_an_amount_pays_the_charge_in_full(patient):
    payment = notify(charge(patient), None)
    assert payment.status == PaymentStatus.PAID
    assert payment.divergence == PaymentDivergence.NONE
    assert income(payment) == [Decimal("150.90")]


def test_dunning_asks_only_for_what_is_still_owed(patient):
    payment = charge(patient, due_date=timezone.localdate() - timedelta(days=1))
    notify(payment, "100.00")
    assert services.dunning_run() == 1
    body = OutboundMessage.objects.get(template="cobranca").body
    assert "R$ 50,90" in body
    assert "R$ 150,90" not in body


def test_the_desk_finds_divergent_payments_with_the_amount_still_owed(
    client_for, receptionist_a, patient
):
    from django.urls import reverse
    from django.utils.translation import gettext

    short = notify(charge(patient), "1.00")
    charge(patient, amount="80.00")  # an ordinary pending charge
    client = client_for(receptionist_a)

    page = client.get(reverse("admin:billing_payment_changelist") + "?divergence=underpaid")

    html = page.content.decode()
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [short]
    assert "R$ 149,90" in html  # still owed
    assert gettext("Paid less than charged") in html
    detail = client.get(reverse("admin:billing_payment_change", args=[short.pk])).content.decode()
    assert "R$ 1,00" in detail and "R$ 149,90" in detail


def test_open_receivables_count_only_what_is_still_owed(patient):
    from billing import reports

    notify(charge(patient), "1.00")
    charge(patient, amount="80.00")

    summary = reports.receivables_summary(clinic=patient.clinic, today=timezone.localdate())
    assert (summary.count, summary.total) == (2, Decimal("229.90"))
