"""Billing in the admin: the desk registers and charges payments in two clicks, prints
receipts and refunds; managers keep packages, NFS-e, the ledger, the reports (whose files
add up) and reconcile settlements — each page limited to the clinic and the role."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext
from openpyxl import load_workbook

from billing import selectors, services
from billing.admin.desk import OPERATIONS
from billing.choices import (
    Gateway,
    InvoiceStatus,
    PackageStatus,
    PaymentStatus,
    TransactionKind,
)
from billing.models import FinancialTransaction, Package, PatientPackage, Payment
from billing.money import money
from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import Membership
from integrations.base import PaymentUpdate
from integrations.pix import brcode_parse
from tests.billing.factories import (
    ExpenseFactory,
    InvoiceFactory,
    PackageFactory,
    PaymentFactory,
)
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

P = PaymentStatus


# --- Fixtures and helpers -------------------------------------------------------------------
def _errors_of(page, field: str):
    """The errors of ``field`` on the page's form: the rendered context whose ``form`` has
    that field (``page.context["form"]`` is the first ``form`` of any template rendered, which
    need not be the page's own)."""
    forms = [c["form"] for c in page.context if "form" in c and field in c["form"].fields]
    assert forms, f"no form with a {field!r} field on the page"
    return forms[0].errors[field]


@pytest.fixture
def desk(clinic_a, patient_a):
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Ana Lima")
    service = ServiceFactory(
        clinic=clinic_a, name="Fisioterapia", professionals=[professional], price=Decimal("180.00")
    )
    appointment = AppointmentFactory(
        clinic=clinic_a,
        service=service,
        professional=professional,
        patient=patient_a,
        start=timezone.now() + timedelta(hours=1),
    )
    return {
        "clinic": clinic_a,
        "patient": patient_a,
        "professional": professional,
        "service": service,
        "appointment": appointment,
    }


@pytest.fixture
def manager_b(clinic_b):
    user = UserFactory(username="gerente_b")
    clinic_services.membership_save(
        membership=Membership(user=user, clinic=clinic_b, role=MembershipRole.MANAGER)
    )
    user.refresh_from_db()
    return user


def register_url(**params) -> str:
    url = reverse("admin:billing_payment_register")
    return f"{url}?{'&'.join(f'{k}={v}' for k, v in params.items())}" if params else url


def received(desk, amount="180.00", method="cash", **kwargs) -> Payment:
    return services.payment_register(
        clinic=desk["clinic"], patient=desk["patient"], amount=amount, method=method, **kwargs
    )


def console_charge(clinic, patient, amount="150.00", method="pix") -> Payment:
    return services.payment_charge_create(
        clinic=clinic, patient=patient, amount=amount, method=method
    )


def gateway_paid(payment: Payment) -> Payment:
    """What the gateway's "paid" notification does."""
    services.payment_apply_update(
        clinic_id=payment.clinic_id,
        update=PaymentUpdate(
            gateway_payment_id=payment.gateway_payment_id, status="paid", amount=payment.amount
        ),
    )
    payment.refresh_from_db()
    return payment


def action(client, model: str, name: str, *objects):
    return client.post(
        reverse(f"admin:billing_{model}_changelist"),
        {"action": name, "_selected_action": [o.pk for o in objects]},
        follow=True,
    )


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def t(text) -> str:
    """A message as the pages show it (pt-BR, once the catalogue has it)."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(gettext(str(text)))


# --- At the desk ----------------------------------------------------------------------------
def test_the_desk_registers_an_appointments_payment_in_two_steps(client_for, receptionist_a, desk):
    client = client_for(receptionist_a)
    url = register_url(appointment=desk["appointment"].pk)

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="180,00"' in html  # the appointment's price, the Brazilian way
    assert "Fisioterapia" in html

    response = client.post(url, {"amount": "180,00", "method": "cash", "_receive": "1"})

    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_payment_change", args=[payment.pk])
    assert payment.status == P.PAID
    assert payment.amount == Decimal("180.00")
    assert payment.method == "cash"
    assert payment.appointment == desk["appointment"]
    assert payment.created_by == receptionist_a
    income = FinancialTransaction.objects.get(payment=payment)
    assert income.kind == TransactionKind.INCOME
    assert income.amount == Decimal("180.00")
    assert income.professional == desk["professional"]
    assert income.reconciled  # cash in hand


def test_the_desk_reaches_the_register_page_from_the_patient_and_the_payment_list(
    client_for, receptionist_a, desk
):
    client = client_for(receptionist_a)

    page = client.get(register_url(patient=desk["patient"].pk))
    assert page.status_code == 200
    assert desk["patient"].display_name in page.content.decode()
    changelist = client.get(reverse("admin:billing_payment_changelist")).content.decode()
    assert reverse("admin:billing_payment_register") in changelist
    # The admin's own "add" page leads there too: no form writes payments directly.
    add = client.get(reverse("admin:billing_payment_add") + f"?patient={desk['patient'].pk}")
    assert add.status_code == 302
    assert add["Location"] == register_url(patient=desk["patient"].pk)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("150,50", "150.50"), ("1.234,56", "1234.56"), ("R$ 80", "80.00"), ("99.9", "99.90")],
)
def test_amounts_are_read_the_brazilian_way(client_for, receptionist_a, desk, typed, stored):
    client_for(receptionist_a).post(
        register_url(patient=desk["patient"].pk),
        {"amount": typed, "method": "pix", "_receive": "1"},
    )

    assert Payment.objects.get().amount == Decimal(stored)


@pytest.mark.parametrize("typed", ["0", "-10", "150,505", "dez reais", ""])
def test_a_bad_amount_is_a_form_error_and_registers_nothing(
    client_for, receptionist_a, desk, typed
):
    page = client_for(receptionist_a).post(
        register_url(patient=desk["patient"].pk),
        {"amount": typed, "method": "cash", "_receive": "1"},
    )

    assert page.status_code == 200
    assert _errors_of(page, "amount")
    assert not Payment.objects.exists()


def test_receiving_needs_a_method_and_a_charge_needs_its_kind(client_for, receptionist_a, desk):
    client = client_for(receptionist_a)
    url = register_url(patient=desk["patient"].pk)

    receive = client.post(url, {"amount": "100", "_receive": "1"})
    charge = client.post(url, {"amount": "100", "method": "cash", "_charge": "1"})

    assert "method" in receive.context["form"].errors
    assert "charge_method" in charge.context["form"].errors
    assert not Payment.objects.exists()


def test_the_patient_is_chosen_on_the_page_when_none_is_given(
    client_for, receptionist_a, desk, patient_b
):
    client = client_for(receptionist_a)
    url = register_url()

    refused = client.post(url, {"patient": patient_b.pk, "amount": "50", "method": "cash"})
    assert "patient" in refused.context["form"].errors  # another clinic's: not a choice

    client.post(url, {"patient": desk["patient"].pk, "amount": "50", "method": "cash"})
    assert Payment.objects.get().patient == desk["patient"]


def test_a_pix_charge_shows_its_copy_and_paste_code_and_qr(client_for, receptionist_a, desk):
    client = client_for(receptionist_a)

    response = client.post(
        register_url(appointment=desk["appointment"].pk),
        {"amount": "180,00", "charge_method": "pix", "_charge": "1"},
    )

    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_payment_charge", args=[payment.pk])
    assert payment.status == P.PENDING
    assert payment.gateway == Gateway.CONSOLE
    assert payment.gateway_payment_id.startswith("console-pay-")
    assert brcode_parse(payment.pix_payload).amount == Decimal("180.00")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert payment.pix_payload in html
    assert "<svg" in html and 'class="pix-qr"' in html
    assert 'data-copy="pix-code"' in html  # the copy button, with its script inline
    assert "navigator.clipboard" in html
    assert "cdn" not in html.lower()
    assert not FinancialTransaction.objects.exists()  # nothing received yet


def test_a_boleto_charge_links_to_its_boleto_and_payment_page(client_for, receptionist_a, desk):
    client = client_for(receptionist_a)

    response = client.post(
        register_url(patient=desk["patient"].pk),
        {"amount": "300", "charge_method": "boleto", "_charge": "1", "due_date": "2099-01-10"},
        follow=True,
    )

    payment = Payment.objects.get()
    assert payment.due_date == date(2099, 1, 10)
    html = response.content.decode()
    assert payment.boleto_url and payment.boleto_url in html
    assert payment.invoice_url in html


def test_a_charge_due_in_the_past_is_refused(client_for, receptionist_a, desk):
    page = client_for(receptionist_a).post(
        register_url(patient=desk["patient"].pk),
        {"amount": "300", "charge_method": "pix", "_charge": "1", "due_date": "2020-01-01"},
    )

    assert "due_date" in page.context["form"].errors
    assert not Payment.objects.exists()


def test_the_clinics_pix_key_shows_a_qr_then_the_desk_registers_it_received(
    client_for, receptionist_a, desk
):
    clinic = desk["clinic"]
    clinic.settings = {"billing": {"pix_key": "financeiro@clinica-alfa.com.br"}}
    clinic.save()
    client = client_for(receptionist_a)
    url = register_url(patient=desk["patient"].pk)
    assert "_static_pix" in client.get(url).content.decode()

    shown = client.post(url, {"amount": "95,00", "description": "Avaliação", "_static_pix": "1"})

    assert shown.status_code == 200
    payload = shown.context["static_pix"]["payload"]
    code = brcode_parse(payload)
    assert code.key == "financeiro@clinica-alfa.com.br"
    assert code.amount == Decimal("95.00")
    assert payload in shown.content.decode() and "<svg" in shown.content.decode()
    assert not Payment.objects.exists()  # nothing is written before the money arrives

    client.post(
        url, {"amount": "95,00", "description": "Avaliação", "method": "pix", "_receive": "1"}
    )
    payment = Payment.objects.get()
    assert (payment.status, payment.method, payment.description) == (P.PAID, "pix", "Avaliação")


def test_without_a_pix_key_there_is_no_static_pix_option(client_for, receptionist_a, desk):
    client = client_for(receptionist_a)
    url = register_url(patient=desk["patient"].pk)

    assert "_static_pix" not in client.get(url).content.decode()


def test_the_patient_page_can_link_to_the_patients_payments(client_for, receptionist_a, desk):
    mine = received(desk)
    received_by_other = services.payment_register(
        clinic=desk["clinic"],
        patient=PatientFactory(clinic=desk["clinic"]),
        amount="5",
        method="cash",
    )

    page = client_for(receptionist_a).get(
        reverse("admin:billing_payment_changelist"), {"patient__id__exact": desk["patient"].pk}
    )

    assert list(page.context["cl"].result_list) == [mine]
    assert received_by_other not in page.context["cl"].result_list


# --- The payment page, actions and refunds --------------------------------------------------
def test_the_payment_page_is_read_only(client_for, receptionist_a, desk):
    payment = received(desk)
    client = client_for(receptionist_a)
    url = reverse("admin:billing_payment_change", args=[payment.pk])

    page = client.get(url)

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert "R$ 180,00" in html
    assert reverse("admin:billing_payment_receipt", args=[payment.pk]) in html
    assert reverse("admin:billing_payment_refund", args=[payment.pk]) in html
    assert client.post(url, {"amount": "1"}).status_code == 403
    assert (
        client.post(reverse("admin:billing_payment_delete", args=[payment.pk])).status_code == 403
    )
    payment.refresh_from_db()
    assert payment.amount == Decimal("180.00")


def test_a_refund_can_be_partial_then_full(client_for, receptionist_a, desk):
    payment = received(desk, amount="200.00")
    client = client_for(receptionist_a)
    url = reverse("admin:billing_payment_refund", args=[payment.pk])
    assert "R$ 200,00" in client.get(url).content.decode()

    partial = client.post(url, {"amount": "50,00", "reason": "Sessão não realizada"})
    payment.refresh_from_db()
    assert partial.status_code == 302
    assert (payment.status, payment.refunded_amount) == (P.PAID, Decimal("50.00"))

    too_much = client.post(url, {"amount": "150,01"})
    assert too_much.status_code == 200
    assert "R$ 150,00" in str(too_much.context["form"].errors["amount"])

    client.post(url, {"amount": "150,00", "reason": "Desistência"})
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (P.REFUNDED, Decimal("200.00"))
    refunds = FinancialTransaction.objects.filter(payment=payment, kind=TransactionKind.EXPENSE)
    assert sorted(r.amount for r in refunds) == [Decimal("50.00"), Decimal("150.00")]
    again = client.get(url, follow=True)
    assert t("Only a paid payment can be refunded.") in page_messages(again)


def test_the_refund_action_opens_the_refund_form_for_one_payment(client_for, receptionist_a, desk):
    first, second = received(desk), received(desk)
    client = client_for(receptionist_a)

    one = client.post(
        reverse("admin:billing_payment_changelist"),
        {"action": "refund_selected", "_selected_action": [first.pk]},
    )
    two = action(client, "payment", "refund_selected", first, second)

    assert one["Location"] == reverse("admin:billing_payment_refund", args=[first.pk])
    assert t("Choose one payment to refund.") in page_messages(two)


def test_a_gateway_payment_is_refunded_at_the_gateway(client_for, receptionist_a, desk):
    payment = gateway_paid(console_charge(desk["clinic"], desk["patient"], amount="120.00"))

    client_for(receptionist_a).post(
        reverse("admin:billing_payment_refund", args=[payment.pk]), {"amount": "20"}
    )

    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("20.00")
    assert payment.refunds.get().amount == Decimal("20.00")


def test_confirm_and_cancel_go_through_the_services(client_for, receptionist_a, desk):
    transfer = PaymentFactory(clinic=desk["clinic"], patient=desk["patient"])
    charge = console_charge(desk["clinic"], desk["patient"])
    client = client_for(receptionist_a)

    confirmed = action(client, "payment", "confirm_selected", transfer, charge)
    action(client, "payment", "cancel_selected", charge)

    transfer.refresh_from_db()
    charge.refresh_from_db()
    assert transfer.status == P.PAID and transfer.paid_at is not None
    assert FinancialTransaction.objects.get(payment=transfer).kind == TransactionKind.INCOME
    # A gateway's charge is confirmed by the gateway, not by hand.
    refused = t(OPERATIONS["confirm"].refused)
    assert any(m.endswith(refused) for m in page_messages(confirmed))
    assert charge.status == P.CANCELLED


def test_a_charge_no_gateway_took_is_charged_again_or_paid_to_the_clinics_key(
    client_for, receptionist_a, desk, settings
):
    settings.CUIDAR_DEFAULT_PROVIDERS = {"payments": ["nowhere"]}
    clinic = desk["clinic"]
    clinic.settings = {"billing": {"pix_key": "+55 11 98765-4321"}}
    clinic.save()
    client = client_for(receptionist_a)

    response = client.post(
        register_url(patient=desk["patient"].pk),
        {"amount": "70", "charge_method": "pix", "_charge": "1"},
        follow=True,
    )

    payment = Payment.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:billing_payment_charge", args=[payment.pk]
    )
    gateway_error = t("No payment gateway could create the charge: %(error)s").split("%")[0]
    assert any(m.startswith(gateway_error) for m in page_messages(response))
    html = response.content.decode()
    do = reverse("admin:billing_payment_do", args=[payment.pk, "static_pix"])
    assert do in html

    settings.CUIDAR_DEFAULT_PROVIDERS = {"payments": ["console"]}
    client.post(reverse("admin:billing_payment_do", args=[payment.pk, "charge_again"]))
    payment.refresh_from_db()
    assert payment.gateway == Gateway.CONSOLE and payment.pix_payload


def test_the_static_pix_button_gives_a_pending_payment_the_clinics_code(
    client_for, receptionist_a, desk
):
    clinic = desk["clinic"]
    clinic.settings = {"billing": {"pix_key": "52998224725"}}
    clinic.save()
    payment = PaymentFactory(clinic=clinic, patient=desk["patient"], method="pix")
    client = client_for(receptionist_a)
    charge_page = reverse("admin:billing_payment_charge", args=[payment.pk])

    client.post(
        reverse("admin:billing_payment_do", args=[payment.pk, "static_pix"]),
        {"next": charge_page},
    )

    payment.refresh_from_db()
    assert brcode_parse(payment.pix_payload).key == "52998224725"
    html = client.get(charge_page).content.decode()
    assert payment.pix_payload in html
    assert reverse("admin:billing_payment_do", args=[payment.pk, "confirm"]) in html


def test_a_paid_payment_offers_no_charge_again_or_cancel(client_for, receptionist_a, desk):
    payment = received(desk)
    client = client_for(receptionist_a)

    for name in ("charge_again", "cancel", "confirm"):
        response = client.post(
            reverse("admin:billing_payment_do", args=[payment.pk, name]), follow=True
        )
        assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == P.PAID
    assert (
        client.get(reverse("admin:billing_payment_do", args=[payment.pk, "cancel"])).status_code
        == 405
    )
    assert (
        client.post(reverse("admin:billing_payment_do", args=[payment.pk, "nope"])).status_code
        == 404
    )


# --- Receipt --------------------------------------------------------------------------------
def test_the_receipt_of_a_paid_payment_is_printable(client_for, receptionist_a, desk):
    clinic = desk["clinic"]
    clinic.legal_name = "Clínica Alfa Serviços de Saúde Ltda"
    clinic.street, clinic.number, clinic.city = "Rua das Flores", "100", "São Paulo"
    clinic.save()
    payment = received(
        desk,
        amount="1234.50",
        method="pix",
        description="Fisioterapia",
        appointment=desk["appointment"],
    )

    page = client_for(receptionist_a).get(
        reverse("admin:billing_payment_receipt", args=[payment.pk])
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert "Clínica Alfa Serviços de Saúde Ltda" in html
    assert clinic.cnpj_formatted in html
    assert "Rua das Flores" in html
    assert "Maria José Araújo" in html and "529.982.247-25" in html
    assert "R$ 1.234,50" in html
    assert "Fisioterapia" in html and "Dra. Ana Lima" in html
    assert "Recibo" in html or "Receipt" in html
    assert "data-print" in html and "@media print" in html  # behaviours.js prints (CSP)


def test_there_is_no_receipt_for_an_unpaid_payment_or_another_clinics(
    client_for, receptionist_a, receptionist_b, desk
):
    pending = PaymentFactory(clinic=desk["clinic"], patient=desk["patient"])
    paid = received(desk)

    assert (
        client_for(receptionist_a)
        .get(reverse("admin:billing_payment_receipt", args=[pending.pk]))
        .status_code
        == 404
    )
    assert (
        client_for(receptionist_b)
        .get(reverse("admin:billing_payment_receipt", args=[paid.pk]))
        .status_code
        == 404
    )


# --- Packages -------------------------------------------------------------------------------
def _package_post(name, items, price="900,00"):
    data = {
        "name": name,
        "price": price,
        "regular_price": "1000",
        "validity_days": "180",
        "is_active": "on",
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "1000",
    }
    for index, (service, quantity) in enumerate(items):
        data[f"items-{index}-service"] = service.pk
        data[f"items-{index}-quantity"] = quantity
    return data


def test_a_manager_sets_up_a_package_and_its_sessions_are_counted(client_for, manager_a, desk):
    pilates = ServiceFactory(clinic=desk["clinic"], name="Pilates")
    client = client_for(manager_a)

    response = client.post(
        reverse("admin:billing_package_add"),
        _package_post("Reabilitação", [(desk["service"], 8), (pilates, 2)]),
    )

    assert response.status_code == 302
    package = Package.objects.get()
    assert package.clinic == desk["clinic"]
    assert package.total_sessions == 10
    assert {(i.service.name, i.quantity) for i in package.items.all()} == {
        ("Fisioterapia", 8),
        ("Pilates", 2),
    }


def test_a_package_lists_each_service_once_and_only_the_clinics_services(
    client_for, manager_a, desk, clinic_b
):
    theirs = ServiceFactory(clinic=clinic_b)
    client = client_for(manager_a)
    url = reverse("admin:billing_package_add")

    twice = client.post(url, _package_post("Dobro", [(desk["service"], 1), (desk["service"], 2)]))
    foreign = client.post(url, _package_post("Alheio", [(theirs, 1)]))

    assert twice.status_code == 200 and foreign.status_code == 200
    assert not Package.objects.exists()


def test_the_desk_sells_a_package_paid_now(client_for, receptionist_a, desk):
    package = PackageFactory(clinic=desk["clinic"], items=[(desk["service"], 10)])
    client = client_for(receptionist_a)
    url = reverse("admin:billing_patientpackage_sell") + f"?patient={desk['patient'].pk}"

    assert package.name in client.get(url).content.decode()
    response = client.post(url, {"package": package.pk, "method": "credit_card", "_receive": "1"})

    sold = PatientPackage.objects.get()
    assert response["Location"] == reverse("admin:billing_patientpackage_change", args=[sold.pk])
    assert (sold.patient, sold.sessions_total, sold.status) == (
        desk["patient"],
        10,
        PackageStatus.ACTIVE,
    )
    payment = sold.payments.get()
    assert (payment.status, payment.amount, payment.method) == (
        P.PAID,
        Decimal("900.00"),
        "credit_card",
    )
    listing = client.get(reverse("admin:billing_patientpackage_changelist")).content.decode()
    assert "0 / 10" in listing


def test_a_package_sold_as_a_charge_opens_its_charge_page(client_for, receptionist_a, desk):
    package = PackageFactory(clinic=desk["clinic"], items=[(desk["service"], 4)])

    response = client_for(receptionist_a).post(
        reverse("admin:billing_patientpackage_sell"),
        {
            "patient": desk["patient"].pk,
            "package": package.pk,
            "charge_method": "pix",
            "_charge": "1",
        },
    )

    payment = Payment.objects.get()
    assert response["Location"] == reverse("admin:billing_payment_charge", args=[payment.pk])
    assert payment.status == P.PENDING and payment.patient_package is not None


def test_a_package_not_for_sale_cannot_be_sold(client_for, receptionist_a, desk):
    package = PackageFactory(clinic=desk["clinic"], items=[(desk["service"], 4)], is_active=False)

    page = client_for(receptionist_a).post(
        reverse("admin:billing_patientpackage_sell") + f"?patient={desk['patient'].pk}",
        {"package": package.pk, "method": "cash", "_receive": "1"},
    )

    assert "package" in page.context["form"].errors
    assert not PatientPackage.objects.exists()


# --- Invoices (NFS-e) -----------------------------------------------------------------------
def test_a_rejected_invoice_says_why_and_can_be_issued_again(client_for, manager_a, desk):
    invoice = InvoiceFactory(payment=received(desk), clinic=desk["clinic"])
    client = client_for(manager_a)
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])

    html = client.get(url).content.decode()
    assert "CPF do tomador inválido" in html
    assert escape(t("Check the patient's CPF.")) in html
    assert reverse("admin:billing_invoice_retry", args=[invoice.pk]) in html

    client.post(reverse("admin:billing_invoice_retry", args=[invoice.pk]))

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.AUTHORIZED
    assert invoice.number and invoice.pdf_url
    listing = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    assert invoice.pdf_url in listing and invoice.xml_url in listing


def test_cancelling_an_invoice_needs_a_justification_of_15_to_255_characters(
    client_for, manager_a, desk
):
    invoice = services.invoice_issue(payment=received(desk))
    assert invoice.status == InvoiceStatus.AUTHORIZED
    client = client_for(manager_a)
    url = reverse("admin:billing_invoice_cancel", args=[invoice.pk])

    short = client.post(url, {"justification": "Erro"})
    long = client.post(url, {"justification": "x" * 256})
    invoice.refresh_from_db()
    assert short.status_code == 200 and short.context["form"].errors["justification"]
    assert long.status_code == 200 and long.context["form"].errors["justification"]
    assert invoice.status == InvoiceStatus.AUTHORIZED

    done = client.post(url, {"justification": "Valor lançado em duplicidade"})
    invoice.refresh_from_db()
    assert done.status_code == 302
    assert invoice.status == InvoiceStatus.CANCELLED
    assert invoice.cancel_justification == "Valor lançado em duplicidade"


def test_invoice_actions_refuse_what_the_status_does_not_allow(client_for, manager_a, desk):
    issued = services.invoice_issue(payment=received(desk))
    client = client_for(manager_a)

    retried = action(client, "invoice", "retry_selected", issued)
    cancel = client.post(
        reverse("admin:billing_invoice_changelist"),
        {"action": "cancel_selected", "_selected_action": [issued.pk]},
    )

    assert any(
        m.endswith(t("Only a rejected invoice can be issued again."))
        for m in page_messages(retried)
    )
    assert cancel["Location"] == reverse("admin:billing_invoice_cancel", args=[issued.pk])


# --- Ledger ---------------------------------------------------------------------------------
def test_a_manager_adds_an_expense(client_for, manager_a, clinic_a):
    client = client_for(manager_a)
    url = reverse("admin:billing_financialtransaction_add")
    html = client.get(url).content.decode()
    assert 'value="rent"' in html and 'value="appointments"' not in html

    response = client.post(
        url,
        {
            "category": "rent",
            "description": "Aluguel de março",
            "amount": "3.500,00",
            "cost_center": "Unidade Centro",
            "competence_date": "2026-03-01",
            "payment_date": "2026-03-05",
        },
    )

    assert response.status_code == 302
    expense = FinancialTransaction.objects.get()
    assert (expense.clinic, expense.kind, expense.amount, expense.created_by) == (
        clinic_a,
        TransactionKind.EXPENSE,
        Decimal("3500.00"),
        manager_a,
    )


def test_income_lines_come_from_payments_and_are_read_only(client_for, manager_a, desk):
    payment = received(desk)
    income = FinancialTransaction.objects.get(payment=payment)
    client = client_for(manager_a)
    url = reverse("admin:billing_financialtransaction_change", args=[income.pk])

    page = client.get(url)

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(url, {"amount": "1", "category": "rent"}).status_code == 403
    income.refresh_from_db()
    assert income.amount == Decimal("180.00")


def test_the_ledger_filters_by_kind_and_competence_month_and_marks_lines_reconciled(
    client_for, manager_a, clinic_a
):
    march = ExpenseFactory(clinic=clinic_a, competence_date=date(2026, 3, 1))
    april = ExpenseFactory(clinic=clinic_a, competence_date=date(2026, 4, 1))
    client = client_for(manager_a)
    changelist = reverse("admin:billing_financialtransaction_changelist")

    page = client.get(changelist, {"competence": "2026-03", "kind__exact": "expense"})
    assert list(page.context["cl"].result_list) == [march]

    action(client, "financialtransaction", "mark_reconciled", march)
    march.refresh_from_db()
    april.refresh_from_db()
    assert march.reconciled and not april.reconciled


# --- Reports --------------------------------------------------------------------------------
def _at(year, month, day, hour, minute=0):
    """A São Paulo wall-clock time (UTC-3) as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) + timedelta(hours=3)


