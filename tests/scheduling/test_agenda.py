"""The receptionist's agenda: the day and week views, one-click status changes and
rescheduling to a free slot (scheduling/admin/agenda.py)."""

from datetime import date, datetime, time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.contrib.messages.constants import ERROR, SUCCESS
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import (
    AppointmentFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

pytestmark = pytest.mark.django_db

S = AppointmentStatus
SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)
DAY = reverse("admin:scheduling_agenda")
WEEK = reverse("admin:scheduling_agenda_week")
ALL_APPOINTMENT_PERMS = ("view_appointment", "add_appointment", "change_appointment")


def at(hour, minute=0, day=MONDAY, zone=SP):
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="scheduling", codename__in=codenames)
    )
    return user


def bare(user):
    """The user without their role's permissions (roles.py may grant scheduling ones)."""
    user.groups.clear()
    return user


def transition_url(appointment, action):
    return reverse("admin:scheduling_appointment_transition", args=[appointment.pk, action])


def levels(response):
    return [m.level for m in get_messages(response.wsgi_request)]


@pytest.fixture
def desk(clinic_a):
    """Clinic A: Helena works Monday mornings, Igor Monday afternoons, one room, a
    30-minute consultation both perform."""
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")
    igor = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Igor Lima")
    room = RoomFactory(clinic=clinic_a, name="Consultório 1")
    service = ServiceFactory(clinic=clinic_a, name="Consulta", professionals=[helena, igor])
    WorkingHoursFactory(professional=helena)  # Mondays 08:00–12:00
    WorkingHoursFactory(professional=igor, start_time=time(13), end_time=time(17), room=room)
    return SimpleNamespace(clinic=clinic_a, helena=helena, igor=igor, room=room, service=service)


def appointment(desk, start, **kw):
    kw.setdefault("professional", desk.helena)
    return AppointmentFactory(service=desk.service, start=start, **kw)


@pytest.fixture
def reception(receptionist_a, client_for):
    return client_for(grant(receptionist_a, *ALL_APPOINTMENT_PERMS))


def day_view(client, **params):
    return client.get(DAY, {"date": MONDAY.isoformat(), **params})


def cards(response):
    """(column label, row label, patient) of every appointment in the grid."""
    found = []
    for row in response.context["rows"]:
        for column, cell in zip(response.context["columns"], row.cells, strict=True):
            if cell is not None and cell.kind == "busy":
                found += [(column.label, row.label, i.appointment.patient) for i in cell.items]
    return found


# --- Day view -------------------------------------------------------------------------------
def test_the_day_shows_one_column_per_working_professional_with_their_appointments(desk, reception):
    morning = appointment(desk, at(9))
    afternoon = appointment(desk, at(14), professional=desk.igor)
    ProfessionalFactory(clinic=desk.clinic, full_name="Dr. Sem Agenda")  # no hours that day

    response = day_view(reception)

    assert response.status_code == 200
    assert [c.label for c in response.context["columns"]] == ["Dr. Igor Lima", "Dra. Helena Prado"]
    assert sorted(cards(response), key=lambda c: c[1]) == [
        ("Dra. Helena Prado", "09:00", morning.patient),
        ("Dr. Igor Lima", "14:00", afternoon.patient),
    ]
    assert morning.patient.display_name in response.content.decode()
    assert "Consulta" in response.content.decode()


def test_rows_run_from_the_earliest_working_hour_to_the_latest(desk, reception):
    response = day_view(reception)

    labels = [r.label for r in response.context["rows"]]
    assert labels[0] == "08:00"
    assert labels[-1] == "16:45"  # Igor works until 17:00, rows of 15 minutes


def test_appointments_are_placed_in_the_clinics_time_zone(desk, reception):
    desk.clinic.time_zone = "America/Manaus"  # UTC-4, an hour behind São Paulo
    desk.clinic.save(update_fields=["time_zone"])
    booked = appointment(desk, at(10, zone=ZoneInfo("America/Manaus")))

    response = day_view(reception)

    assert cards(response) == [("Dra. Helena Prado", "10:00", booked.patient)]


