"""Loyalty in a real browser (Debian's Chromium through Playwright): the patient, on a
phone, signs in, opens *Pontos*, redeems a reward and reads the voucher code; the
receptionist, at the desk (1366×768), types that code on the patient's payment, and the
payment is registered for the amount less the voucher. axe-core checks the points page."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Payment
from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MembershipRole
from clinic.models import Membership
from integrations.models import ConsoleRecord
from loyalty import services as loyalty
from loyalty.models import Redemption, Reward
from tests.clinic.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CPF = "529.982.247-25"
PASSWORD = "s3nha-forte-123"


@pytest.fixture
def programme(clinic_a):
    program = loyalty.program_for(clinic_a)
    program.is_active = True
    program.save()
    return Reward.objects.create(
        clinic=clinic_a, name="R$ 25 de desconto", points_cost=200, value=Decimal("25.00")
    )


@pytest.fixture
def maria(clinic_a, programme):
    patient = PatientFactory(
        clinic=clinic_a, full_name="Maria José Araújo", cpf="52998224725", phone="+5511981234567"
    )
    services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    from django.db import transaction

    with transaction.atomic():
        account = loyalty.account_lock(loyalty.account_for(patient))
        loyalty.points_earn(account=account, points=250, reason="Consultas", source_key="seed")
    return patient


def test_the_patient_redeems_in_the_portal_and_the_desk_applies_the_voucher(
    page, browser, live_server, axe_check, clinic_a, maria
):
    # The patient, on the phone.
    page.goto("/portal/")
    page.fill("input[name=identifier]", CPF)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/portal/entrar/codigo/**")
    record = ConsoleRecord.objects.filter(operation="send").order_by("-pk").first()
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", record.payload["text"]).group(1))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/portal/$"))
    page.click(f"nav.site-nav a[href='{reverse('portal:points')}']")
    assert page.inner_text("[data-testid=balance]") == "250"
    axe_check(page, "points")
    page.click("main form button:has-text('R$ 25 de desconto')")
    page.wait_for_url(re.compile(r".*/portal/pontos/.*"))
    code = page.inner_text("[data-testid=voucher]").strip()
    assert code == Redemption.objects.get().code
    assert page.inner_text("[data-testid=balance]") == "50"
    axe_check(page, "points, after redeeming")

    # The receptionist, at the desk.
    user = UserFactory(username="recepcao_fidelidade")
    services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    desk = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 768})
    try:
        admin = desk.new_page()
        admin.goto("/admin/login/")
        admin.fill("input[name=username]", user.username)
        admin.fill("input[name=password]", PASSWORD)
        admin.click("input[type=submit]")
        admin.goto(f"{reverse('admin:billing_payment_register')}?patient={maria.pk}")
        admin.fill("input[name=amount]", "180,00")
        admin.fill("input[name=discount_code]", code)
        admin.check("input[name=method][value=cash]")
        admin.click("button[name=_receive]")
        admin.wait_for_url(re.compile(r".*/admin/billing/payment/\d+/change/.*"))
    finally:
        desk.close()

    payment = Payment.objects.get(patient=maria)
    assert payment.amount == Decimal("155.00")
    assert payment.discounts.get().reference == code
    assert Redemption.objects.get().status == "used"