@pytest.fixture
def march(clinic_a, patient_a, clinic_b, patient_b):
    """Money received in March 2026 (São Paulo), and around it."""
    ana = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Ana Lima")
    bruno = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Bruno Reis")
    physio = ServiceFactory(clinic=clinic_a, name="Fisioterapia", price=Decimal("180.00"))
    pilates = ServiceFactory(clinic=clinic_a, name="Pilates", price=Decimal("250.50"))

    def pay(when, amount, method, professional=None, service=None, **kwargs):
        appointment = None
        if professional:
            appointment = AppointmentFactory(
                clinic=clinic_a,
                service=service,
                professional=professional,
                patient=patient_a,
                start=when - timedelta(hours=1),
            )
        with time_machine.travel(when, tick=False):
            return services.payment_register(
                clinic=clinic_a,
                patient=patient_a,
                amount=amount,
                method=method,
                appointment=appointment,
                **kwargs,
            )

    pay(_at(2026, 3, 2, 10), "180.00", "cash", ana, physio)
    refunded_part = pay(_at(2026, 3, 2, 15), "180.00", "pix", ana, physio)
    services.payment_refund(payment=refunded_part, amount="30.00")
    refunded_all = pay(_at(2026, 3, 5, 9), "100.00", "debit_card", bruno, pilates)
    services.payment_refund(payment=refunded_all)
    pay(_at(2026, 3, 10, 11), "250.50", "credit_card", bruno, pilates)
    package = PackageFactory(clinic=clinic_a, name="Reabilitação", items=[(physio, 10)])
    with time_machine.travel(_at(2026, 3, 15, 14), tick=False):
        services.package_sell(clinic=clinic_a, patient=patient_a, package=package, method="cash")
    pay(_at(2026, 3, 31, 23, 30), "75.25", "transfer")  # 02:30 UTC on April 1st: still March
    # Outside the period, still owed, or another clinic's: none of it is March's revenue.
    pay(_at(2026, 4, 1, 0, 30), "999.00", "cash")
    pay(_at(2026, 2, 28, 23, 59), "888.00", "cash")
    PaymentFactory(
        clinic=clinic_a, patient=patient_a, amount=Decimal("60.00"), due_date=date(2026, 3, 20)
    )
    PaymentFactory(
        clinic=clinic_a, patient=patient_a, amount=Decimal("40.00"), due_date=date(2099, 1, 1)
    )
    with time_machine.travel(_at(2026, 3, 10, 11), tick=False):
        services.payment_register(
            clinic=clinic_b, patient=patient_b, amount="777.00", method="cash"
        )
    return {"from": "2026-03-01", "to": "2026-03-31"}