def test_an_appointment_spans_the_rows_it_lasts(desk, reception):
    long = ServiceFactory(clinic=desk.clinic, duration_minutes=60, professionals=[desk.helena])
    AppointmentFactory(service=long, professional=desk.helena, start=at(9))

    response = day_view(reception)

    busy = [c for r in response.context["rows"] for c in r.cells if c and c.kind == "busy"]
    assert [c.rowspan for c in busy] == [4]


def test_it_flags_first_visits_and_unconfirmed_appointments(desk, reception):
    returning = PatientFactory(clinic=desk.clinic)
    appointment(desk, at(9, day=date(2026, 2, 23)), patient=returning, status=S.COMPLETED)
    back = appointment(desk, at(9), patient=returning, status=S.CONFIRMED)
    new = appointment(desk, at(10))

    response = day_view(reception)

    items = {
        i.appointment.pk: i
        for r in response.context["rows"]
        for c in r.cells
        if c and c.kind == "busy"
        for i in c.items
    }
    assert (items[new.pk].first_visit, items[new.pk].unconfirmed) == (True, True)
    assert (items[back.pk].first_visit, items[back.pk].unconfirmed) == (False, False)


@time_machine.travel(at(7), tick=False)
def test_free_working_slots_link_to_the_add_form_prefilled(desk, reception):
    appointment(desk, at(8))

    response = day_view(reception)

    helena = [c.label for c in response.context["columns"]].index("Dra. Helena Prado")
    row = next(r for r in response.context["rows"] if r.label == "09:00")
    cell = row.cells[helena]
    assert cell.kind == "free"
    query = parse_qs(urlsplit(cell.book_url).query)
    assert query == {
        "professional": [str(desk.helena.pk)],
        "start": ["2026-03-02T09:00"],
        "service": [str(desk.service.pk)],  # the one service that fits there
    }
    form = reception.get(cell.book_url).context["adminform"].form
    assert str(form.initial["professional"]) == str(desk.helena.pk)
    assert form.initial["start"] == at(9)


@time_machine.travel(at(7), tick=False)
def test_a_free_slot_in_hours_tied_to_a_room_prefills_the_room(desk, reception):
    response = day_view(reception)

    igor = [c.label for c in response.context["columns"]].index("Dr. Igor Lima")
    cell = next(r for r in response.context["rows"] if r.label == "14:00").cells[igor]
    query = parse_qs(urlsplit(cell.book_url).query)
    assert query["room"] == [str(desk.room.pk)]


@pytest.mark.parametrize("asked", ["", "not-a-date", "9999-12-31"])
@time_machine.travel(at(7), tick=False)
def test_a_missing_or_odd_date_shows_today(desk, reception, asked):
    response = reception.get(DAY, {"date": asked})

    assert response.status_code == 200
    assert response.context["day"] == MONDAY


@time_machine.travel(at(7), tick=False)
def test_time_off_and_hours_outside_work_are_not_bookable(desk, reception):
    TimeOffFactory(professional=desk.helena, start=at(10), end=at(11), reason="Curso")

    response = day_view(reception)

    helena = [c.label for c in response.context["columns"]].index("Dra. Helena Prado")
    kinds = {r.label: r.cells[helena].kind for r in response.context["rows"]}
    # 09:45 is working time, but a 30-minute consultation would run into the course.
    assert [kinds[t] for t in ("09:30", "09:45", "10:00", "10:45", "11:00")] == [
        "free",
        "full",
        "off",
        "off",
        "free",
    ]
    assert kinds["13:00"] == "closed"


def kinds_of(response, column_label):
    index = [c.label for c in response.context["columns"]].index(column_label)
    # A row covered by an appointment above it has no cell of its own: "busy" too.
    return {
        r.label: r.cells[index].kind if r.cells[index] else "busy" for r in response.context["rows"]
    }


