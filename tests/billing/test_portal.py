"""Payments in the portal: the patient sees what is open and how to pay it (PIX QR and
copy-and-paste code, boleto, payment page, or the reception), what was paid with its receipt
and NFS-e, the packages on the home page — only their own, in a constant number of queries."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing import portal as billing_portal
from billing import services
from billing.choices import Gateway, InvoiceStatus, PaymentMethod, PaymentStatus
from clinic.privacy import export_sections
from integrations.pix import brcode_parse
from tests.billing.factories import InvoiceFactory, PackageFactory, PaymentFactory
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

P = PaymentStatus
PAYMENTS = reverse("portal:payments")


def payment_url(payment) -> str:
    return reverse("portal:payment", args=[payment.pk])


def receipt_url(payment) -> str:
    return reverse("portal:payment_receipt", args=[payment.pk])


def paid(patient, amount="150.00", **kwargs):
    """Money received at the desk, through the service (ledger line, paid_at)."""
    return services.payment_register(
        clinic=patient.clinic,
        patient=patient,
        amount=amount,
        method=kwargs.pop("method", PaymentMethod.CASH),
        **kwargs,
    )


def pix_charge(patient, amount="150.00", **kwargs):
    """A PIX charge at the clinic's gateway (the console provider in tests)."""
    return services.payment_charge_create(
        clinic=patient.clinic,
        patient=patient,
        amount=amount,
        method=kwargs.pop("method", PaymentMethod.PIX),
        **kwargs,
    )


def issued_invoice(payment, number="2026/123"):
    return InvoiceFactory(
        payment=payment,
        status=InvoiceStatus.AUTHORIZED,
        number=number,
        errors=[],
        pdf_url=f"https://nfse.example.com/{payment.pk}.pdf",
        issued_at=timezone.now(),
    )


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def package_setup(clinic_a, patient_a):
    """A package of 5 physiotherapy and 3 pilates sessions sold to patient A."""
    professional = ProfessionalFactory(clinic=clinic_a)
    physio = ServiceFactory(clinic=clinic_a, name="Fisioterapia", professionals=[professional])
    pilates = ServiceFactory(clinic=clinic_a, name="Pilates", professionals=[professional])
    package = PackageFactory(
        clinic=clinic_a, name="Reabilitação", items=[(physio, 5), (pilates, 3)]
    )
    sold, _payment = services.package_sell(clinic=clinic_a, patient=patient_a, package=package)
    return {"package": sold, "physio": physio, "pilates": pilates, "professional": professional}


_earlier = itertools.count(2)


def use_session(setup, patient, service, start=None):
    """A past appointment (each an hour before the last: the professional cannot be in two
    at once — PostgreSQL refuses the overlap) that debits a session."""
    appointment = AppointmentFactory(
        clinic=patient.clinic,
        patient=patient,
        service=service,
        professional=setup["professional"],
        start=start or timezone.now() - timedelta(hours=next(_earlier)),
    )
    return services.package_session_debit(appointment=appointment, reason="completed")


# --- The list --------------------------------------------------------------------------------
def test_the_list_shows_open_payments_first_then_paid_ones_with_their_amounts(
    portal_a, patient_a, english
):
    PaymentFactory(
        clinic=patient_a.clinic, patient=patient_a, amount=Decimal("1234.50"), description="Pacote"
    )
    PaymentFactory(
        clinic=patient_a.clinic,
        patient=patient_a,
        amount=Decimal("80.00"),
        description="Retorno",
        due_date=timezone.localdate() - timedelta(days=3),
    )
    paid(patient_a, amount="99.90", description="Avaliação")

    html = html_of(portal_a.get(PAYMENTS))

    assert "R$ 1.234,50" in html and "R$ 80,00" in html and "R$ 99,90" in html
    assert html.index("R$ 1.234,50") < html.index("Payment history") < html.index("R$ 99,90")
    assert html.index("R$ 80,00") < html.index("R$ 1.234,50")  # the earliest due first
    assert ">Overdue<" in html and ">Open<" in html and ">Paid<" in html
    assert 'aria-current="page"' in html and PAYMENTS in html


def test_the_list_says_so_when_there_is_nothing(portal_a, english):
    html = html_of(portal_a.get(PAYMENTS))

    assert "You have nothing to pay." in html
    assert "No payments yet." in html


def test_paid_payments_link_to_the_receipt_and_the_issued_nfse(portal_a, patient_a, english):
    payment = paid(patient_a, description="Consulta")
    invoice = issued_invoice(payment)
    cancelled = PaymentFactory(
        clinic=patient_a.clinic, patient=patient_a, status=P.CANCELLED, description="Cancelada"
    )

    html = html_of(portal_a.get(PAYMENTS))

    assert receipt_url(payment) in html
    assert escape(invoice.pdf_url) in html and "2026/123" in html
    assert 'rel="noopener noreferrer"' in html
    assert ">Cancelled<" in html and receipt_url(cancelled) not in html