EXPECTED_TOTAL = {"count": 6, "gross": "1685.75", "refunded": "130.00", "net": "1555.75"}
EXPECTED = {
    "professional": {
        "Dra. Ana Lima": "330.00",
        "Dr. Bruno Reis": "250.50",
        "No professional (packages and other payments)": "975.25",
    },
    "service": {
        "Fisioterapia": "330.00",
        "Pilates": "250.50",
        "Package: Reabilitação": "900.00",
        "Other payments (no appointment)": "75.25",
    },
    "method": {
        "Cash": "1080.00",
        "PIX": "150.00",
        "Debit card": "0.00",
        "Credit card": "250.50",
        "Bank transfer": "75.25",
    },
    "day": {
        "02/03/2026": "330.00",
        "05/03/2026": "0.00",
        "10/03/2026": "250.50",
        "15/03/2026": "900.00",
        "31/03/2026": "75.25",
    },
}


def _reports(client, period):
    return client.get(
        reverse("admin:billing_reports"), {"date_from": period["from"], "date_to": period["to"]}
    )


def _section(page, name):
    return next(s["table"] for s in page.context["sections"] if s["table"].name == name)


@pytest.mark.parametrize("name", ["professional", "service", "method", "day"])
def test_each_revenue_breakdown_adds_up_to_the_periods_total(
    client_for, manager_a, march, name, settings
):
    settings.LANGUAGE_CODE = "en"
    client = client_for(manager_a)
    client.cookies["django_language"] = "en"

    page = _reports(client, march)

    assert page.status_code == 200
    table = _section(page, name)
    count, gross, refunded, net = table.total[1:]
    assert (count, str(gross), str(refunded), str(net)) == tuple(EXPECTED_TOTAL.values())
    for column, total in zip(range(1, 5), table.total[1:], strict=True):
        assert sum(row[column] for row in table.rows) == total
    labels = [row[0].strftime("%d/%m/%Y") if name == "day" else row[0] for row in table.rows]
    assert {label: str(row[4]) for label, row in zip(labels, table.rows, strict=True)} == EXPECTED[
        name
    ]
    assert all(isinstance(row[4], Decimal) for row in table.rows)


