"""Every time the agenda offers books: on random agendas (several professionals and
services with their own durations and buffers, hours on odd minutes, rooms, time off,
appointments in several statuses, a slot grid that is not the grid of the rows), each free
cell of the day and of the week views is booked, with every service it says fits there,
through ``appointment_book`` with the published-slot check, and none is refused."""

from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clinic.models import Professional, Room
from scheduling import services
from scheduling.choices import AppointmentStatus
from scheduling.exceptions import SchedulingError
from scheduling.models import Service, TimeOff, WorkingHours
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import ServiceFactory

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)  # no holiday that week
DAY = reverse("admin:scheduling_agenda")
WEEK = reverse("admin:scheduling_agenda_week")
S = AppointmentStatus

five_minutes = st.integers(0, 11).map(lambda n: n * 5)


@st.composite
def agendas(draw):
    professionals = draw(st.integers(1, 3))
    rooms = draw(st.integers(0, 2))
    service = st.fixed_dictionaries(
        {
            "duration": st.sampled_from([15, 20, 30, 45, 50, 60]),
            "before": st.sampled_from([0, 0, 5, 10]),
            "after": st.sampled_from([0, 5, 10, 15]),
            "performers": st.sets(st.integers(0, professionals - 1), min_size=1),
            "room": st.none() if rooms == 0 else st.one_of(st.none(), st.integers(0, rooms - 1)),
        }
    )
    hours = st.fixed_dictionaries(
        {
            "professional": st.integers(0, professionals - 1),
            "weekday": st.integers(0, 1),
            "start": st.integers(7, 14).flatmap(lambda h: five_minutes.map(lambda m: h * 60 + m)),
            "length": st.integers(6, 48).map(lambda n: n * 10),
            "room": st.none() if rooms == 0 else st.one_of(st.none(), st.integers(0, rooms - 1)),
        }
    )
    appointment = st.fixed_dictionaries(
        {
            "service": st.integers(0, 2),
            "professional": st.integers(0, professionals - 1),
            "day": st.integers(0, 1),
            "start": st.integers(7, 19).flatmap(lambda h: five_minutes.map(lambda m: h * 60 + m)),
            "status": st.sampled_from([S.SCHEDULED, S.CONFIRMED, S.CANCELLED, S.COMPLETED]),
        }
    )
    time_off = st.fixed_dictionaries(
        {
            "professional": st.integers(0, professionals - 1),
            "start": st.integers(8, 16).map(lambda h: h * 60),
            "length": st.integers(1, 12).map(lambda n: n * 15),
        }
    )
    return SimpleNamespace(
        step=draw(st.sampled_from([5, 10, 15, 20, 30])),
        professionals=professionals,
        rooms=rooms,
        services=draw(st.lists(service, min_size=1, max_size=3)),
        hours=draw(st.lists(hours, min_size=1, max_size=4)),
        appointments=draw(st.lists(appointment, max_size=8)),
        time_off=draw(st.lists(time_off, max_size=1)),
        # The morning of the Monday (part of it is past) or the Sunday before.
        now=draw(st.integers(-12 * 60, 11 * 60)),
    )


def at(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SP) + timedelta(minutes=minutes)


def build(clinic, agenda):
    clinic.settings = {"scheduling": {"slot_step_minutes": agenda.step}}
    clinic.save(update_fields=["settings"])
    team = [ProfessionalFactory(clinic=clinic) for _ in range(agenda.professionals)]
    rooms = [RoomFactory(clinic=clinic) for _ in range(agenda.rooms)]
    catalogue = []
    for drawn in agenda.services:
        catalogue.append(
            ServiceFactory(
                clinic=clinic,
                duration_minutes=drawn["duration"],
                buffer_before_minutes=drawn["before"],
                buffer_after_minutes=drawn["after"],
                professionals=[team[i] for i in drawn["performers"]],
                rooms=[] if drawn["room"] is None else [rooms[drawn["room"]]],
            )
        )
    for h in agenda.hours:
        end = min(h["start"] + h["length"], 23 * 60)
        WorkingHours.objects.create(
            clinic=clinic,
            professional=team[h["professional"]],
            weekday=h["weekday"],
            start_time=time(h["start"] // 60, h["start"] % 60),
            end_time=time(end // 60, end % 60),
            room=None if h["room"] is None else rooms[h["room"]],
        )
    for t in agenda.time_off:
        TimeOff.objects.create(
            clinic=clinic,
            professional=team[t["professional"]],
            start=at(MONDAY, t["start"]),
            end=at(MONDAY, t["start"] + t["length"]),
        )
    for a in agenda.appointments:
        service = catalogue[a["service"] % len(catalogue)]
        try:  # as reception books, squeezing in where it fits (or not at all)
            booked = services.appointment_book(
                clinic=clinic,
                patient=PatientFactory(clinic=clinic),
                professional=team[a["professional"]],
                service=service,
                start=at(MONDAY + timedelta(days=a["day"]), a["start"]),
            )
        except SchedulingError:
            continue
        booked.status = a["status"]
        booked.save(update_fields=["status"])
    return team


def offered_cells(client, team):
    """Every free cell of the Monday (by professional and by room) and of each week."""
    pages = [
        client.get(DAY, {"date": MONDAY.isoformat()}),
        client.get(DAY, {"date": MONDAY.isoformat(), "by": "room"}),
        *(client.get(WEEK, {"professional": p.pk, "date": MONDAY.isoformat()}) for p in team),
    ]
    for page in pages:
        assert page.status_code == 200
        for row in page.context["rows"]:
            for cell in row.cells:
                if cell is not None and cell.kind == "free":
                    yield cell


@pytest.fixture
def reception(receptionist_a, client_for):
    receptionist_a.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="scheduling",
            codename__in=("view_appointment", "add_appointment", "change_appointment"),
        )
    )
    return client_for(receptionist_a)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(agenda=agendas())
def test_every_time_the_agenda_offers_books(clinic_a, reception, agenda):
    with transaction.atomic(), time_machine.travel(at(MONDAY, agenda.now), tick=False):
        team = build(clinic_a, agenda)
        patient = PatientFactory(clinic=clinic_a)
        tried = 0
        for cell in offered_cells(reception, team):
            query = parse_qs(urlsplit(cell.book_url).query)
            offered = cell.offered
            assert query["start"] == [offered.start.strftime("%Y-%m-%dT%H:%M")]
            assert query["professional"] == [str(offered.professional_id)]
            for service_id in offered.service_ids:
                with transaction.atomic():  # each booking alone on the agenda drawn
                    services.appointment_book(
                        clinic=clinic_a,
                        patient=patient,
                        professional=Professional.objects.get(pk=offered.professional_id),
                        service=Service.objects.get(pk=service_id),
                        start=offered.start,
                        room=None
                        if offered.room_id is None
                        else Room.objects.get(pk=offered.room_id),
                        check_availability=True,
                    )
                    tried += 1
                    transaction.set_rollback(True)
        event(f"bookings tried: {min(tried, 40) // 10 * 10}+")
        transaction.set_rollback(True)
