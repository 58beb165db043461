"""The receptionist's calendar in a real browser (Debian's Chromium through Playwright) at
1366×768, a clinic's usual laptop, and at 390 px: the morning of six professionals fits
on the screen, a booking takes two clicks and a search, a drag moves an appointment or
snaps back with the reason, a keyboard alone can move one, a booking made through the
partner API shows up within seconds, and axe-core finds no serious violation on the
calendar, the booking panel and the reception's home. Screenshots are kept under
docs/screenshots/ for the README."""

import os
import time as time_module
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic import services as clinic_services
from clinic.choices import MembershipRole
from clinic.models import Membership
from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES
from scheduling import services
from scheduling.choices import AppointmentStatus, Weekday
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory, UserFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

pytestmark = pytest.mark.django_db(transaction=True)

SP = ZoneInfo("America/Sao_Paulo")
PASSWORD = "s3nha-forte-123"
#: Where screenshots go: var/ (not versioned) on every run, docs/screenshots/ when
#: CUIDAR_DOCS_SCREENSHOTS=1 asks to refresh the ones the README shows.
DOCS = Path(__file__).resolve().parents[2] / (
    "docs/screenshots" if os.environ.get("CUIDAR_DOCS_SCREENSHOTS") else "var/screenshots"
)
NAMES = [
    "Dra. Helena Martins",
    "Dr. Igor Lima",
    "Camila Rocha",
    "Juliana Prado",
    "Marcos Vieira",
    "Patrícia Nogueira",
]


def a_workday() -> datetime.date:
    """A weekday ahead that is not a national holiday."""
    day = timezone.now().astimezone(SP).date() + timedelta(days=3)
    while day.weekday() >= 5 or day in holidays.country_holidays("BR", years=day.year):
        day += timedelta(days=1)
    return day


@pytest.fixture
def desk(clinic_a):
    day = a_workday()
    team = [ProfessionalFactory(clinic=clinic_a, full_name=name) for name in NAMES]
    for professional in team:
        WorkingHoursFactory(
            professional=professional,
            weekday=Weekday(day.weekday()),
            start_time=time(8),
            end_time=time(18),
        )
    consulta = ServiceFactory(
        clinic=clinic_a, name="Consulta clínica", duration_minutes=30, professionals=team
    )
    patients = [
        PatientFactory(clinic=clinic_a, full_name=name)
        for name in ("Maria Souza", "João Pereira", "Ana Lima", "Rita Alves")
    ]

    def book(patient, professional, hour, minute=0):
        return services.appointment_book(
            clinic=clinic_a,
            patient=patient,
            professional=professional,
            service=consulta,
            start=datetime.combine(day, time(hour, minute), tzinfo=SP),
        )

    booked = [
        book(patients[0], team[0], 9),
        book(patients[1], team[1], 10),
        book(patients[2], team[2], 8, 30),
    ]
    services.appointment_confirm(appointment=booked[1])
    user = UserFactory(username="recepcao_calendario")
    user.set_password(PASSWORD)
    user.save()
    clinic_services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    return type(
        "Desk",
        (),
        {
            "clinic": clinic_a,
            "day": day,
            "team": team,
            "service": consulta,
            "patients": patients,
            "booked": booked,
            "user": user,
            "book": staticmethod(book),
        },
    )


#: Browser contexts opened by the current test: closed after it, or their calendars would go
#: on polling the live server through later tests (whose test client then records the
#: templates those requests render as if they were its own).
_OPEN_CONTEXTS: list = []


@pytest.fixture(autouse=True)
def _close_calendars():
    yield
    while _OPEN_CONTEXTS:
        _OPEN_CONTEXTS.pop().close()