def test_the_period_defaults_to_this_month_and_a_bad_one_is_explained(client_for, manager_a):
    client = client_for(manager_a)

    today = timezone.localdate()
    page = client.get(reverse("admin:billing_reports"))
    assert page.context["period"].first == today.replace(day=1)
    bad = client.get(
        reverse("admin:billing_reports"), {"date_from": "2026-03-31", "date_to": "2026-03-01"}
    )
    assert bad.status_code == 200 and bad.context["form"].errors and "sections" not in bad.context


def test_open_receivables_flag_what_is_overdue(client_for, manager_a, march):
    with time_machine.travel(_at(2026, 3, 25, 10), tick=False):
        page = _reports(client_for(manager_a), march)

    table = _section(page, "receivables")
    assert [(row[0], row[5], row[6], row[7]) for row in table.rows] == [
        (date(2026, 3, 20), Decimal("60.00"), 5, True),
        (date(2099, 1, 1), Decimal("40.00"), 0, False),
    ]
    assert table.total[5] == Decimal("100.00")
    assert 'class="billing-overdue"' in page.content.decode()


def _csv_rows(response):
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def _brazilian(text) -> Decimal:
    return Decimal(text.replace(".", "").replace(",", "."))


@pytest.mark.parametrize("name", ["professional", "service", "method", "day"])
def test_the_csv_exports_parse_back_to_the_same_numbers(client_for, manager_a, march, name):
    client = client_for(manager_a)
    page = _reports(client, march)
    table = _section(page, name)

    response = client.get(
        reverse("admin:billing_reports_export", args=[name, "csv"]),
        {"date_from": march["from"], "date_to": march["to"]},
    )

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *rows, total = _csv_rows(response)
    assert len(header) == 5 and len(rows) == len(table.rows)
    assert all("," in row[4] for row in rows)  # decimal comma
    for column in (2, 3, 4):
        assert sum(_brazilian(row[column]) for row in rows) == _brazilian(total[column])
    assert _brazilian(total[4]) == Decimal(EXPECTED_TOTAL["net"])
    assert [_brazilian(row[4]) for row in rows] == [row[4] for row in table.rows]


