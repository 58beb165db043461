"""The booking form in a real browser (Debian's Chromium through Playwright, at 1366x768, a
reception desk's screen): opened from a free time of the agenda, it lists only the
professional's services, and the list follows when another professional is chosen — with
the project's own script, no CDN. (No axe-core check: the violations it finds on this page
are the Django admin's own — its date widgets, select2, breadcrumbs — not the form's.)"""

from datetime import time, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import services
from clinic.choices import MembershipRole
from clinic.models import Membership
from scheduling.choices import Weekday
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3nha-forte-123"
#: Where the screenshot is kept for a person to look at (var/ is not versioned).
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "booking-form.png"


@pytest.fixture
def desk(clinic_a):
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Martins")
    igor = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Igor Lima")
    for professional in (helena, igor):
        WorkingHoursFactory(
            professional=professional, weekday=Weekday.MONDAY, start_time=time(8), end_time=time(18)
        )
    ServiceFactory(clinic=clinic_a, name="Consulta clínica", professionals=[helena])
    ServiceFactory(clinic=clinic_a, name="Retorno", professionals=[helena])
    ServiceFactory(clinic=clinic_a, name="Pilates clínico", professionals=[igor])
    PatientFactory(clinic=clinic_a)
    user = UserFactory(username="recepcao_agenda_e2e")
    user.set_password(PASSWORD)
    user.save()
    services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    return helena, igor, user


def visible_services(page) -> list[str]:
    return page.eval_on_selector_all(
        "#id_service option", "os => os.filter(o => o.value && !o.hidden).map(o => o.text)"
    )


def test_the_booking_form_lists_the_chosen_professionals_services(desk, browser, live_server):
    helena, igor, user = desk
    monday = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 768},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")

    # A free time of Helena's Monday, as the agenda offers it.
    page.goto(f"{reverse('admin:scheduling_agenda')}?date={monday.isoformat()}")
    free = page.locator(f"table.agenda-grid td.agenda-free a[href*='professional={helena.pk}']")
    free.nth(4).click()
    page.wait_for_selector("#id_service")

    assert page.input_value("#id_professional") == str(helena.pk)
    assert visible_services(page) == ["Consulta clínica", "Retorno"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    # Another professional: the list follows, and a service she no longer offers is cleared.
    page.select_option("#id_service", label="Retorno")
    page.select_option("#id_professional", str(igor.pk))
    assert visible_services(page) == ["Pilates clínico"]
    assert page.input_value("#id_service") == ""
    scripts = page.eval_on_selector_all("script[src]", "ss => ss.map(s => s.src)")
    assert all(s.startswith(live_server.url) for s in scripts), scripts
    context.close()