def open_calendar(browser, live_server, desk, width=1366, height=768, zone="America/Sao_Paulo"):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        locale="pt-BR",
        timezone_id=zone,
    )
    _OPEN_CONTEXTS.append(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/admin/login/")
    page.fill("input[name=username]", desk.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{reverse('admin:scheduling_calendar')}?date={desk.day.isoformat()}")
    page.wait_for_selector(".cal-appt")
    return page


def label_y(page, hhmm: str) -> float:
    """Where the time axis draws ``hhmm``'s grid line (its label is centred on it)."""
    return page.eval_on_selector(
        f"#calendar time[datetime$='T{hhmm}:00']",
        "t => { const r = t.getBoundingClientRect(); return r.top + r.height / 2; }",
    )


def column_x(page, index: int) -> float:
    boxes = page.eval_on_selector_all(
        ".ec-col-head",
        "hs => hs.map(h => { const r = h.getBoundingClientRect(); return r.left + r.width / 2; })",
    )
    return boxes[index]


def drag(page, card, x: float, y: float):
    box = card.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 6)
    page.mouse.down()
    steps = 12
    for n in range(1, steps + 1):
        page.mouse.move(
            box["x"] + box["width"] / 2 + (x - box["x"] - box["width"] / 2) * n / steps,
            box["y"] + 6 + (y - box["y"] - 6) * n / steps,
        )
        page.wait_for_timeout(20)
    page.mouse.up()


def card_of(page, appointment):
    return page.locator(f"[data-appointment='{appointment.pk}']")


def test_the_morning_of_six_professionals_fits_a_laptop_screen(
    desk, browser, live_server, axe_check
):
    page = open_calendar(browser, live_server, desk)

    heads = page.eval_on_selector_all(
        ".ec-col-head", "hs => hs.map(h => [h.innerText, h.getBoundingClientRect().right])"
    )
    assert [h[0].split("\n")[0] for h in heads] == sorted(NAMES)
    assert all(right <= 1366 for _name, right in heads)
    header = page.eval_on_selector(".ec-header", "h => h.getBoundingClientRect().bottom")
    eight, noon = label_y(page, "08:00"), label_y(page, "12:00")
    # Both lines on screen, below the column heads, without scrolling the page or the grid.
    assert header - 1 <= eight < noon <= 768 - 4, (header, eight, noon)
    assert page.evaluate("window.scrollY") == 0
    at_noon = page.evaluate(
        f"document.elementFromPoint({column_x(page, 5)}, {noon - 3}).closest('.ec-body') !== null"
    )
    assert at_noon
    # Status in words and symbols, not colour alone.
    label = card_of(page, desk.booked[1]).get_attribute("aria-label")
    assert label.startswith("✓ Confirmado, 10:00–10:30, João Pereira")

    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "calendar-day.png"))
    axe_check(page, "calendar")


def test_a_booking_takes_two_clicks_and_a_search(desk, browser, live_server, axe_check):
    page = open_calendar(browser, live_server, desk, zone="Asia/Tokyo")  # not the clinic's
    helena = sorted(NAMES).index("Dra. Helena Martins")

    # Click 1: Helena's 11:00, a free time.
    page.mouse.click(column_x(page, helena), label_y(page, "11:00") + 8)
    page.wait_for_selector("#cal-panel:not([hidden])")
    assert "11:00" in page.inner_text("#cal-panel-title")
    page.fill("#cal-patient-q", "rita")
    page.wait_for_selector("#cal-patient-results [role=option]")
    page.keyboard.press("Enter")
    assert "Rita Alves" in page.inner_text("#cal-patient-chosen")
    # The professional's only service is preselected; the clicked time too.
    assert page.input_value("#cal-service") == str(desk.service.pk)
    page.wait_for_selector(".cal-time-button[aria-pressed=true]")
    assert page.inner_text(".cal-time-button[aria-pressed=true]").endswith("11:00")
    page.screenshot(path=str(DOCS / "calendar-booking.png"))
    axe_check(page, "booking panel")

    # Click 2: book.
    page.click("#cal-book button[type=submit]")
    page.wait_for_selector("#cal-messages p")
    booked = Appointment.objects.get(patient=desk.patients[3])
    assert booked.start == datetime.combine(desk.day, time(11), tzinfo=SP)
    assert booked.professional.full_name == "Dra. Helena Martins"
    page.wait_for_selector(f"[data-appointment='{booked.pk}']")


def test_a_drag_moves_to_a_free_time_and_snaps_back_from_a_busy_one(desk, browser, live_server):
    page = open_calendar(browser, live_server, desk)
    maria = desk.booked[0]  # Helena, 09:00
    igor = sorted(NAMES).index("Dr. Igor Lima")

    # Onto Igor's 10:00, taken by João: refused, back at 09:00 with the reason.
    drag(page, card_of(page, maria), column_x(page, igor), label_y(page, "10:00") + 10)
    page.wait_for_selector("#cal-move[open]")
    page.click("#cal-move-submit")
    page.wait_for_selector("#cal-errors p")
    assert "Dr. Igor Lima" in page.inner_text("#cal-errors")
    page.click("#cal-move button[value=cancel]")
    maria.refresh_from_db()
    assert maria.status == AppointmentStatus.SCHEDULED
    page.wait_for_timeout(300)
    assert abs(card_of(page, maria).bounding_box()["y"] - label_y(page, "09:00")) < 4

    # To Igor's 14:00, free: moved (and the patient told).
    page.eval_on_selector(".ec-body", "b => b.scrollTop = 0")
    drag(page, card_of(page, maria), column_x(page, igor), label_y(page, "11:00") + 10)
    page.wait_for_selector("#cal-move[open]")
    page.click("#cal-move-submit")
    page.wait_for_selector("#cal-messages p")
    maria.refresh_from_db()
    assert maria.status == AppointmentStatus.RESCHEDULED
    moved = maria.replaced_by
    assert moved.professional.full_name == "Dr. Igor Lima"
    assert moved.start.astimezone(SP).time() == time(11)