@pytest.mark.parametrize("name", ["professional", "service", "method", "day", "receivables"])
def test_the_xlsx_exports_hold_numbers_that_add_up(client_for, manager_a, march, name):
    client = client_for(manager_a)

    response = client.get(
        reverse("admin:billing_reports_export", args=[name, "xlsx"]),
        {"date_from": march["from"], "date_to": march["to"]},
    )

    sheet = load_workbook(io.BytesIO(response.content)).active
    _header, *rows, total = list(sheet.iter_rows(values_only=True))
    money_column = 4 if name != "receivables" else 5
    cells = [row[money_column] for row in rows]
    assert all(isinstance(value, int | float) for value in cells)
    assert sheet.cell(row=2, column=money_column + 1).number_format == "#,##0.00"
    assert money(str(sum(Decimal(str(v)) for v in cells))) == money(str(total[money_column]))
    if name != "receivables":
        assert money(str(total[money_column])) == Decimal(EXPECTED_TOTAL["net"])
    else:
        assert money(str(total[money_column])) == Decimal("100.00")


def test_exports_keep_formulas_out_of_spreadsheets(client_for, manager_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, full_name="=HYPERLINK(1)")
    PaymentFactory(clinic=clinic_a, patient=patient, description="+cmd")
    client = client_for(manager_a)

    rows = _csv_rows(
        client.get(reverse("admin:billing_reports_export", args=["receivables", "csv"]))
    )
    sheet = load_workbook(
        io.BytesIO(
            client.get(
                reverse("admin:billing_reports_export", args=["receivables", "xlsx"])
            ).content
        )
    ).active

    assert rows[1][1] == "'=HYPERLINK(1)" and rows[1][3] == "'+cmd"
    assert sheet.cell(row=2, column=2).value == "'=HYPERLINK(1)"


