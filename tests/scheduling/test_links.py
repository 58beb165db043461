"""Signed one-click links from reminders (confirm, cancel, reschedule) and the waitlist offer
page: GET only shows, POST acts through the services with the channel of the link; bad links
are 404, expired ones 410; pages show the clinic and nothing of anybody else."""

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from config.security_headers import CSP
from integrations.models import Event
from scheduling import links, services
from scheduling.choices import AppointmentStatus, Channel, OfferStatus, Weekday
from scheduling.exceptions import SlotUnavailable
from scheduling.models import Appointment, WaitlistOffer
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

pytestmark = pytest.mark.django_db

S = AppointmentStatus
#: Monday 2 March 2026, 09:00 in São Paulo.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: Thursday 5 March 2026, 11:00 in São Paulo: outside the 24-hour cancellation window.
THURSDAY_11H = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def client():
    """A phone set to English: the assertions below read the English source strings (pt-BR,
    the default, has its own test)."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def pt_client():
    return Client()


@pytest.fixture
def desk(clinic_a):
    """Clinic A with an address and a phone; Dra. Helena does physiotherapy on weekday
    mornings (08:00–12:00)."""
    clinic_a.phone = "+551133334444"
    clinic_a.street, clinic_a.number, clinic_a.city, clinic_a.state = (
        "Rua das Flores",
        "100",
        "São Paulo",
        "SP",
    )
    clinic_a.save()
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")
    service = ServiceFactory(clinic=clinic_a, name="Fisioterapia", professionals=[helena])
    for weekday in Weekday.values[:5]:
        WorkingHoursFactory(
            professional=helena, weekday=weekday, start_time=time(8), end_time=time(12)
        )
    return {"clinic": clinic_a, "professional": helena, "service": service}


def book(desk, patient, start=THURSDAY_11H, **kwargs) -> Appointment:
    return services.appointment_book(
        clinic=desk["clinic"],
        patient=patient,
        professional=desk["professional"],
        service=desk["service"],
        start=start,
        **kwargs,
    )


@pytest.fixture
def appointment(desk, patient_a):
    return book(desk, patient_a, internal_notes="Paciente relata dor lombar crônica")


def path(action, appointment, channel=Channel.WHATSAPP) -> str:
    url = links.appointment_link(appointment=appointment, action=action, channel=channel)
    return urlsplit(url).path


def reload(appointment) -> Appointment:
    return Appointment.objects.get(pk=appointment.pk)


def text(response) -> str:
    return response.content.decode()


def offered_starts(response) -> list[str]:
    return re.findall(r'name="start" value="([^"]+)"', text(response))


def offered_token(response) -> str:
    return re.search(r'name="offered" value="([^"]+)"', text(response)).group(1)


# --- Making links ---------------------------------------------------------------------------
def test_a_link_is_an_absolute_url_on_the_public_address(appointment, settings):
    settings.CUIDAR_PUBLIC_URL = "https://cuidar.example.com.br"
    url = links.appointment_link(appointment=appointment, action="confirm", channel="sms")
    assert url.startswith("https://cuidar.example.com.br/agenda/l/confirm/")
    assert links.appointment_from_link(action="confirm", token=url.split("/")[-2]) == (
        appointment,
        "sms",
    )


def test_it_refuses_to_make_a_link_for_an_unknown_action_or_channel(appointment):
    with pytest.raises(ValueError):
        links.appointment_link(appointment=appointment, action="delete", channel="sms")
    with pytest.raises(ValueError):
        links.appointment_link(appointment=appointment, action="confirm", channel="pigeon")


def test_a_token_works_only_for_its_own_action(appointment):
    token = path("confirm", appointment).split("/")[-2]
    with pytest.raises(links.LinkInvalid):
        links.appointment_from_link(action="cancel", token=token)


# --- GET shows, never acts ------------------------------------------------------------------
@pytest.mark.parametrize("action", links.LINK_ACTIONS)
def test_opening_a_link_changes_nothing(client, appointment, action):
    response = client.get(path(action, appointment))
    assert response.status_code == 200
    assert reload(appointment).status == S.SCHEDULED
    assert not Event.objects.exclude(event_type="appointment.booked").exists()
    page = text(response)
    assert 'method="post"' in page
    assert "csrfmiddlewaretoken" in page


def test_a_page_shows_the_appointment_in_the_clinics_time_zone(pt_client, appointment):
    page = text(pt_client.get(path("confirm", appointment)))
    assert "Maria" in page
    assert "Dra. Helena Prado" in page
    assert "Fisioterapia" in page
    assert "Clínica Alfa" in page
    assert "Rua das Flores, 100" in page
    assert "(11) 3333-4444" in page
    assert "5 de Março de 2026" in page  # pt-BR by default
    assert "11:00" in page  # 14:00 UTC in São Paulo


def test_a_clinic_in_manaus_sees_manaus_time(pt_client, appointment, clinic_a):
    clinic_a.time_zone = "America/Manaus"
    clinic_a.save(update_fields=["time_zone"])
    page = text(pt_client.get(path("confirm", appointment)))
    assert "10:00" in page
    assert "11:00" not in page


def test_a_page_speaks_the_visitors_language(pt_client, client, appointment):
    page = text(pt_client.get(path("confirm", appointment)))
    assert '<html lang="pt-br">' in page
    english = text(client.get(path("confirm", appointment)))
    assert '<html lang="en">' in english
    assert "March 5, 2026" in english


def test_a_page_shows_no_other_data_of_the_patient_nor_of_other_patients(
    client, desk, appointment, patient_a, patient_b
):
    zelia = PatientFactory(clinic=desk["clinic"], full_name="Zélia Outra Pessoa")
    other = book(desk, zelia, start=THURSDAY_11H + timedelta(hours=1))
    page = text(client.get(path("confirm", appointment)))
    assert "Araújo" not in page  # first name only
    assert patient_a.cpf not in page
    assert "dor lombar" not in page
    assert "Zélia" not in page
    assert other.patient.full_name not in page
    assert "Bruno" not in page
    assert "Clínica Beta" not in page


@pytest.mark.parametrize(
    ("action", "max_queries"), [("confirm", 2), ("cancel", 2), ("reschedule", 10)]
)
def test_a_page_takes_few_queries(
    client, appointment, action, max_queries, django_assert_max_num_queries
):
    url = path(action, appointment)
    with django_assert_max_num_queries(max_queries):
        assert client.get(url).status_code == 200


def test_pages_stay_out_of_caches_search_engines_and_referrers(client, appointment):
    for url, status in [
        (path("confirm", appointment), 200),
        ("/agenda/l/confirm/not-a-token/", 404),
        (reverse("scheduling:offer_claim", args=["nope"]), 404),
    ]:
        response = client.get(url)
        assert response.status_code == status
        assert "no-store" in response["Cache-Control"]
        assert "noindex" in response["X-Robots-Tag"]
        assert response["Referrer-Policy"] == "no-referrer"


def test_every_link_page_carries_the_portal_s_content_security_policy(client, appointment):
    """Issue 16: the pages opened from messages had no CSP while the portal had one."""
    pages = [
        *(client.get(path(action, appointment)) for action in links.LINK_ACTIONS),
        client.post(path("confirm", appointment)),  # the confirmed page
        client.get("/agenda/l/confirm/not-a-token/"),  # invalid
        client.get(reverse("scheduling:offer_claim", args=["nope"])),
    ]
    for response in pages:
        assert response["Content-Security-Policy"] == CSP
        assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_link_pages_have_no_inline_style_or_script_the_policy_would_block(client, appointment):
    for action in links.LINK_ACTIONS:
        page = text(client.get(path(action, appointment)))
        assert "<style" not in page and "style=" not in page and "<script" not in page
        assert '<link rel="stylesheet" href="/static/scheduling/links.css">' in page


def test_the_link_pages_stylesheet_is_served_from_this_origin():
    from django.contrib.staticfiles import finders

    stylesheet = finders.find("scheduling/links.css")
    assert stylesheet and ".button" in Path(stylesheet).read_text()


# --- Bad and expired links ------------------------------------------------------------------
def test_a_confirm_token_on_the_cancel_url_is_not_found_and_changes_nothing(client, appointment):
    token = path("confirm", appointment).split("/")[-2]
    url = reverse("scheduling:appointment_link", args=["cancel", token])
    assert client.get(url).status_code == 404
    response = client.post(url)
    assert response.status_code == 404
    assert "This link is not valid" in text(response)
    assert reload(appointment).status == S.SCHEDULED


def test_it_rejects_a_tampered_token(client, appointment):
    url = path("confirm", appointment)
    tampered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    response = client.post(tampered)
    assert response.status_code == 404
    assert "Clínica Alfa" not in text(response)  # a bad link reveals nothing
    assert "Traceback" not in text(response)
    assert reload(appointment).status == S.SCHEDULED


@pytest.mark.parametrize("url", ["/agenda/l/confirm/garbage/", "/agenda/l/delete/x:y:z/"])
def test_it_rejects_a_made_up_link(client, url):
    assert client.get(url).status_code == 404


def test_a_link_to_an_unknown_appointment_is_not_found(client, desk):
    token = signing.dumps({"a": 987654, "c": "sms"}, salt="cuidar.appointment-link.confirm")
    url = reverse("scheduling:appointment_link", args=["confirm", token])
    assert client.get(url).status_code == 404


def test_a_link_of_an_inactive_clinic_is_not_found(client, appointment, clinic_a):
    clinic_a.is_active = False
    clinic_a.save(update_fields=["is_active"])
    assert client.get(path("confirm", appointment)).status_code == 404


def test_a_link_expires_after_fourteen_days(client, desk, patient_a, now):
    appointment = book(desk, patient_a, start=THURSDAY_11H + timedelta(days=21))
    url = path("confirm", appointment)
    now.move_to(NOW + links.LINK_MAX_AGE + timedelta(minutes=1), tick=False)
    response = client.post(url)
    assert response.status_code == 410
    page = text(response)
    assert "This link has expired" in page
    assert "Clínica Alfa" in page  # whom to call
    assert "(11) 3333-4444" in page
    assert "Maria" not in page
    assert reload(appointment).status == S.SCHEDULED


def test_a_link_stops_working_once_the_appointment_has_started(client, appointment, now):
    url = path("cancel", appointment)
    now.move_to(appointment.start + timedelta(minutes=1), tick=False)
    assert client.get(url).status_code == 410
    assert client.post(url).status_code == 410
    assert reload(appointment).status == S.SCHEDULED


# --- Confirm --------------------------------------------------------------------------------
def test_posting_a_confirm_link_confirms_through_the_channel_of_the_link(client, appointment):
    response = client.post(path("confirm", appointment, Channel.WHATSAPP))
    assert response.status_code == 200
    assert "Your appointment is confirmed" in text(response)
    confirmed = reload(appointment)
    assert confirmed.status == S.CONFIRMED
    assert confirmed.confirmed_via == "whatsapp"
    assert Event.objects.filter(event_type="appointment.confirmed").count() == 1


def test_confirming_twice_says_it_is_already_confirmed(client, appointment):
    url = path("confirm", appointment)
    client.post(url)
    response = client.post(url)
    assert response.status_code == 200
    assert "already confirmed" in text(response)
    assert Event.objects.filter(event_type="appointment.confirmed").count() == 1


def test_a_cancelled_appointment_cannot_be_confirmed(client, appointment):
    services.appointment_cancel(appointment=appointment, reason="reception")
    response = client.post(path("confirm", appointment))
    assert response.status_code == 409
    assert "This appointment was cancelled." in text(response)
    assert reload(appointment).status == S.CANCELLED


def test_the_form_is_protected_against_cross_site_posts(appointment):
    browser = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    url = path("confirm", appointment)
    refused = browser.post(url)
    assert refused.status_code == 403
    assert "Please try again" in text(refused)
    assert reload(appointment).status == S.SCHEDULED

    page = browser.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    assert browser.post(url, {"csrfmiddlewaretoken": token}).status_code == 200
    assert reload(appointment).status == S.CONFIRMED


# --- Cancel ---------------------------------------------------------------------------------
def test_cancelling_within_the_policy_frees_the_time(client, desk, appointment):
    response = client.post(path("cancel", appointment, Channel.SMS))
    assert response.status_code == 200
    assert "Your appointment was cancelled" in text(response)
    cancelled = reload(appointment)
    assert cancelled.status == S.CANCELLED
    assert cancelled.cancelled_via == "sms"
    assert cancelled.cancellation_reason == links.CANCEL_REASON
    assert not cancelled.late_cancellation
    assert Event.objects.filter(event_type="slot.freed").exists()
    # The time can be booked again.
    assert book(desk, PatientFactory(clinic=desk["clinic"])).start == appointment.start

    again = client.post(path("cancel", appointment))
    assert again.status_code == 200
    assert "already cancelled" in text(again)


def test_cancelling_inside_the_window_is_refused_with_the_clinics_phone(client, desk, patient_a):
    soon = book(desk, patient_a, start=NOW + timedelta(hours=6))
    url = path("cancel", soon)
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 409
        page = text(response)
        assert "up to 24 hours before" in page
        assert "tel:+551133334444" in page
    unchanged = reload(soon)
    assert unchanged.status == S.SCHEDULED
    assert not Event.objects.filter(event_type="appointment.cancelled").exists()


# --- Reschedule -----------------------------------------------------------------------------
def test_rescheduling_lists_free_times_and_moves_the_appointment(client, appointment):
    url = path("reschedule", appointment, Channel.EMAIL)
    page = client.get(url)
    starts = offered_starts(page)
    assert 0 < len(starts) <= links.RESCHEDULE_MAX_SLOTS
    assert appointment.start.isoformat() not in starts
    assert all(NOW <= datetime.fromisoformat(s) <= NOW + links.RESCHEDULE_HORIZON for s in starts)

    days = {datetime.fromisoformat(s).date() for s in starts}
    assert len(days) >= 3  # a few times a day, over several days
    assert all(
        sum(datetime.fromisoformat(s).date() == day for s in starts)
        <= links.RESCHEDULE_SLOTS_PER_DAY
        for day in days
    )

    chosen = starts[1]
    response = client.post(url, {"start": chosen, "offered": offered_token(page)})
    assert response.status_code == 200
    assert "Your appointment was moved" in text(response)
    old = reload(appointment)
    assert old.status == S.RESCHEDULED
    new = old.replaced_by
    assert new.start == datetime.fromisoformat(chosen)
    assert new.status == S.SCHEDULED
    assert new.booked_via == "email"
    assert new.professional_id == appointment.professional_id
    assert new.service_id == appointment.service_id


def test_posting_a_time_that_was_not_offered_is_refused(client, appointment):
    url = path("reschedule", appointment)
    page = client.get(url)
    at_night = datetime(2026, 3, 3, 6, 0, tzinfo=UTC).isoformat()  # 03:00 in São Paulo
    for data in (
        {"start": at_night, "offered": offered_token(page)},
        {"start": offered_starts(page)[0], "offered": "forged"},
        {"offered": offered_token(page)},
    ):
        response = client.post(url, data)
        assert response.status_code == 400
        assert offered_starts(response)  # the list again
    assert reload(appointment).status == S.SCHEDULED


def test_a_time_taken_meanwhile_shows_the_list_again(client, desk, appointment):
    url = path("reschedule", appointment)
    page = client.get(url)
    chosen = offered_starts(page)[0]
    book(desk, PatientFactory(clinic=desk["clinic"]), start=datetime.fromisoformat(chosen))

    response = client.post(url, {"start": chosen, "offered": offered_token(page)})
    assert response.status_code == 409
    assert "That time was just taken" in text(response)
    assert chosen not in offered_starts(response)
    assert reload(appointment).status == S.SCHEDULED


def test_a_time_taken_in_the_last_instant_shows_the_list_again(client, appointment, monkeypatch):
    url = path("reschedule", appointment)
    page = client.get(url)

    def lost_race(**kwargs):
        raise SlotUnavailable(conflicts=["professional"])

    monkeypatch.setattr(services, "appointment_reschedule", lost_race)
    response = client.post(url, {"start": offered_starts(page)[0], "offered": offered_token(page)})
    assert response.status_code == 409
    assert "That time was just taken" in text(response)
    assert reload(appointment).status == S.SCHEDULED


def test_rescheduling_inside_the_window_asks_to_call(client, desk, patient_a):
    soon = book(desk, patient_a, start=NOW + timedelta(hours=2))
    response = client.get(path("reschedule", soon))
    assert response.status_code == 409
    assert "rescheduled online up to 24 hours before" in text(response)
    assert not offered_starts(response)


def test_a_moved_appointment_says_so(client, appointment):
    services.appointment_reschedule(appointment=appointment, start=THURSDAY_11H + timedelta(days=7))
    response = client.get(path("reschedule", appointment))
    assert response.status_code == 409
    assert "moved to another time" in text(response)


# --- Waitlist offers ------------------------------------------------------------------------
@pytest.fixture
def offer(desk, patient_a):
    services.waitlist_add(
        clinic=desk["clinic"],
        patient=patient_a,
        service=desk["service"],
        earliest_date=NOW.date(),
        latest_date=NOW.date() + timedelta(days=30),
    )
    [offer] = services.waitlist_offer_slot(
        clinic=desk["clinic"],
        service_id=desk["service"].pk,
        professional_id=desk["professional"].pk,
        room_id=None,
        start=THURSDAY_11H,
        end=THURSDAY_11H + timedelta(minutes=30),
    )
    return offer


def offer_path(offer, channel=Channel.WHATSAPP) -> str:
    parts = urlsplit(links.offer_link(offer=offer, channel=channel))
    return f"{parts.path}?{parts.query}"


def test_an_offer_page_shows_the_time_and_until_when_it_is_held(
    client, offer, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):
        response = client.get(offer_path(offer))
    assert response.status_code == 200
    page = text(response)
    assert "Maria" in page
    assert "Clínica Alfa" in page
    assert "11 a.m." in page
    assert "9:30 a.m." in page  # held for 30 minutes from 09:00
    assert WaitlistOffer.objects.get(pk=offer.pk).status == OfferStatus.OPEN
    assert response["Content-Security-Policy"] == CSP


def test_an_offer_is_claimed_once(client, offer, patient_a):
    url = offer_path(offer, Channel.SMS)
    response = client.post(url, {"c": "sms"})
    assert response.status_code == 200
    assert "Your appointment is booked" in text(response)
    booked = Appointment.objects.get(patient=patient_a, start=THURSDAY_11H)
    assert booked.booked_via == "sms"

    again = client.post(url, {"c": "sms"})
    assert again.status_code == 410
    assert "This offer was already used." in text(again)
    assert Appointment.objects.filter(patient=patient_a).count() == 1


def test_an_offer_claimed_from_an_unknown_channel_counts_as_the_portal(client, offer, patient_a):
    url = reverse("scheduling:offer_claim", args=[offer.token])
    assert client.post(url, {"c": "fax"}).status_code == 200
    assert Appointment.objects.get(patient=patient_a).booked_via == "portal"


def test_an_offer_taken_by_someone_else_says_so(client, desk, offer):
    book(desk, PatientFactory(clinic=desk["clinic"]))  # the reception was faster
    response = client.post(offer_path(offer))
    assert response.status_code == 409
    assert "already taken by someone else" in text(response)


def test_an_expired_offer_cannot_be_claimed(client, offer, now):
    now.move_to(offer.expires_at + timedelta(minutes=1), tick=False)
    response = client.post(offer_path(offer))
    assert response.status_code == 410
    assert "This offer has expired." in text(response)
    assert not Appointment.objects.filter(start=THURSDAY_11H).exists()


def test_an_unknown_offer_is_not_found(client, desk):
    response = client.get(reverse("scheduling:offer_claim", args=["no-such-offer"]))
    assert response.status_code == 404
    assert "This link is not valid" in text(response)