def test_the_keyboard_alone_moves_an_appointment(desk, browser, live_server):
    page = open_calendar(browser, live_server, desk)
    ana = desk.booked[2]  # Camila, 08:30

    card_of(page, ana).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#cal-menu:not([hidden])")
    page.get_by_role("menuitem", name="Remarcar…").click()
    page.wait_for_selector("#cal-move[open]")
    page.fill("#cal-move-time", "15:30")
    page.keyboard.press("Enter")
    page.wait_for_selector("#cal-messages p")
    ana.refresh_from_db()
    assert ana.replaced_by.start.astimezone(SP).time() == time(15, 30)


def test_a_booking_made_through_the_api_appears_within_5_seconds(desk, browser, live_server):
    page = open_calendar(browser, live_server, desk)
    _key, secret = api_key_create(clinic=desk.clinic, name="Site", scopes=list(API_SCOPES))
    partner = Client(headers={"Authorization": f"Bearer {secret}"})
    response = partner.post(
        "/api/v1/appointments/",
        {
            "patient": desk.patients[3].pk,
            "professional": desk.team[4].pk,
            "service": desk.service.pk,
            "start": datetime.combine(desk.day, time(10), tzinfo=SP).isoformat(),
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content

    page.wait_for_selector(f"[data-appointment='{response.json()['id']}']", timeout=5_000)


def test_the_calendar_on_a_phone(desk, browser, live_server, axe_check):
    page = open_calendar(browser, live_server, desk, width=390, height=844)
    page.click("[data-view=list]")
    page.wait_for_selector(".ec-list .cal-appt, .ec-list .ec-event")
    page.screenshot(path=str(DOCS / "calendar-phone.png"))
    axe_check(page, "calendar on a phone")


def test_the_reception_home_leads_with_today(desk, browser, live_server, axe_check):
    now = timezone.now().astimezone(SP)
    midnight = datetime.combine(now.date(), time(0, 1), tzinfo=SP)
    came = services.appointment_book(
        clinic=desk.clinic,
        patient=desk.patients[0],
        professional=desk.team[0],
        service=desk.service,
        start=max(midnight, now - timedelta(minutes=20)),
    )
    services.appointment_check_in(appointment=came)
    page = open_calendar(browser, live_server, desk)
    page.goto(reverse("admin:index"))

    room = page.locator("#waiting-room")
    assert "Maria Souza" in room.inner_text()
    figures = page.locator(".desk-figures").bounding_box()
    assert figures["y"] < 300  # today leads, above the fold
    page.screenshot(path=str(DOCS / "reception-home.png"))
    axe_check(page, "reception home")


def test_a_day_of_20_professionals_and_400_appointments_renders_fast(
    desk, browser, live_server, record_property
):
    """Issue 21 asks < 1 s on a quiet desk machine; here (a shared CI box, other suites
    running) the bound only catches a pathology, and the figure measured on a quiet run
    goes to bench/RESULTS.md."""
    team = desk.team + [
        ProfessionalFactory(clinic=desk.clinic, full_name=f"Profissional {n:02d}")
        for n in range(14)
    ]
    for professional in team[6:]:
        WorkingHoursFactory(
            professional=professional,
            weekday=Weekday(desk.day.weekday()),
            start_time=time(8),
            end_time=time(18),
        )
    Appointment.objects.filter(clinic=desk.clinic).delete()
    patients = PatientFactory.create_batch(20, clinic=desk.clinic)
    rows = []
    for p_index, professional in enumerate(team):
        for slot in range(20):
            start = datetime.combine(desk.day, time(8), tzinfo=SP) + timedelta(minutes=30 * slot)
            rows.append(
                Appointment(
                    clinic=desk.clinic,
                    patient=patients[(slot + p_index) % 20],
                    professional=professional,
                    service=desk.service,
                    start=start,
                    end=start + timedelta(minutes=30),
                    occupied_start=start,
                    occupied_end=start + timedelta(minutes=30),
                )
            )
    # At each time the 20 professionals see 20 different patients: no constraint is hit.
    Appointment.objects.bulk_create(rows)
    page = open_calendar(browser, live_server, desk)

    started = time_module.perf_counter()
    page.goto(f"{reverse('admin:scheduling_calendar')}?date={desk.day.isoformat()}")
    # A locator waits without evaluating a string in the page (the staff CSP forbids eval,
    # which wait_for_function's polling needs once the first check is false).
    page.locator("[data-appointment]").nth(399).wait_for(state="attached")
    total_ms = (time_module.perf_counter() - started) * 1000
    # The browser's own part: from the JSON's arrival to 400 cards drawn.
    render_ms = page.evaluate(
        """() => performance.now() - Math.max(...performance.getEntriesByType('resource')
            .filter(e => e.name.includes('/calendar/events/')).map(e => e.responseEnd))"""
    )
    record_property("render_ms", round(render_ms))
    print(
        f"20 professionals, 400 appointments: drawn {render_ms:.0f} ms after the JSON, "
        f"{total_ms:.0f} ms from navigation"
    )
    assert page.locator(".ec-col-head").count() == 20
    assert render_ms < 5000