def test_the_reports_page_runs_a_constant_number_of_queries(
    client_for, manager_a, march, clinic_a, patient_a, django_assert_max_num_queries
):
    client = client_for(manager_a)
    with django_assert_max_num_queries(40) as few:
        _reports(client, march)
    for index in range(15):
        professional = ProfessionalFactory(clinic=clinic_a)
        service = ServiceFactory(clinic=clinic_a)
        appointment = AppointmentFactory(
            clinic=clinic_a,
            service=service,
            professional=professional,
            patient=patient_a,  # one a day: a patient cannot be in two places at once
            start=_at(2026, 3, 1 + index, 7),
        )
        with time_machine.travel(_at(2026, 3, 1 + index, 12), tick=False):
            services.payment_register(
                clinic=clinic_a,
                patient=patient_a,
                amount="10",
                method="cash",
                appointment=appointment,
            )
        PaymentFactory(clinic=clinic_a, patient=patient_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        _reports(client, march)


# --- Reconciliation -------------------------------------------------------------------------
@pytest.fixture
def settled(clinic_a, patient_a):
    """Three PIX charges at the gateway: two paid (not yet reconciled), one still pending."""
    first = gateway_paid(console_charge(clinic_a, patient_a, amount="150.00"))
    second = gateway_paid(console_charge(clinic_a, patient_a, amount="99.90"))
    pending = console_charge(clinic_a, patient_a, amount="50.00")
    return first, second, pending


def _income(payment) -> FinancialTransaction:
    return FinancialTransaction.objects.get(payment=payment, kind=TransactionKind.INCOME)


def _upload(client, text: str, name="extrato.csv", encoding="utf-8"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")
    return client.post(reverse("admin:billing_reconciliation"), {"file": upload})


def test_a_settlement_reconciles_what_matches_and_lists_the_rest(client_for, manager_a, settled):
    first, second, pending = settled
    client = client_for(manager_a)
    before = client.get(reverse("admin:billing_reconciliation"))
    assert before.context["unreconciled_count"] == 2
    assert not _income(first).reconciled

    page = _upload(
        client,
        "id;valor;data\n"
        f"{first.gateway_payment_id};150,00;02/03/2026\n"
        f"{second.gateway_payment_id};99,00;02/03/2026\n"
        "console-pay-desconhecido;10,00;02/03/2026\n"
        f"{pending.gateway_payment_id};50,00;02/03/2026\n"
        ";10,00;02/03/2026\n"
        f"{first.gateway_payment_id};150,00;02/03/2026\n"
        "abc;dez reais;02/03/2026\n",
    )

    assert page.status_code == 200
    result = page.context["result"]
    assert (result["lines"], result["reconciled"], len(result["review"])) == (7, 1, 6)
    outcomes = [row["match"].outcome for row in result["review"]]
    assert outcomes == [
        "mismatch",
        "unknown",
        "not_paid",
        "unreadable",
        "duplicate",
        "unreadable",
    ]
    assert "R$ 99,00" in page.content.decode() and "R$ 99,90" in page.content.decode()
    assert _income(first).reconciled
    assert not _income(second).reconciled  # a person looks at the difference first
    assert page.context["unreconciled_count"] == 1

    again = _upload(client, f"id;valor\n{first.gateway_payment_id};150,00\n")
    assert again.context["result"]["reconciled"] == 0
    assert [r["match"].outcome for r in again.context["result"]["review"]] == ["already_reconciled"]


def test_a_settlement_with_commas_and_decimal_points_is_read_too(client_for, manager_a, settled):
    first, second, _pending = settled

    page = _upload(
        client_for(manager_a),
        "\ufeffGateway_Payment_ID,Amount,Date\n"
        f"{first.gateway_payment_id},150.00,2026-03-02\n"
        f'{second.gateway_payment_id},"99,90",2026-03-02T10:00:00Z\n',
    )

    assert page.context["result"]["reconciled"] == 2
    assert _income(first).reconciled and _income(second).reconciled


@pytest.mark.parametrize(
    "text",
    ["", "foo;bar\n1;2\n", "id;valor\n", "\x00\x01\x02binary"],
    ids=["empty", "no known columns", "no lines", "binary"],
)
def test_a_bad_settlement_file_changes_nothing(client_for, manager_a, settled, text):

    page = _upload(client_for(manager_a), text)

    assert page.status_code == 200
    assert _errors_of(page, "file")
    assert page.context["result"] is None
    assert not FinancialTransaction.objects.filter(
        reconciled=True, payment__gateway="console"
    ).exists()


def test_another_clinics_settlement_cannot_reconcile_our_payments(client_for, manager_b, settled):
    first, _second, _pending = settled

    page = _upload(client_for(manager_b), f"id;valor\n{first.gateway_payment_id};150,00\n")

    assert [r["match"].outcome for r in page.context["result"]["review"]] == ["unknown"]
    assert not _income(first).reconciled
    assert page.context["unreconciled_count"] == 0


# --- Tenancy and permissions ----------------------------------------------------------------
@pytest.fixture
def clinic_a_books(desk, clinic_a):
    """One of everything billing keeps, in clinic A."""
    paid = received(desk)
    charge = console_charge(clinic_a, desk["patient"])
    package = PackageFactory(clinic=clinic_a, items=[(desk["service"], 5)])
    sold, _payment = services.package_sell(
        clinic=clinic_a, patient=desk["patient"], package=package, method="cash"
    )
    issued = services.invoice_issue(payment=paid)
    rejected = InvoiceFactory(payment=received(desk), clinic=clinic_a)
    expense = ExpenseFactory(clinic=clinic_a)
    return {
        "paid": paid,
        "charge": charge,
        "package": package,
        "sold": sold,
        "issued": issued,
        "rejected": rejected,
        "expense": expense,
        "income": _income(paid),
    }


def test_another_clinics_manager_sees_none_of_our_ledger_invoices_or_revenue(
    client_for, manager_b, clinic_a_books
):
    books = clinic_a_books
    client = client_for(manager_b)

    ledger = client.get(reverse("admin:billing_financialtransaction_changelist"))
    assert ledger.context["cl"].result_count == 0
    for obj in (books["expense"], books["income"]):
        url = reverse("admin:billing_financialtransaction_change", args=[obj.pk])
        assert client.get(url).status_code == 404
    for name, invoice in (("cancel", books["issued"]), ("retry", books["rejected"])):
        url = reverse(f"admin:billing_invoice_{name}", args=[invoice.pk])
        assert client.post(url, {"justification": "x" * 20}).status_code == 404
    reports = client.get(reverse("admin:billing_reports"))
    assert reports.context["total"]["count"] == 0
    assert _section(reports, "receivables").rows == []
    action(client, "financialtransaction", "mark_reconciled", books["income"], books["expense"])
    books["expense"].refresh_from_db()
    assert not books["expense"].reconciled
    books["issued"].refresh_from_db()
    assert books["issued"].status == InvoiceStatus.AUTHORIZED


def test_a_receptionist_cannot_see_reports_or_the_ledger_or_set_up_packages(
    client_for, receptionist_a, clinic_a_books
):
    client = client_for(receptionist_a)
    forbidden = [
        reverse("admin:billing_reports"),
        reverse("admin:billing_reports_export", args=["method", "csv"]),
        reverse("admin:billing_reconciliation"),
        reverse("admin:billing_financialtransaction_changelist"),
        reverse("admin:billing_financialtransaction_add"),
        reverse("admin:billing_package_add"),
        reverse("admin:billing_invoice_cancel", args=[clinic_a_books["issued"].pk]),
    ]
    for url in forbidden:
        assert client.get(url).status_code == 403, url
    assert (
        client.post(
            reverse("admin:billing_invoice_retry", args=[clinic_a_books["rejected"].pk])
        ).status_code
        == 403
    )
    # What the desk does need is there.
    for url in (
        reverse("admin:billing_payment_changelist"),
        reverse("admin:billing_invoice_changelist"),
        reverse("admin:billing_patientpackage_changelist"),
        reverse("admin:billing_patientpackage_sell"),
        register_url(),
    ):
        assert client.get(url).status_code == 200, url
    # The payment page shows its refunds, but the ledger lines only to who keeps the ledger.
    url = reverse("admin:billing_payment_change", args=[clinic_a_books["paid"].pk])
    inlines = {f.opts.model for f in client.get(url).context["inline_admin_formsets"]}
    assert FinancialTransaction not in inlines


def test_a_professional_has_no_billing_pages(client_for, clinic_a, desk):
    user = UserFactory(username="prof_a")
    clinic_services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.PROFESSIONAL)
    )
    client = client_for(user)

    assert client.get(reverse("admin:billing_payment_changelist")).status_code == 403
    assert client.get(register_url(patient=desk["patient"].pk)).status_code == 403
    assert client.get(reverse("admin:billing_patientpackage_sell")).status_code == 403


