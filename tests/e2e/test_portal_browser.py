"""The patient portal in a real browser (Debian's Chromium through Playwright, phone-sized):
sign in with the code taken from the console provider's outbox, book a slot, see it on the
home page, cancel it — and the booking shows in the receptionist's agenda. axe-core checks
every portal page on the way: no serious or critical violation."""

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services as billing
from billing.choices import PaymentMethod
from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MembershipRole
from clinic.models import Membership
from integrations.models import ConsoleRecord
from scheduling import services as scheduling
from scheduling.choices import AppointmentStatus, Channel, Weekday
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

pytestmark = pytest.mark.django_db(transaction=True)

CPF = "529.982.247-25"
PASSWORD = "s3nha-forte-123"


@pytest.fixture
def agenda(clinic_a):
    """A professional who works every day, 07:00–21:00, and a service booked online."""
    clinic_a.phone = "+551133334444"
    clinic_a.street, clinic_a.number, clinic_a.city, clinic_a.state = (
        "Rua Augusta",
        "100",
        "São Paulo",
        "SP",
    )
    clinic_a.save()
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Martins")
    for weekday in Weekday:
        WorkingHoursFactory(
            professional=professional, weekday=weekday, start_time=time(7), end_time=time(21)
        )
    service = ServiceFactory(
        clinic=clinic_a,
        name="Consulta de rotina",
        professionals=[professional],
        min_notice_minutes=0,
        max_advance_days=30,
        cancellation_window_hours=2,
        preparation_instructions="Traga seus exames anteriores.",
    )
    return professional, service


@pytest.fixture
def maria(clinic_a):
    patient = PatientFactory(
        clinic=clinic_a,
        full_name="Maria José Araújo",
        cpf="52998224725",
        phone="+5511981234567",
        email="maria@example.com",
    )
    services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    return patient


@pytest.fixture
def receptionist(clinic_a):
    user = UserFactory(username="recepcao_e2e")
    services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    return user


def sent_code() -> str:
    record = ConsoleRecord.objects.filter(operation="send").order_by("-pk").first()
    assert record is not None, "no code was sent"
    return re.search(r"\b(\d{6})\b", record.payload["text"]).group(1)


def sign_in(page, axe_check):
    page.goto("/portal/")
    assert "/portal/entrar/" in page.url
    axe_check(page, "sign-in")
    page.fill("input[name=identifier]", CPF)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/portal/entrar/codigo/**")
    axe_check(page, "code")
    page.fill("input[name=code]", sent_code())
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/portal/$"))


def test_a_patient_signs_in_books_sees_it_cancels_and_reception_sees_it(
    page, browser, live_server, axe_check, agenda, maria, receptionist
):
    professional, service = agenda
    sign_in(page, axe_check)
    assert "Maria" in page.inner_text("h1")
    axe_check(page, "home, nothing booked")

    # Book: service → professional → day → time → confirm.
    page.click("nav.site-nav a[href='/portal/agendar/']")
    axe_check(page, "book: service")
    page.click(f"ul.pick a:has-text('{service.name}')")
    axe_check(page, "book: professional")
    page.click(f"ul.pick a:has-text('{professional.full_name}')")
    axe_check(page, "book: day")
    page.click("ul.pick a >> nth=1")  # tomorrow or later: outside the 2 h cancellation window
    axe_check(page, "book: time")
    page.check("input[name=start] >> nth=0")
    page.click("main form button[type=submit]")
    axe_check(page, "book: confirm")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/portal/consultas/\d+/$"))
    axe_check(page, "appointment")

    appointment = Appointment.objects.get(patient=maria)
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert appointment.booked_via == Channel.PORTAL

    # On the home page.
    page.click("nav.site-nav a[href='/portal/']")
    local = timezone.localtime(appointment.start, ZoneInfo(maria.clinic.time_zone))
    assert local.strftime("%H:%M") in page.inner_text("main")
    assert service.name in page.inner_text("main")
    axe_check(page, "home, with the appointment")

    # The receptionist sees it in the day's agenda.
    staff = browser.new_context(base_url=live_server.url)
    admin = staff.new_page()
    admin.goto("/admin/login/")
    admin.fill("input[name=username]", receptionist.username)
    admin.fill("input[name=password]", PASSWORD)
    admin.click("input[type=submit]")
    admin.goto(f"{reverse('admin:scheduling_agenda')}?date={local.date().isoformat()}")
    assert maria.full_name in admin.inner_text("body")
    staff.close()

    # The other pages of the appointment.
    page.goto(reverse("portal:appointment_reschedule", args=[appointment.pk]))
    axe_check(page, "reschedule")
    page.goto(reverse("portal:appointments"))
    axe_check(page, "appointments")

    # Cancel it: a confirmation page, then the POST.
    page.goto(reverse("portal:appointment", args=[appointment.pk]))
    page.click(f"a[href='{reverse('portal:appointment_cancel', args=[appointment.pk])}']")
    axe_check(page, "cancel: are you sure?")
    page.click("main form button.danger")
    page.wait_for_url(re.compile(r".*/portal/consultas/\d+/$"))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_via == Channel.PORTAL
    page.click("nav.site-nav a[href='/portal/']")
    assert local.strftime("%H:%M") not in page.inner_text("main")


