"""The funnel board in a real browser (Chromium through Playwright, 1366x768): a lead
dragged from "new" to "interested" moves and the counts follow; the receptionist then
registers it as a patient and books it from the lead's page, and the lead is scheduled —
converted once the patient checks in. Static script only (the staff CSP has no inline
scripts), and the browser context is closed."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import Membership
from crm import services
from crm.choices import LeadStatus
from crm.models import Lead
from scheduling import services as scheduling
from scheduling.models import Appointment
from tests.clinic.factories import ProfessionalFactory, UserFactory
from tests.scheduling.factories import ServiceFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3nha-forte-123"


@pytest.fixture
def desk(clinic_a):
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Martins")
    ServiceFactory(clinic=clinic_a, name="Avaliação", professionals=[professional])
    user = UserFactory(username="recepcao_crm_e2e")
    user.set_password(PASSWORD)
    user.save()
    clinic_services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    lead, _ = services.lead_capture(
        clinic=clinic_a, name="Joana Prado", phone="11987654321", source="instagram"
    )
    return user, lead, professional


def test_a_lead_is_dragged_across_the_board_and_converted_by_booking(desk, browser, live_server):
    user, lead, professional = desk
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 768},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/admin/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")

        page.goto(reverse("admin:crm_lead_board"))
        card = page.locator(f'li.crm-card[data-lead="{lead.pk}"]')
        # Taken by its edge (its middle holds the keyboard form).
        card.drag_to(
            page.locator('section.crm-column[data-stage="interested"]'),
            source_position={"x": 4, "y": 4},
        )
        page.wait_for_selector(
            f'section.crm-column[data-stage="interested"] li.crm-card[data-lead="{lead.pk}"]'
        )
        assert page.locator("[data-count-for=interested]").inner_text().strip() == "1"
        assert page.locator("[data-count-for=new]").inner_text().strip() == "0"
        lead.refresh_from_db()
        assert lead.status == LeadStatus.INTERESTED
        scripts = page.eval_on_selector_all("script[src]", "ss => ss.map(s => s.src)")
        assert all(s.startswith(live_server.url) for s in scripts), scripts

        # The receptionist books her from the lead's page.
        page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
        page.click("form[action$='/book/'] button")
        page.wait_for_selector("#id_professional")
        lead.refresh_from_db()
        assert lead.patient_id is not None
        when = timezone.localtime() + timedelta(days=2)
        page.select_option("#id_professional", str(professional.pk))
        page.select_option("#id_service", label="Avaliação")
        page.fill("#id_start_0", when.strftime("%d/%m/%Y"))
        page.fill("#id_start_1", "10:00")
        page.click("input[name=_save]")
        page.wait_for_url("**/admin/scheduling/appointment/**")
    finally:
        context.close()

    appointment = Appointment.objects.get(patient_id=lead.patient_id)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SCHEDULED
    scheduling.appointment_check_in(appointment=appointment)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED
    assert Lead.objects.count() == 1