def test_a_manager_sees_reports_reconciliation_and_ledger_lines(client_for, manager_a, desk):
    client = client_for(manager_a)
    payment_page = client.get(reverse("admin:billing_payment_change", args=[received(desk).pk]))
    assert FinancialTransaction in {
        f.opts.model for f in payment_page.context["inline_admin_formsets"]
    }

    assert client.get(reverse("admin:billing_reports")).status_code == 200
    assert client.get(reverse("admin:billing_reconciliation")).status_code == 200
    ledger = client.get(reverse("admin:billing_financialtransaction_changelist")).content.decode()
    assert (
        reverse("admin:billing_reports") in ledger
        and reverse("admin:billing_reconciliation") in ledger
    )


def test_a_superuser_viewing_all_clinics_is_asked_to_choose_one(client_for, superuser):
    client = client_for(superuser)

    for url in (
        register_url(),
        reverse("admin:billing_reports"),
        reverse("admin:billing_reconciliation"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")


# --- Lists: constant queries ----------------------------------------------------------------
def _more_books(clinic, patient, service, count):
    for _index in range(count):
        paid = services.payment_register(clinic=clinic, patient=patient, amount="10", method="cash")
        PaymentFactory(clinic=clinic, patient=PatientFactory(clinic=clinic))
        InvoiceFactory(payment=paid, clinic=clinic)
        package = PackageFactory(clinic=clinic, items=[(service, 2)])
        services.package_sell(
            clinic=clinic, patient=PatientFactory(clinic=clinic), package=package, method="cash"
        )
        ExpenseFactory(clinic=clinic)


CHANGELISTS = ("payment", "invoice", "package", "patientpackage", "financialtransaction")


def test_the_changelists_run_a_constant_number_of_queries(
    client_for, manager_a, desk, django_assert_max_num_queries
):
    client = client_for(manager_a)
    urls = {model: reverse(f"admin:billing_{model}_changelist") for model in CHANGELISTS}
    _more_books(desk["clinic"], desk["patient"], desk["service"], 2)
    baselines = {}
    for model, url in urls.items():
        with django_assert_max_num_queries(30) as few:
            assert client.get(url).status_code == 200
        baselines[model] = len(few.captured_queries)

    _more_books(desk["clinic"], desk["patient"], desk["service"], 12)

    for model, url in urls.items():
        with django_assert_max_num_queries(baselines[model]):
            assert client.get(url).context["cl"].result_count >= 12, model


# --- Dashboard ------------------------------------------------------------------------------
def test_the_dashboard_figures_count_today_and_what_is_owed(client_for, receptionist_a, desk):
    received(desk, amount="100.00")
    received(desk, amount="50.50")
    PaymentFactory(clinic=desk["clinic"], patient=desk["patient"], due_date=date(2020, 1, 1))
    PaymentFactory(clinic=desk["clinic"], patient=desk["patient"])

    figures = selectors.billing_dashboard(clinic=desk["clinic"])

    assert figures == {
        "received_today": Decimal("150.50"),
        "received_today_count": 2,
        "open_receivables": 2,
        "overdue_receivables": 1,
    }
    client = client_for(receptionist_a)
    index = client.get(reverse("admin:index"))
    assert reverse("admin:billing_payment_register") in index.content.decode()
    from django.contrib import admin as django_admin

    page = django_admin.site.index(index.wsgi_request, {"billing_dashboard": figures})
    page.render()
    html = page.content.decode()
    assert "R$ 150,50" in html
    assert "cuidar-billing-card" in html


# --- Edges ----------------------------------------------------------------------------------
def test_desk_forms_need_the_csrf_token(receptionist_a, desk):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(receptionist_a)
    charge = console_charge(desk["clinic"], desk["patient"])

    register = client.post(
        register_url(patient=desk["patient"].pk), {"amount": "10", "method": "cash"}
    )
    cancel = client.post(reverse("admin:billing_payment_do", args=[charge.pk, "cancel"]))

    assert register.status_code == 403 and cancel.status_code == 403
    charge.refresh_from_db()
    assert charge.status == P.PENDING
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("150,50", "150.50"),
        ("1.500", "1500"),
        ("1.234.567,89", "1234567.89"),
        ("1,234.56", "1234.56"),
        ("R$\u00a012,3", "12.3"),
        ("150.505", "150505"),
    ],
)
def test_amounts_are_parsed_whichever_separators_people_use(text, value):
    from billing.reports import amount_parse

    assert amount_parse(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "1,2,3.4.5", "12a", "1.23.4", ",50", "R$"])
