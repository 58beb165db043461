"""Calendar files: a professional's private ICS feed (token in the URL, revocable) and one
appointment's .ics for staff of its clinic. Feeds may end up on a phone: first names only."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from scheduling import services
from scheduling.choices import AppointmentStatus
from tests.clinic.factories import ProfessionalFactory, RoomFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

S = AppointmentStatus


def feed_url(feed) -> str:
    return reverse("scheduling:calendar_feed", args=[feed.token])


def ics_url(appointment) -> str:
    return reverse("scheduling:appointment_ics", args=[appointment.pk])


def parse(response) -> Calendar:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def events(calendar: Calendar) -> dict[str, object]:
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


def at(days: float, hour: int = 13) -> datetime:
    """A moment ``days`` from today, on the hour (UTC)."""
    day = timezone.now().astimezone(UTC) + timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
def professional(clinic_a):
    return ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")


@pytest.fixture
def agenda(clinic_a, patient_a, professional):
    """Clinic A's agenda for Dra. Helena: what the feed shows and what it must not."""
    room = RoomFactory(clinic=clinic_a, name="Sala 3")
    service = ServiceFactory(clinic=clinic_a, name="Fisioterapia", professionals=[professional])

    def appointment(start, **kwargs):
        defaults = {"service": service, "professional": professional, "patient": patient_a}
        return AppointmentFactory(start=start, **{**defaults, **kwargs})

    return {
        "tentative": appointment(
            at(2),
            room=room,
            internal_notes="Paciente relata dor lombar crônica",
            notes="Trazer exames",
        ),
        "confirmed": appointment(at(3), status=S.CONFIRMED),
        "recent_past": appointment(at(-29), status=S.COMPLETED),
        "cancelled": appointment(at(4), status=S.CANCELLED),
        "no_show": appointment(at(-2), status=S.NO_SHOW),
        "too_old": appointment(at(-31)),
        "too_far": appointment(at(181)),
        "colleague": AppointmentFactory(
            start=at(2), service=service, professional=ProfessionalFactory(clinic=clinic_a)
        ),
    }


@pytest.fixture
def feed(professional):
    return services.calendar_feed_rotate(professional=professional)


def test_the_feed_lists_the_professionals_occupying_appointments_in_the_window(
    agenda, feed, client
):
    found = events(parse(client.get(feed_url(feed))))
    wanted = {agenda[name].pk for name in ("tentative", "confirmed", "recent_past")}
    assert found.keys() == {f"appointment-{pk}@cuidar.agenda" for pk in wanted}


def test_events_carry_local_times_service_first_name_room_and_status(agenda, feed, client):
    response = client.get(feed_url(feed))
    found = events(parse(response))
    tentative = agenda["tentative"]
    event = found[f"appointment-{tentative.pk}@cuidar.agenda"]
    assert event.decoded("dtstart") == tentative.start
    assert str(event["dtstart"].params["TZID"]) == feed.clinic.time_zone
    assert event.decoded("dtend") == tentative.end
    assert str(event["summary"]) == "Fisioterapia — Maria"
    assert str(event["location"]) == "Sala 3"
    assert str(event["status"]) == "TENTATIVE"
    confirmed = found[f"appointment-{agenda['confirmed'].pk}@cuidar.agenda"]
    assert str(confirmed["status"]) == "CONFIRMED"
    assert "location" not in confirmed
    raw = response.content.decode()
    local = tentative.start.astimezone(ZoneInfo(feed.clinic.time_zone))
    assert f"DTSTART;TZID={feed.clinic.time_zone}:{local:%Y%m%dT%H%M%S}\r\n" in raw
    assert "BEGIN:VTIMEZONE" in raw


def test_the_feed_leaks_no_cpf_surname_or_notes(agenda, feed, patient_a, client):
    raw = client.get(feed_url(feed)).content.decode()
    assert "Maria" in raw
    for secret in (
        patient_a.cpf,
        patient_a.cpf_formatted,
        "José",
        "Araújo",
        patient_a.phone,
        "lombar",
        "Trazer exames",
    ):
        assert secret not in raw, secret


def test_the_feed_uses_the_social_name(agenda, feed, patient_a, client):
    patient_a.social_name = "Joana Araújo"
    patient_a.save()
    raw = client.get(feed_url(feed)).content.decode()
    assert "Fisioterapia — Joana" in raw
    assert "Maria" not in raw


def test_uids_are_stable_between_fetches(agenda, feed, client):
    first = events(parse(client.get(feed_url(feed))))
    services.appointment_confirm(appointment=agenda["tentative"])
    second = events(parse(client.get(feed_url(feed))))
    assert first.keys() == second.keys()
    uid = f"appointment-{agenda['tentative'].pk}@cuidar.agenda"
    assert str(second[uid]["status"]) == "CONFIRMED"


def test_an_unknown_token_is_not_found(agenda, feed, client):
    response = client.get(reverse("scheduling:calendar_feed", args=["x" * 43]))
    assert response.status_code == 404


def test_a_rotated_token_is_not_found_and_the_new_one_works(agenda, feed, professional, client):
    old = feed_url(feed)
    assert client.get(old).status_code == 200
    new = services.calendar_feed_rotate(professional=professional)
    assert client.get(old).status_code == 404
    assert len(events(parse(client.get(feed_url(new))))) == 3


def test_the_feed_is_not_cached_by_shared_caches(agenda, feed, client):
    response = client.get(feed_url(feed))
    assert "no-store" in response["Cache-Control"]


def test_the_feed_runs_two_queries_whatever_its_size(
    clinic_a, patient_a, professional, feed, client, django_assert_num_queries
):
    service = ServiceFactory(clinic=clinic_a, professionals=[professional])
    for day in range(1, 21):
        AppointmentFactory(
            start=at(day),
            service=service,
            professional=professional,
            patient=patient_a,
            room=RoomFactory(clinic=clinic_a),
        )
    with django_assert_num_queries(2):
        calendar = parse(client.get(feed_url(feed)))
    assert len(events(calendar)) == 20


# --- One appointment, for staff -------------------------------------------------------------
def _can_view_appointments(user):
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="scheduling", codename="view_appointment")
    )
    return user


def test_staff_download_one_appointment(agenda, receptionist_a, client_for):
    appointment = agenda["cancelled"]
    response = client_for(_can_view_appointments(receptionist_a)).get(ics_url(appointment))
    (event,) = parse(response).walk("VEVENT")
    assert "attachment" in response["Content-Disposition"]
    assert str(event["uid"]) == f"appointment-{appointment.pk}@cuidar.agenda"
    assert event.decoded("dtstart") == appointment.start
    assert str(event["status"]) == "CANCELLED"
    # Written in the clinic's local time, with the clinic's time-zone definition.
    zone = appointment.clinic.time_zone
    assert str(event["dtstart"].params["TZID"]) == zone
    local = appointment.start.astimezone(ZoneInfo(zone))
    raw = response.content.decode()
    assert f"DTSTART;TZID={zone}:{local:%Y%m%dT%H%M%S}\r\n" in raw
    (vtimezone,) = parse(response).walk("VTIMEZONE")
    assert str(vtimezone["tzid"]) == zone
    assert "52998224725" not in response.content.decode()


def test_the_download_needs_a_staff_sign_in(agenda):
    response = Client().get(ics_url(agenda["tentative"]))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_download_needs_permission_to_view_appointments(agenda, receptionist_a, client_for):
    receptionist_a.user_permissions.clear()
    receptionist_a.groups.clear()
    response = client_for(receptionist_a).get(ics_url(agenda["tentative"]))
    assert response.status_code == 403