def test_an_invoice_not_issued_is_not_linked(portal_a, patient_a):
    payment = paid(patient_a)
    InvoiceFactory(payment=payment, pdf_url="https://nfse.example.com/draft.pdf")  # refused

    assert "draft.pdf" not in html_of(portal_a.get(PAYMENTS))


def test_the_history_is_paginated_twenty_a_page(portal_a, patient_a):
    for i in range(23):
        PaymentFactory(
            clinic=patient_a.clinic,
            patient=patient_a,
            status=P.PAID,
            paid_at=timezone.now() - timedelta(days=i),
            amount=Decimal(100 + i),
        )

    first = html_of(portal_a.get(PAYMENTS))
    second = html_of(portal_a.get(PAYMENTS + "?page=2"))

    assert "R$ 100,00" in first and "R$ 119,00" in first and "R$ 120,00" not in first
    assert "R$ 120,00" in second and "R$ 122,00" in second and "R$ 100,00" not in second
    assert portal_a.get(PAYMENTS + "?page=nope").status_code == 200


# --- One payment -----------------------------------------------------------------------------
def test_an_open_pix_charge_shows_its_qr_code_and_copy_and_paste_code(portal_a, patient_a, english):
    payment = pix_charge(patient_a, amount="150.00")
    assert payment.pix_payload

    response = portal_a.get(payment_url(payment))
    html = html_of(response)

    assert '<img class="qr qr-pix" src="data:image/png;base64,' in html
    assert 'alt="PIX QR code to pay R$ 150,00"' in html
    assert '<label for="pix-code">' in html
    assert f'aria-describedby="pix-code-help">{payment.pix_payload}</textarea>' in html
    assert 'id="pix-code" class="copy-code" readonly' in html
    # The copy button exists only when the script can make it work.
    assert 'data-copy="pix-code"' in html and "hidden>Copy code</button>" in html
    assert "portal/billing-copy.js" in html and "<script>" not in html
    assert "style=" not in html
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_a_boleto_charge_links_to_the_boleto(portal_a, patient_a, english):
    payment = pix_charge(patient_a, method=PaymentMethod.BOLETO)
    assert payment.boleto_url

    html = html_of(portal_a.get(payment_url(payment)))

    assert f'href="{payment.boleto_url}" target="_blank" rel="noopener noreferrer"' in html
    assert "Open the boleto" in html
    assert f'href="{payment.invoice_url}"' in html  # the gateway's payment page too
    assert "data:image/png" not in html


def test_a_pending_desk_payment_without_a_charge_sends_the_patient_to_the_reception(
    portal_a, patient_a, english
):
    payment = PaymentFactory(clinic=patient_a.clinic, patient=patient_a)

    html = html_of(portal_a.get(payment_url(payment)))

    assert "Talk to the reception to pay." in html
    assert "data:image/png" not in html


def test_a_clinic_with_a_pix_key_offers_it_for_a_payment_no_gateway_charges(
    portal_a, clinic_a, patient_a, english
):
    clinic_a.settings = {"billing": {"pix_key": "contato@alfa.com.br"}}
    clinic_a.save()
    payment = PaymentFactory(clinic=clinic_a, patient=patient_a, amount=Decimal("75.00"))

    html = html_of(portal_a.get(payment_url(payment)))

    payment.refresh_from_db()
    assert payment.pix_payload == ""  # a GET writes nothing
    code = services.payment_static_pix(payment=payment).pix_payload
    assert f">{code}</textarea>" in html  # the very code the desk would make
    parsed = brcode_parse(code)
    assert parsed.amount == Decimal("75.00") and parsed.key == "contato@alfa.com.br"
    assert "clinic&#x27;s own PIX key" in html or "clinic's own PIX key" in html


def test_a_paid_payment_shows_its_receipt_and_nfse_and_no_way_to_pay(portal_a, patient_a, english):
    payment = paid(patient_a, method=PaymentMethod.PIX)
    issued_invoice(payment, number="777")

    html = html_of(portal_a.get(payment_url(payment)))

    assert receipt_url(payment) in html
    assert "Invoice (NFS-e) no. 777, PDF" in html
    assert "pix-code" not in html and "Talk to the reception" not in html


def test_a_refunded_payment_lists_its_refunds(portal_a, patient_a, english):
    payment = paid(patient_a, amount="200.00")
    services.payment_refund(payment=payment, amount="50.00", reason="Sessão desmarcada")

    html = html_of(portal_a.get(payment_url(payment)))

    assert "R$ 50,00" in html and "Refunds" in html