@time_machine.travel(at(7), tick=False)
def test_the_time_after_an_appointment_stays_busy_for_its_buffer(desk, reception):
    desk.service.buffer_after_minutes = 10
    desk.service.save()
    appointment(desk, at(8))  # 08:00–08:30, the professional busy until 08:40

    kinds = kinds_of(day_view(reception), "Dra. Helena Prado")

    assert (kinds["08:00"], kinds["08:30"], kinds["08:45"]) == ("busy", "full", "free")


@time_machine.travel(at(7), tick=False)
def test_the_time_before_an_appointment_is_free_only_if_a_service_fits(desk, reception):
    appointment(desk, at(9))  # the only service lasts 30 minutes

    kinds = kinds_of(day_view(reception), "Dra. Helena Prado")

    assert (kinds["08:30"], kinds["08:45"], kinds["09:00"]) == ("free", "full", "busy")


@time_machine.travel(at(10, 5), tick=False)
def test_the_past_is_not_offered(desk, reception):
    kinds = kinds_of(day_view(reception), "Dra. Helena Prado")

    assert (kinds["09:45"], kinds["10:00"], kinds["10:15"]) == ("full", "full", "free")


@time_machine.travel(at(7, day=date(2026, 4, 21)), tick=False)
def test_a_national_holiday_is_closed_and_named(desk, reception):
    WorkingHoursFactory(professional=desk.helena, weekday=1)  # Tuesdays too

    response = day_view(reception, date="2026-04-21")  # Tiradentes

    assert response.context["closed"] == "Tiradentes"
    kinds = kinds_of(response, "Dra. Helena Prado")
    assert set(kinds.values()) == {"closed"}


@time_machine.travel(at(7), tick=False)
def test_a_free_time_off_the_rows_grid_links_to_the_time_that_books(desk, reception):
    desk.helena.working_hours.update(start_time=time(8, 10))  # slots at 08:10, 08:25 …

    response = day_view(reception)

    row = next(r for r in response.context["rows"] if r.label == "08:15")
    helena = [c.label for c in response.context["columns"]].index("Dra. Helena Prado")
    query = parse_qs(urlsplit(row.cells[helena].book_url).query)
    assert query["start"] == ["2026-03-02T08:25"]


def test_the_day_by_room_has_one_column_per_room(desk, reception):
    in_room = appointment(desk, at(14), professional=desk.igor, room=desk.room)

    response = day_view(reception, by="room")

    assert [c.label for c in response.context["columns"]] == ["Consultório 1"]
    assert cards(response) == [("Consultório 1", "14:00", in_room.patient)]


def test_cancelled_appointments_leave_their_time_free(desk, reception):
    cancelled = appointment(desk, at(9), status=S.CANCELLED)

    response = day_view(reception)

    assert cards(response) == []
    assert [i.appointment for i in response.context["off_grid"]] == [cancelled]


