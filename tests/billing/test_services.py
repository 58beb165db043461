"""Billing rules: money in Decimal, payments at the desk and through a gateway whose
notifications converge, packages debited once per appointment, one NFS-e per payment,
and dunning that stops when the money arrives."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from billing import services
from billing.choices import InvoiceStatus, PackageStatus, PaymentStatus, TransactionKind
from billing.exceptions import InvalidPaymentTransition, PackageUnavailable, RefundTooLarge
from billing.models import FinancialTransaction, Invoice, Package, PackageSessionUse, Payment
from billing.money import brl, money
from billing.tasks import dunning_task
from clinic import services as clinic_services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from integrations import registry
from integrations.base import FiscalProvider, InvoiceUpdate, PaymentUpdate
from integrations.models import ConsoleRecord, Event, ProviderAccount
from scheduling import services as scheduling_services
from scheduling.choices import AppointmentStatus
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


# --- Money ----------------------------------------------------------------------------------
def test_money_is_decimal_rounded_half_up_and_never_a_float():
    assert money("150.005") == Decimal("150.01")
    assert money(Decimal("0.125")) == Decimal("0.13")
    assert brl(Decimal("1234.5")) == "R$ 1.234,50"
    with pytest.raises(TypeError):
        money(0.1)
    with pytest.raises(ValueError):
        money("dez reais")


# --- Fixtures -------------------------------------------------------------------------------
@pytest.fixture
def desk(clinic_a):
    professional = ProfessionalFactory(clinic=clinic_a)
    service = ServiceFactory(
        clinic=clinic_a, name="Fisioterapia", professionals=[professional], price=Decimal("180.00")
    )
    patient = PatientFactory(clinic=clinic_a, email="maria@example.com")
    clinic_services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    return {
        "clinic": clinic_a,
        "professional": professional,
        "service": service,
        "patient": patient,
    }


def appointment(desk, *, days=1, status=AppointmentStatus.SCHEDULED):
    return AppointmentFactory(
        clinic=desk["clinic"],
        service=desk["service"],
        professional=desk["professional"],
        patient=desk["patient"],
        start=timezone.now() + timedelta(days=days),
        status=status,
    )


def charge(desk, amount="150.90", **kwargs):
    return services.payment_charge_create(
        clinic=desk["clinic"], patient=desk["patient"], amount=amount, method="pix", **kwargs
    )


# --- Payments -------------------------------------------------------------------------------
def test_a_payment_at_the_desk_is_paid_with_its_ledger_line_and_event(desk):
    booked = appointment(desk)

    payment = services.payment_register(
        clinic=desk["clinic"],
        patient=desk["patient"],
        amount="180",
        method="cash",
        appointment=booked,
    )

    assert payment.status == PaymentStatus.PAID
    assert payment.amount == Decimal("180.00")
    [line] = FinancialTransaction.objects.all()
    assert (line.kind, line.amount, line.reconciled) == ("income", Decimal("180.00"), True)
    assert line.professional == desk["professional"] and line.service == desk["service"]
    assert line.competence_date == booked.start.date()
    assert list(Event.objects.values_list("event_type", flat=True).order_by("created_at")) == [
        "payment.created",
        "payment.received",
    ]


def test_a_charge_goes_to_the_gateway_and_keeps_its_pix_code(desk):
    payment = charge(desk)

    assert payment.status == PaymentStatus.PENDING
    assert payment.gateway == "console"
    assert payment.gateway_payment_id
    assert payment.pix_payload.startswith("000201")
    [record] = ConsoleRecord.objects.filter(kind="payments", operation="charge")
    assert record.payload["amount"] == "150.90"
    assert record.payload["external_reference"] == payment.reference


def test_a_gateway_notification_pays_once_and_a_late_one_never_unpays(desk):
    payment = charge(desk)
    paid = PaymentUpdate(
        gateway_payment_id=payment.gateway_payment_id,
        status="paid",
        external_reference=payment.reference,
        paid_at=timezone.now(),
    )

    services.payment_apply_update(clinic_id=desk["clinic"].pk, update=paid)
    services.payment_apply_update(clinic_id=desk["clinic"].pk, update=paid)  # replayed
    for late in ("pending", "overdue", "failed", "cancelled"):
        services.payment_apply_update(
            clinic_id=desk["clinic"].pk,
            update=PaymentUpdate(gateway_payment_id=payment.gateway_payment_id, status=late),
        )

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert Event.objects.filter(event_type="payment.received").count() == 1
    assert FinancialTransaction.objects.filter(kind=TransactionKind.INCOME).count() == 1


def test_a_refund_that_arrives_before_the_payment_converges_to_refunded(desk):
    payment = charge(desk, amount="100.00")

    services.payment_apply_update(
        clinic_id=desk["clinic"].pk,
        update=PaymentUpdate(
            gateway_payment_id=payment.gateway_payment_id,
            status="refunded",
            refunded_amount=Decimal("40.00"),
        ),
    )
    services.payment_apply_update(
        clinic_id=desk["clinic"].pk,
        update=PaymentUpdate(gateway_payment_id=payment.gateway_payment_id, status="paid"),
    )

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID  # partially refunded stays paid
    assert payment.refunded_amount == Decimal("40.00")
    assert payment.net_amount == Decimal("60.00")
    assert Event.objects.filter(event_type="payment.received").count() == 1


def test_a_notification_for_another_clinics_payment_changes_nothing(desk, clinic_b):
    payment = charge(desk)

    services.payment_apply_update(
        clinic_id=clinic_b.pk,
        update=PaymentUpdate(
            gateway_payment_id=payment.gateway_payment_id,
            status="paid",
            external_reference=payment.reference,
        ),
    )

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_the_gateway_webhook_pays_through_the_real_endpoint_once(
    client, desk, django_capture_on_commit_callbacks
):
    account = ProviderAccount.objects.create(
        clinic=desk["clinic"], kind="payments", provider="console"
    )
    payment = charge(desk)
    body = json.dumps({"id": "evt-1", "payment_id": payment.gateway_payment_id, "status": "paid"})

    for _ in range(2):  # the gateway delivers at least once
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/webhooks/console/{account.webhook_token}/",
                data=body,
                content_type="application/json",
            )
        assert response.status_code == 200

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert Event.objects.filter(event_type="payment.received").count() == 1


def test_partial_refunds_add_up_and_the_last_one_refunds_the_payment(desk):
    payment = services.payment_register(
        clinic=desk["clinic"], patient=desk["patient"], amount="100.00", method="cash"
    )

    services.payment_refund(payment=payment, amount="30.00", reason="desconto")
    with pytest.raises(RefundTooLarge):
        services.payment_refund(payment=payment, amount="70.01")
    services.payment_refund(payment=payment)  # the rest

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_amount == Decimal("100.00")
    expenses = FinancialTransaction.objects.filter(kind=TransactionKind.EXPENSE)
    assert sorted(e.amount for e in expenses) == [Decimal("30.00"), Decimal("70.00")]
    with pytest.raises(InvalidPaymentTransition):
        services.payment_refund(payment=payment, amount="1")


def test_a_paid_payment_cannot_be_cancelled(desk):
    payment = services.payment_register(
        clinic=desk["clinic"], patient=desk["patient"], amount="10", method="cash"
    )
    with pytest.raises(InvalidPaymentTransition):
        services.payment_cancel(payment=payment)


def test_totals_reconcile_in_the_ledger(desk):
    for amount in ("33.33", "33.33", "33.34"):
        services.payment_register(
            clinic=desk["clinic"], patient=desk["patient"], amount=amount, method="pix"
        )
    total = sum(
        FinancialTransaction.objects.filter(kind="income").values_list("amount", flat=True),
        Decimal("0"),
    )
    assert total == Decimal("100.00")
    assert sum(Payment.objects.values_list("amount", flat=True), Decimal("0")) == total


# --- Packages -------------------------------------------------------------------------------
@pytest.fixture
def package(desk):
    package = Package.objects.create(
        clinic=desk["clinic"], name="10 sessões", price=Decimal("1500.00"), validity_days=90
    )
    services.package_save_items(package=package, items=[(desk["service"], 10)])
    return package


def test_a_completed_appointment_debits_one_session_once_even_when_redelivered(
    desk, package, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sold, payment = services.package_sell(
            clinic=desk["clinic"], patient=desk["patient"], package=package
        )
    assert payment.status == PaymentStatus.PAID and payment.patient_package == sold
    booked = appointment(desk, days=0, status=AppointmentStatus.IN_PROGRESS)

    with django_capture_on_commit_callbacks(execute=True):
        scheduling_services.appointment_complete(appointment=booked)
    sold.refresh_from_db()
    assert sold.sessions_used == 1
    from billing.handlers import debit_package_session

    event = Event.objects.get(event_type="appointment.completed")
    debit_package_session(event, None)  # the same event delivered again

    sold.refresh_from_db()
    assert sold.sessions_used == 1
    assert sold.sessions_remaining == 9
    assert PackageSessionUse.objects.get().appointment == booked


def test_the_last_session_completes_the_package(desk, clinic_a):
    package = Package.objects.create(clinic=clinic_a, name="2 sessões", price=Decimal("300"))
    services.package_save_items(package=package, items=[(desk["service"], 2)])
    sold, _payment = services.package_sell(
        clinic=clinic_a, patient=desk["patient"], package=package
    )

    for days in (1, 2, 3):
        services.package_session_debit(appointment=appointment(desk, days=days), reason="completed")

    sold.refresh_from_db()
    assert (sold.sessions_used, sold.status) == (2, PackageStatus.COMPLETED)
    assert PackageSessionUse.objects.count() == 2  # the third had nothing left to debit


def test_a_no_show_spends_a_session_only_when_the_clinic_says_so(
    desk, package, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sold, _ = services.package_sell(
            clinic=desk["clinic"], patient=desk["patient"], package=package
        )
    first = appointment(desk, days=-1)
    with django_capture_on_commit_callbacks(execute=True):
        scheduling_services.appointment_mark_no_show(appointment=first)
    sold.refresh_from_db()
    assert sold.sessions_used == 0

    clinic = desk["clinic"]
    clinic.settings = {"billing": {"package_consumes_on_no_show": True}}
    clinic.save()
    second = appointment(desk, days=-2)
    with django_capture_on_commit_callbacks(execute=True):
        scheduling_services.appointment_mark_no_show(appointment=second)
    sold.refresh_from_db()
    assert sold.sessions_used == 1


def test_an_inactive_package_cannot_be_sold(desk, package):
    package.is_active = False
    package.save()
    with pytest.raises(PackageUnavailable):
        services.package_sell(clinic=desk["clinic"], patient=desk["patient"], package=package)


def test_packages_are_warned_15_days_before_and_expire_when_due(desk, package):
    sold, _ = services.package_sell(clinic=desk["clinic"], patient=desk["patient"], package=package)

    with time_machine.travel(sold.expires_at - timedelta(days=10), tick=False):
        assert services.packages_expiry_run() == (1, 0)
        assert services.packages_expiry_run() == (0, 0)  # warned once
    [warning] = OutboundMessage.objects.filter(template="pacote_vencendo")
    assert "10 sessões" in warning.body and "10 sessão" in warning.body
    with time_machine.travel(sold.expires_at + timedelta(minutes=1), tick=False):
        assert services.packages_expiry_run() == (0, 1)
    sold.refresh_from_db()
    assert sold.status == PackageStatus.EXPIRED


# --- NFS-e ----------------------------------------------------------------------------------
@pytest.fixture
def nfse(desk):
    clinic = desk["clinic"]
    clinic.settings = {"billing": {"nfse_enabled": True, "nfse_service_code": "04.03"}}
    clinic.save()
    return clinic


def test_a_received_payment_gets_exactly_one_invoice_even_when_the_event_repeats(
    desk, nfse, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        payment = services.payment_register(
            clinic=desk["clinic"], patient=desk["patient"], amount="180", method="pix"
        )
    from billing.handlers import issue_service_invoice

    issue_service_invoice(Event.objects.get(event_type="payment.received"), None)

    [invoice] = Invoice.objects.all()
    assert invoice.payment == payment
    assert invoice.status == InvoiceStatus.AUTHORIZED
    assert invoice.number
    assert ConsoleRecord.objects.filter(kind="fiscal", operation="issue").count() == 1


def test_no_invoice_when_the_clinic_has_not_enabled_them(desk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_register(
            clinic=desk["clinic"], patient=desk["patient"], amount="180", method="pix"
        )
    assert not Invoice.objects.exists()


@registry.register
class PickyFiscal(FiscalProvider):
    """A fiscal provider that rejects invoices without a customer address."""

    kind = "fiscal"
    name = "picky"

    def issue(self, invoice):
        if not invoice.extra["address"]["street"]:
            return InvoiceUpdate(
                reference=invoice.reference,
                status="error",
                errors=["Endereço do tomador obrigatório (corrija o cadastro do paciente)"],
            )
        return InvoiceUpdate(
            reference=invoice.reference,
            status="authorized",
            number="2026/42",
            verification_code="AB12",
        )


def test_a_rejected_invoice_shows_why_and_is_issued_after_the_correction(desk, nfse):
    ProviderAccount.objects.create(clinic=desk["clinic"], kind="fiscal", provider="picky")
    payment = services.payment_register(
        clinic=desk["clinic"], patient=desk["patient"], amount="180", method="pix"
    )

    invoice = services.invoice_issue(payment=payment)
    assert invoice.status == InvoiceStatus.ERROR
    assert invoice.errors == ["Endereço do tomador obrigatório (corrija o cadastro do paciente)"]
    assert Event.objects.filter(event_type="invoice.failed").exists()

    patient = desk["patient"]
    clinic_services.patient_update(patient=patient, street="Rua das Flores", number="100")
    invoice = services.invoice_retry(invoice=invoice)

    assert invoice.status == InvoiceStatus.AUTHORIZED
    assert (invoice.number, invoice.errors, invoice.attempts) == ("2026/42", [], 2)
    assert Invoice.objects.count() == 1


def test_an_invoice_is_cancelled_only_with_a_proper_reason(desk, nfse):
    from billing.exceptions import InvoiceError

    payment = services.payment_register(
        clinic=desk["clinic"], patient=desk["patient"], amount="180", method="pix"
    )
    invoice = services.invoice_issue(payment=payment)

    with pytest.raises(InvoiceError):
        services.invoice_cancel(invoice=invoice, justification="erro")
    invoice = services.invoice_cancel(
        invoice=invoice, justification="Valor lançado em duplicidade pela recepção"
    )
    assert invoice.status == InvoiceStatus.CANCELLED
    assert Event.objects.filter(event_type="invoice.cancelled").exists()


# --- Dunning --------------------------------------------------------------------------------
def test_dunning_reminds_at_d1_d3_d7_then_hands_to_a_person(desk):
    payment = charge(desk, due_date=timezone.localdate() - timedelta(days=1))
    start = timezone.now()

    for day, expected_step in ((0, 1), (1, 1), (2, 2), (6, 3)):
        with time_machine.travel(start + timedelta(days=day), tick=False):
            services.dunning_run()
        payment.refresh_from_db()
        assert payment.dunning_step == expected_step, day
    with time_machine.travel(start + timedelta(days=7), tick=False):
        services.dunning_run()
    payment.refresh_from_db()
    assert payment.dunning_flagged_at is not None
    keys = set(OutboundMessage.objects.values_list("idempotency_key", flat=True))
    assert keys == {f"dunning:{payment.pk}:1", f"dunning:{payment.pk}:2", f"dunning:{payment.pk}:3"}
    assert "R$ 150,90" in OutboundMessage.objects.first().body
    assert Event.objects.filter(event_type="payment.overdue").count() == 1


def test_dunning_runs_at_nine_in_each_clinics_own_time(desk):
    manaus = desk["clinic"]
    manaus.time_zone = "America/Manaus"
    manaus.save(update_fields=["time_zone"])
    payment = charge(desk, due_date=date(2026, 11, 22))
    nine_in_sao_paulo = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))

    with time_machine.travel(nine_in_sao_paulo, tick=False):
        assert dunning_task(local_hours=[9]) == 0  # 08:00 in Manaus
    with time_machine.travel(nine_in_sao_paulo + timedelta(hours=1), tick=False):
        assert dunning_task(local_hours=[9]) == 1
    payment.refresh_from_db()
    assert payment.dunning_step == 1


def test_a_payment_received_stops_the_dunning_at_once(desk):
    payment = charge(desk, due_date=timezone.localdate() - timedelta(days=1))
    services.dunning_run()
    services.payment_confirm(payment=payment)

    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        assert services.dunning_run() == 0
    assert OutboundMessage.objects.filter(template="cobranca").count() == 1


def test_nothing_is_sent_to_an_opted_out_patient(desk, django_capture_on_commit_callbacks):
    clinic_services.consent_revoke(
        patient=desk["patient"], channel=ContactChannel.WHATSAPP, purpose=ConsentPurpose.UTILITY
    )
    charge(desk, due_date=timezone.localdate() - timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        services.dunning_run()

    [message] = OutboundMessage.objects.filter(template="cobranca")
    assert message.status == "not_sent"
    assert ConsoleRecord.objects.filter(kind="whatsapp").count() == 0


def test_a_static_pix_code_carries_the_clinics_key_amount_and_reference(desk):
    from integrations.pix import brcode_parse

    clinic = desk["clinic"]
    clinic.settings = {
        "billing": {
            "pix_key": "+5511999990000",
            "pix_merchant_name": "Clínica Alfa Saúde",
            "pix_merchant_city": "São Paulo",
        }
    }
    clinic.save()
    payment = Payment.objects.create(
        clinic=clinic, patient=desk["patient"], amount=Decimal("150.90"), method="pix"
    )

    payment = services.payment_static_pix(payment=payment)

    code = brcode_parse(payment.pix_payload)
    assert code.key == "+5511999990000"
    assert code.amount == Decimal("150.90")
    assert code.txid == payment.reference[:25]
    assert code.name == "Clinica Alfa Saude"
    assert code.city == "Sao Paulo"
    services.payment_confirm(payment=payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID


def test_a_charge_no_gateway_can_create_stays_pending_with_the_error(desk):
    from billing.exceptions import GatewayUnavailable

    ProviderAccount.objects.create(
        clinic=desk["clinic"], kind="payments", provider="no-such-gateway"
    )

    with pytest.raises(GatewayUnavailable):
        charge(desk)

    [payment] = Payment.objects.all()
    assert payment.status == PaymentStatus.PENDING
    assert "no-such-gateway" in payment.last_error
    assert Event.objects.filter(event_type="payment.created").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_a_completion_debit_one_session(clinic_a):
    import threading

    from django.db import connection

    professional = ProfessionalFactory(clinic=clinic_a)
    service = ServiceFactory(clinic=clinic_a, professionals=[professional])
    patient = PatientFactory(clinic=clinic_a)
    package = Package.objects.create(clinic=clinic_a, name="5 sessões", price=Decimal("500"))
    services.package_save_items(package=package, items=[(service, 5)])
    sold, _ = services.package_sell(clinic=clinic_a, patient=patient, package=package)
    booked = AppointmentFactory(
        clinic=clinic_a,
        service=service,
        professional=professional,
        patient=patient,
        start=timezone.now() + timedelta(days=1),
    )
    barrier = threading.Barrier(2)
    errors = []

    def deliver():
        try:
            barrier.wait(timeout=10)
            services.package_session_debit(appointment=booked, reason="completed")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    sold.refresh_from_db()
    assert sold.sessions_used == 1
    assert PackageSessionUse.objects.count() == 1