# --- Receipt ---------------------------------------------------------------------------------
def test_the_receipt_of_a_paid_payment_has_what_the_desks_receipt_has(
    portal_a, clinic_a, patient_a, english
):
    clinic_a.legal_name = "Clínica Alfa Serviços de Saúde Ltda"
    clinic_a.city = "São Paulo"
    clinic_a.save()
    payment = paid(patient_a, amount="1234.50", method=PaymentMethod.PIX, description="Fisio")

    response = portal_a.get(receipt_url(payment))
    html = html_of(response)

    assert "Clínica Alfa Serviços de Saúde Ltda" in html
    assert clinic_a.cnpj_formatted in html
    assert "Maria José Araújo" in html and "529.982.247-25" in html
    assert "R$ 1.234,50" in html and "Fisio" in html and "PIX" in html
    assert timezone.localtime(payment.paid_at).strftime("%d/%m/%Y") in html
    assert "<h1>Receipt</h1>" in html
    assert "data-print hidden" in html and "onclick" not in html and "<style" not in html


def test_an_unpaid_payment_has_no_receipt(portal_a, patient_a):
    pending = PaymentFactory(clinic=patient_a.clinic, patient=patient_a)
    cancelled = PaymentFactory(clinic=patient_a.clinic, patient=patient_a, status=P.CANCELLED)

    assert portal_a.get(receipt_url(pending)).status_code == 404
    assert portal_a.get(receipt_url(cancelled)).status_code == 404


def test_the_desks_receipt_still_prints_from_the_shared_sheet(
    client_for, receptionist_a, patient_a
):
    payment = paid(patient_a, amount="321.00")

    html = html_of(
        client_for(receptionist_a).get(reverse("admin:billing_payment_receipt", args=[payment.pk]))
    )

    # The button prints through accounts/behaviours.js (no inline handler: CSP).
    assert "R$ 321,00" in html and "Maria José Araújo" in html and "data-print" in html


def test_other_patients_payments_stay_out_of_the_list_and_the_home(portal_a, clinic_a, patient_a):
    neighbour = PatientFactory(clinic=clinic_a)
    PaymentFactory(clinic=clinic_a, patient=neighbour, amount=Decimal("444.44"))
    paid(neighbour, amount="333.33")

    assert "R$ 444,44" not in html_of(portal_a.get(PAYMENTS))
    assert "R$ 333,33" not in html_of(portal_a.get(PAYMENTS))
    assert billing_portal.home_context(patient_a)["open_payments"] == []


def test_signed_out_visitors_go_to_the_sign_in_page(client, patient_a):
    payment = paid(patient_a)

    for url in (PAYMENTS, payment_url(payment), receipt_url(payment)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("portal:sign_in"))


# --- Home ------------------------------------------------------------------------------------
def test_the_home_shows_open_payments_and_packages_with_sessions_left(
    patient_a, package_setup, english
):
    use_session(package_setup, patient_a, package_setup["physio"])
    use_session(package_setup, patient_a, package_setup["physio"])
    open_payment = PaymentFactory(clinic=patient_a.clinic, patient=patient_a, description="Avulsa")

    context = billing_portal.home_context(patient_a)

    [package] = context["packages"]
    assert package.sessions_remaining == 6
    assert [(r["service"].name, r["remaining"], r["quantity"]) for r in package.item_rows] == [
        ("Fisioterapia", 3, 5),
        ("Pilates", 3, 3),
    ]
    assert [row["payment"] for row in context["open_payments"]] == [open_payment]

    html = render_to_string("portal/billing/_home.html", context)
    assert "<h2" in html and "My packages" in html and "Open payments" in html
    assert "6 of 8 sessions left" in html and "Fisioterapia: 3 of 5 sessions left" in html
    assert "Valid until" in html
    assert payment_url(open_payment) in html


def test_the_home_leaves_out_used_up_and_expired_packages(patient_a, package_setup, english):
    package = package_setup["package"]
    package.expires_at = timezone.now() - timedelta(days=1)
    package.save(update_fields=["expires_at"])

    context = billing_portal.home_context(patient_a)
    html = render_to_string("portal/billing/_home.html", context)

    assert context["packages"] == []
    assert "You have no active packages." in html
    assert "You have no open payments." in html


def test_a_package_sold_with_a_charge_shows_on_the_home_as_open(patient_a, package_setup):
    # package_sell(paid=True) in the fixture: nothing open.
    assert billing_portal.home_context(patient_a)["open_payments"] == []
    package = PackageFactory(clinic=patient_a.clinic, items=[(package_setup["physio"], 2)])
    services.package_sell(
        clinic=patient_a.clinic, patient=patient_a, package=package, method="pix", paid=False
    )

    context = billing_portal.home_context(patient_a)

    assert len(context["packages"]) == 2
    assert [row["amount"] for row in context["open_payments"]] == ["R$ 900,00"]