def _many(desk, count):
    """``count`` appointments on Monday, spread over ten professionals (no overlaps)."""
    team = [desk.helena, *ProfessionalFactory.create_batch(9, clinic=desk.clinic)]
    desk.service.professionals.add(*team)
    for n in range(count):
        AppointmentFactory(
            service=desk.service,
            professional=team[n % 10],
            room=desk.room if n % 10 == 0 else None,
            start=at(8 + n // 10),
            status=[S.SCHEDULED, S.CONFIRMED, S.COMPLETED][n % 3],
        )


@pytest.mark.parametrize("by", ["professional", "room"])
def test_the_day_runs_the_same_queries_for_5_and_for_50_appointments(desk, reception, by):
    _many(desk, 5)
    day_view(reception, by=by)  # warm the session and the permission cache
    with CaptureQueriesContext(connection) as few:
        assert len(cards(day_view(reception, by=by))) in (1, 5)
    Appointment.objects.all().delete()
    _many(desk, 50)
    with CaptureQueriesContext(connection) as many:
        assert len(cards(day_view(reception, by=by))) in (5, 50)

    assert len(many) == len(few)


def test_a_superuser_viewing_all_clinics_is_asked_to_choose_one(superuser, client_for):
    response = client_for(superuser).get(DAY)

    assert response.status_code == 302
    assert response.url == reverse("admin:index")


def test_staff_without_the_view_permission_cannot_open_the_agenda(receptionist_a, client_for):
    assert client_for(bare(receptionist_a)).get(DAY).status_code == 403


# --- Week view ------------------------------------------------------------------------------
def test_the_week_shows_one_professionals_days(desk, reception):
    monday = appointment(desk, at(9))
    next_day = appointment(desk, at(9, day=date(2026, 3, 3)))
    appointment(desk, at(14), professional=desk.igor)  # someone else's

    response = reception.get(WEEK, {"professional": desk.helena.pk, "date": "2026-03-04"})

    assert response.status_code == 200
    columns = response.context["columns"]
    assert [c.day for c in columns] == [date(2026, 3, d) for d in range(2, 7)]  # Mon–Fri
    assert [i.appointment for c in columns for i in c.items] == [monday, next_day]


# --- One-click status changes ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "action", "expected", "recorded"),
    [
        (S.SCHEDULED, "confirm", S.CONFIRMED, "confirmed_at"),
        (S.CONFIRMED, "check_in", S.ARRIVED, "arrived_at"),
        (S.ARRIVED, "start", S.IN_PROGRESS, "started_at"),
        (S.IN_PROGRESS, "complete", S.COMPLETED, "completed_at"),
        (S.SCHEDULED, "no_show", S.NO_SHOW, "no_show_at"),
        (S.CONFIRMED, "cancel", S.CANCELLED, "cancelled_at"),
    ],
)
def test_each_button_moves_the_status_through_the_service(
    desk, reception, status, action, expected, recorded
):
    booked = appointment(desk, at(9), status=status)
    back = f"{DAY}?date=2026-03-02"

    response = reception.post(transition_url(booked, action), {"next": back, "reason": "Gripe"})

    assert response.status_code == 302
    assert response.url == back
    assert levels(response) == [SUCCESS]
    booked.refresh_from_db()
    assert booked.status == expected
    assert getattr(booked, recorded) is not None  # set by the service, not by the view


def test_a_cancellation_keeps_the_reason_and_who_cancelled(desk, reception, receptionist_a):
    booked = appointment(desk, at(9))

    reception.post(transition_url(booked, "cancel"), {"reason": "Viagem"})

    booked.refresh_from_db()
    assert (booked.status, booked.cancellation_reason) == (S.CANCELLED, "Viagem")
    assert booked.cancelled_by == receptionist_a


def test_an_illegal_change_is_refused_with_a_message(desk, reception):
    done = appointment(desk, at(9), status=S.COMPLETED)

    response = reception.post(transition_url(done, "confirm"))

    assert response.status_code == 302
    assert levels(response) == [ERROR]
    done.refresh_from_db()
    assert done.status == S.COMPLETED


def test_only_the_changes_the_status_machine_allows_are_offered(desk, reception):
    scheduled = appointment(desk, at(9))
    in_progress = appointment(desk, at(10), status=S.IN_PROGRESS)

    response = day_view(reception)

    offered = {
        i.appointment.pk: ([a.name for a in i.actions], i.reschedule)
        for r in response.context["rows"]
        for c in r.cells
        if c and c.kind == "busy"
        for i in c.items
    }
    assert offered[scheduled.pk] == (["confirm", "check_in", "no_show", "cancel"], True)
    assert offered[in_progress.pk] == (["complete"], False)
    page = response.content.decode()
    assert transition_url(scheduled, "confirm") in page
    assert transition_url(in_progress, "confirm") not in page


def test_the_buttons_need_a_post_and_the_change_permission(desk, receptionist_a, client_for):
    booked = appointment(desk, at(9))
    viewer = client_for(grant(bare(receptionist_a), "view_appointment"))

    assert viewer.get(transition_url(booked, "confirm")).status_code == 405
    assert viewer.post(transition_url(booked, "confirm")).status_code == 403
    assert transition_url(booked, "confirm") not in day_view(viewer).content.decode()
    booked.refresh_from_db()
    assert booked.status == S.SCHEDULED