def test_every_other_portal_page_passes_the_accessibility_check(
    page, axe_check, agenda, maria, clinic_b
):
    open_charge = billing.payment_charge_create(
        clinic=maria.clinic, patient=maria, amount="180.00", method=PaymentMethod.PIX
    )
    paid = billing.payment_register(
        clinic=maria.clinic, patient=maria, amount="150.00", method=PaymentMethod.CASH
    )
    sign_in(page, axe_check)
    for label, url in [
        ("payments", reverse("portal:payments")),
        ("payment: PIX", reverse("portal:payment", args=[open_charge.pk])),
        ("payment: paid", reverse("portal:payment", args=[paid.pk])),
        ("receipt", reverse("portal:payment_receipt", args=[paid.pk])),
        ("profile", reverse("portal:profile")),
        ("consents", reverse("portal:consents")),
        ("privacy", reverse("portal:privacy")),
        ("data export (HTML)", reverse("portal:privacy_export_html")),
    ]:
        response = page.goto(url)
        assert response.status == 200, (label, response.status)
        axe_check(page, label)
    # The PIX code is there to copy; the copy button appears with JavaScript.
    page.goto(reverse("portal:payment", args=[open_charge.pk]))
    assert page.locator("textarea").first.input_value().startswith("000201")


def test_a_patient_of_two_clinics_chooses_one_and_sees_only_it(page, axe_check, maria, clinic_b):
    PatientFactory(clinic=clinic_b, cpf=maria.cpf, phone=maria.phone)
    page.goto("/portal/entrar/")
    page.fill("input[name=identifier]", CPF)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/portal/entrar/codigo/**")
    page.fill("input[name=code]", sent_code())
    page.click("main form button[type=submit]")
    page.wait_for_url("**/portal/entrar/clinica/**")
    axe_check(page, "choose the clinic")
    page.check(f"label:has-text('{clinic_b.name}') input")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/portal/$"))
    assert clinic_b.name in page.inner_text("header")
    assert maria.clinic.name not in page.inner_text("body")


def test_the_accessibility_check_can_fail(page, axe_check):
    """The check is real: a page with an unlabelled field and unreadable text fails it."""
    page.set_content(
        '<html lang="pt-BR"><head><title>x</title></head><body><main>'
        '<input type="text"><p style="color:#eee;background:#fff">texto</p>'
        "</main></body></html>"
    )
    with pytest.raises(AssertionError, match="accessibility violations"):
        axe_check(page, "a bad page")


def test_the_session_cookie_is_not_readable_by_scripts(page, axe_check, agenda, maria):
    sign_in(page, axe_check)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cuidar_portal"]["httpOnly"] is True
    assert page.evaluate("document.cookie").find("cuidar_portal") == -1


def test_a_slot_taken_meanwhile_asks_for_another_time(page, axe_check, agenda, maria, clinic_a):
    professional, service = agenda
    sign_in(page, axe_check)
    page.goto(reverse("portal:book"))
    page.click(f"ul.pick a:has-text('{service.name}')")
    page.click(f"ul.pick a:has-text('{professional.full_name}')")
    page.click("ul.pick a >> nth=1")
    chosen = page.locator("input[name=start] >> nth=0").get_attribute("value")
    page.check("input[name=start] >> nth=0")
    page.click("main form button[type=submit]")
    # Someone else takes that time at the desk while Maria reads the summary.
    scheduling.appointment_book(
        clinic=clinic_a,
        patient=PatientFactory(clinic=clinic_a),
        professional=professional,
        service=service,
        start=datetime.fromisoformat(chosen),
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("main form button[type=submit]")
    assert answer.value.status == 409
    assert "Escolha outro horário" in page.inner_text("main")
    assert chosen not in [
        page.locator("input[name=start]").nth(i).get_attribute("value")
        for i in range(page.locator("input[name=start]").count())
    ]
    axe_check(page, "book: taken meanwhile")
    assert not Appointment.objects.filter(patient=maria).exists()