# --- Constant queries ------------------------------------------------------------------------
def _many_payments(patient, count=12):
    for i in range(count):
        payment = PaymentFactory(
            clinic=patient.clinic, patient=patient, status=P.PAID, paid_at=timezone.now()
        )
        if i % 2:
            issued_invoice(payment, number=str(i))
        PaymentFactory(clinic=patient.clinic, patient=patient, gateway=Gateway.CONSOLE)


def test_the_list_takes_the_same_queries_for_one_payment_or_many(
    portal_a, patient_a, django_assert_num_queries
):
    paid(patient_a)
    issued_invoice(PaymentFactory(clinic=patient_a.clinic, patient=patient_a, status=P.PAID))
    PaymentFactory(clinic=patient_a.clinic, patient=patient_a)
    portal_a.get(PAYMENTS)  # the session's "last seen" touch happens once

    with CaptureQueriesContext(connection) as few:
        html_of(portal_a.get(PAYMENTS))
    _many_payments(patient_a)
    with django_assert_num_queries(len(few)):
        html_of(portal_a.get(PAYMENTS))


def test_a_payment_page_takes_a_constant_number_of_queries(
    portal_a, patient_a, django_assert_max_num_queries
):
    payment = paid(patient_a, amount="200.00")
    services.payment_refund(payment=payment, amount="10.00")
    issued_invoice(payment)
    charge = pix_charge(patient_a)

    for url in (payment_url(payment), payment_url(charge), receipt_url(payment)):
        with django_assert_max_num_queries(4):
            html_of(portal_a.get(url))
    _many_payments(patient_a)
    for _i in range(3):
        services.payment_refund(payment=payment, amount="10.00")
    for url in (payment_url(payment), payment_url(charge), receipt_url(payment)):
        with django_assert_max_num_queries(4):
            html_of(portal_a.get(url))


def test_home_context_takes_four_queries_for_one_package_or_many(
    patient_a, package_setup, django_assert_num_queries
):
    use_session(package_setup, patient_a, package_setup["physio"])
    PaymentFactory(clinic=patient_a.clinic, patient=patient_a)

    with django_assert_num_queries(4):
        render_to_string("portal/billing/_home.html", billing_portal.home_context(patient_a))

    for _i in range(5):
        package = PackageFactory(clinic=patient_a.clinic, items=[(package_setup["pilates"], 4)])
        services.package_sell(clinic=patient_a.clinic, patient=patient_a, package=package)
        PaymentFactory(clinic=patient_a.clinic, patient=patient_a)
    use_session(package_setup, patient_a, package_setup["pilates"])

    with django_assert_num_queries(4):
        render_to_string("portal/billing/_home.html", billing_portal.home_context(patient_a))


# --- Data export -----------------------------------------------------------------------------
def test_the_data_export_has_the_patients_payments_and_packages(patient_a, package_setup):
    payment = paid(patient_a, amount="200.00", description="Consulta")
    services.payment_refund(payment=payment, amount="20.00", reason="Desconto")
    issued_invoice(payment, number="55")
    use_session(package_setup, patient_a, package_setup["physio"])
    paid(PatientFactory(clinic=patient_a.clinic), amount="999.00")  # someone else's
    sections = {section.key: section for section in export_sections()}

    payments = sections["payments"].build(patient_a)
    packages = sections["packages"].build(patient_a)

    consulta = next(row for row in payments if row["description"] == "Consulta")
    assert consulta["amount"] == "200.00" and consulta["refunded_amount"] == "20.00"
    assert consulta["status"] == "paid" and consulta["method"] == "cash"
    assert consulta["paid_at"].startswith(str(timezone.now().year))
    assert consulta["refunds"] == [
        {
            "amount": "20.00",
            "reason": "Desconto",
            "created_at": consulta["refunds"][0]["created_at"],
        }
    ]
    assert consulta["invoice"]["number"] == "55" and consulta["invoice"]["pdf_url"]
    assert "999.00" not in {row["amount"] for row in payments}
    [package] = packages
    assert package["sessions_total"] == 8 and package["sessions_remaining"] == 7
    assert package["sessions_spent"][0]["service"] == "Fisioterapia"
    assert sections["payments"].order == 30 and sections["packages"].order == 40


def test_a_package_about_to_expire_says_so(patient_a, package_setup, english):
    package = package_setup["package"]
    package.expires_at = timezone.now() + timedelta(days=5)
    package.save(update_fields=["expires_at"])

    html = render_to_string("portal/billing/_home.html", billing_portal.home_context(patient_a))

    assert '<span class="badge warn">Expires soon</span>' in html