def test_an_unknown_action_is_not_found(desk, reception):
    booked = appointment(desk, at(9))

    assert reception.post(transition_url(booked, "delete")).status_code == 404


# --- Reschedule -----------------------------------------------------------------------------
@time_machine.travel(at(7, day=date(2026, 3, 1)), tick=False)  # Sunday before
def test_reschedule_lists_free_slots_of_the_next_14_days(desk, reception):
    booked = appointment(desk, at(9))
    url = reverse("admin:scheduling_appointment_reschedule", args=[booked.pk])

    response = reception.get(url)

    assert response.status_code == 200
    days = dict(response.context["days"])
    assert list(days) == [date(2026, 3, 2), date(2026, 3, 9)]  # Helena's two Mondays
    starts = [s["start"] for s in days[date(2026, 3, 2)]]
    assert at(8) in starts and at(9) not in starts  # her own slot is taken


@time_machine.travel(at(7, day=date(2026, 3, 1)), tick=False)
def test_picking_a_free_slot_reschedules_through_the_service(desk, reception, receptionist_a):
    booked = appointment(desk, at(9))
    url = reverse("admin:scheduling_appointment_reschedule", args=[booked.pk])
    new_start = at(10, day=date(2026, 3, 9))

    response = reception.post(
        url, {"start": new_start.isoformat(), "professional": desk.helena.pk, "room": ""}
    )

    assert response.status_code == 302
    assert levels(response) == [SUCCESS]
    booked.refresh_from_db()
    assert booked.status == S.RESCHEDULED
    new = booked.replaced_by
    assert (new.start, new.professional, new.status) == (new_start, desk.helena, S.SCHEDULED)
    assert new.booked_by == receptionist_a
    assert response.url == f"{DAY}?date=2026-03-09"


@time_machine.travel(at(7, day=date(2026, 3, 1)), tick=False)
def test_rescheduling_to_a_taken_slot_is_refused_and_changes_nothing(desk, reception):
    booked = appointment(desk, at(9))
    appointment(desk, at(10))  # the slot asked for
    url = reverse("admin:scheduling_appointment_reschedule", args=[booked.pk])

    response = reception.post(
        url, {"start": at(10).isoformat(), "professional": desk.helena.pk, "room": ""}
    )

    assert levels(response) == [ERROR]
    booked.refresh_from_db()
    assert booked.status == S.SCHEDULED
    assert Appointment.objects.count() == 2


def test_a_finished_appointment_cannot_be_rescheduled(desk, reception):
    done = appointment(desk, at(9), status=S.COMPLETED)
    url = reverse("admin:scheduling_appointment_reschedule", args=[done.pk])

    response = reception.get(url)

    assert response.status_code == 302
    assert levels(response) == [ERROR]


# --- Links ----------------------------------------------------------------------------------
def test_the_dashboard_and_the_changelist_link_to_todays_agenda(clinic_a, reception):
    index = reception.get(reverse("admin:index")).content.decode()
    changelist = reception.get(reverse("admin:scheduling_appointment_changelist"))

    checkin = reverse("admin:scheduling_checkin")
    # The home leads to the calendar (issue 21); the changelist keeps the day's table.
    calendar = reverse("admin:scheduling_calendar")
    assert f'href="{calendar}"' in index and f'href="{checkin}"' in index
    assert f'href="{DAY}"' in changelist.content.decode()
    assert f'href="{checkin}"' in changelist.content.decode()


def test_the_dashboard_has_no_agenda_link_without_the_permission(receptionist_a, client_for):
    index = client_for(bare(receptionist_a)).get(reverse("admin:index")).content.decode()

    assert f'href="{DAY}"' not in index
    assert reverse("admin:scheduling_calendar") not in index