def test_what_is_not_an_amount_is_refused(text):
    from billing.reports import amount_parse

    with pytest.raises(ValueError):
        amount_parse(text)


def test_the_dashboard_shows_todays_receipts_and_the_pages_link_to_the_desk(
    client_for, receptionist_a, clinic_a, patient_a
):
    from billing import services as billing_services

    billing_services.payment_register(
        clinic=clinic_a, patient=patient_a, amount="120.00", method="cash"
    )
    client = client_for(receptionist_a)

    index = client.get(reverse("admin:index"))
    assert index.context["billing_dashboard"]["received_today_count"] == 1
    patient_page = client.get(reverse("admin:clinic_patient_change", args=[patient_a.pk]))
    assert f"{reverse('admin:billing_payment_register')}?patient={patient_a.pk}" in (
        patient_page.content.decode()
    )


def test_the_receipt_is_sent_to_the_patient_once(
    client_for, receptionist_a, clinic_a, django_capture_on_commit_callbacks
):
    from clinic import services as clinic_services
    from clinic.messaging.models import OutboundMessage

    patient = PatientFactory(clinic=clinic_a, full_name="Maria Recibo")
    clinic_services.consent_record(
        patient=patient, channel="whatsapp", purpose="utility", status="granted"
    )
    payment = services.payment_register(
        clinic=clinic_a, patient=patient, amount="150.90", method="pix", description="Consulta"
    )
    url = reverse("admin:billing_payment_receipt_send", args=[payment.pk])
    client = client_for(receptionist_a)

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
        client.post(url)  # a second click

    [message] = OutboundMessage.objects.filter(template="recibo")
    assert message.status == "sent"
    assert "R$ 150,90" in message.body and "Consulta" in message.body
    assert client.get(url).status_code == 403  # GET never sends


def test_charges_whose_reminders_are_exhausted_are_listed_for_a_person(
    client_for, receptionist_a, clinic_a, patient_a, patient_b
):
    from billing.models import Payment

    flagged = Payment.objects.create(
        clinic=clinic_a,
        patient=patient_a,
        amount=Decimal("90.00"),
        method="pix",
        dunning_step=3,
        dunning_flagged_at=timezone.now(),
    )
    Payment.objects.create(clinic=clinic_a, patient=patient_a, amount=Decimal("10"), method="pix")
    Payment.objects.create(
        clinic=patient_b.clinic,
        patient=patient_b,
        amount=Decimal("50"),
        method="pix",
        dunning_flagged_at=timezone.now(),
    )

    page = client_for(receptionist_a).get(
        reverse("admin:billing_payment_changelist"), {"collection": "person"}
    )

    assert list(page.context["cl"].result_list) == [flagged]
