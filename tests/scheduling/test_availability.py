"""Availability: the free slots a receptionist is offered, case by case."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling.agenda_setup import agenda_setup
from scheduling.availability import Slot, slot_list_available
from scheduling.choices import AppointmentStatus, Weekday
from tests.clinic.factories import ClinicFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import (
    AppointmentFactory,
    ClinicClosureFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=SP)  # the Sunday before: everything is ahead


def local(day, hour, minute=0, tz=SP):
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def whole_day(day, tz=SP):
    return {"start": local(day, 0, tz=tz), "end": local(day + timedelta(days=1), 0, tz=tz)}


def times(slots, tz=SP):
    """Slot starts as the receptionist reads them: local "HH:MM"."""
    return [f"{slot.start.astimezone(tz):%H:%M}" for slot in slots]


def grid(first, last, step=15):
    """Every "HH:MM" from first to last (inclusive) every ``step`` minutes."""
    start = datetime.strptime(first, "%H:%M")
    count = int((datetime.strptime(last, "%H:%M") - start).total_seconds() // 60 // step)
    return [f"{start + timedelta(minutes=step * n):%H:%M}" for n in range(count + 1)]


@pytest.fixture
def helena(clinic_a):
    """Dra. Helena works on Mondays 08:00–12:00 and 13:00–18:00 (lunch in between)."""
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena")
    WorkingHoursFactory(professional=professional, start_time=time(8), end_time=time(12))
    WorkingHoursFactory(professional=professional, start_time=time(13), end_time=time(18))
    return professional


@pytest.fixture
def consulta(clinic_a, helena):
    """A 30-minute consultation performed by Dra. Helena."""
    return ServiceFactory(clinic=clinic_a, name="Consulta", professionals=[helena])


def available(clinic, service, *, day=MONDAY, now=NOW, **kwargs):
    return slot_list_available(clinic=clinic, service=service, now=now, **whole_day(day), **kwargs)


# --- Hours, lunch, buffers -------------------------------------------------------------------


def test_it_offers_the_morning_and_the_afternoon_but_not_the_lunch_break(clinic_a, consulta):
    slots = available(clinic_a, consulta)

    assert times(slots) == grid("08:00", "11:30") + grid("13:00", "17:30")
    assert all(isinstance(slot, Slot) for slot in slots)
    assert slots[0].start == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert slots[0].end == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
    assert slots[0].start.utcoffset() == timedelta(0)


def test_a_slot_never_straddles_two_intervals_even_when_they_touch(clinic_a, helena, consulta):
    WorkingHoursFactory(professional=helena, start_time=time(12), end_time=time(12, 20))

    assert "11:45" not in times(available(clinic_a, consulta))
    assert "12:00" not in times(available(clinic_a, consulta))


def test_overlapping_hours_offer_each_time_once(clinic_a, helena, consulta):
    WorkingHoursFactory(professional=helena, start_time=time(10), end_time=time(12, 30))

    morning = times(available(clinic_a, consulta))

    assert morning.count("10:00") == 1
    assert "12:00" in morning  # the longer interval allows it


def test_it_offers_nothing_on_days_without_hours(clinic_a, consulta):
    assert available(clinic_a, consulta, day=MONDAY + timedelta(days=1)) == []


def test_the_grid_follows_the_clinic_step_from_the_start_of_each_interval(
    clinic_a, helena, consulta
):
    clinic_a.settings = {"scheduling": {"slot_step_minutes": 20}}
    clinic_a.save(update_fields=["settings"])
    WorkingHoursFactory(
        professional=helena, weekday=Weekday.TUESDAY, start_time=time(8, 10), end_time=time(9)
    )

    assert times(available(clinic_a, consulta))[:4] == ["08:00", "08:20", "08:40", "09:00"]
    assert times(available(clinic_a, consulta, day=MONDAY + timedelta(days=1))) == [
        "08:10",
        "08:30",
    ]


def test_buffers_keep_the_edges_of_the_hours_free(clinic_a, consulta):
    consulta.buffer_before_minutes = 10  # preparing the room
    consulta.buffer_after_minutes = 10  # cleaning
    consulta.save()

    slots = times(available(clinic_a, consulta))

    assert slots[0] == "08:15"  # 08:00 would occupy from 07:50
    assert slots[slots.index("13:15") - 1] == "11:15"  # 11:30 would occupy until 12:10
    assert slots[-1] == "17:15"


def test_back_to_back_appointments_leave_the_neighbours_free(clinic_a, helena, consulta):
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 9))

    morning = times(available(clinic_a, consulta))

    assert "08:30" in morning  # ends at 09:00 sharp
    assert "09:30" in morning  # starts as the other ends
    assert not {"08:45", "09:00", "09:15"} & set(morning)


def test_an_appointment_under_way_when_the_search_starts_still_counts(clinic_a, helena, consulta):
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 9))

    slots = slot_list_available(
        clinic=clinic_a,
        service=consulta,
        now=NOW,
        start=local(MONDAY, 9, 10),
        end=local(MONDAY, 10),
    )

    assert times(slots) == ["09:30", "09:45"]


def test_a_squeezed_in_appointment_at_an_odd_minute_blocks_the_buffer(clinic_a, helena, consulta):
    consulta.buffer_before_minutes = 10
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 8, 51))

    slots = slot_list_available(
        clinic=clinic_a,
        service=consulta,
        now=NOW,
        start=local(MONDAY, 9, 30),
        end=local(MONDAY, 10),
    )

    assert times(slots) == ["09:45"]  # 09:30 would occupy from 09:20; she is busy until 09:21


def test_a_room_taken_when_the_search_starts_still_counts(clinic_a, helena, consulta, rooms):
    sala_1, sala_2 = rooms
    AppointmentFactory(service=consulta, room=sala_1, start=local(MONDAY, 8, 45))

    slots = slot_list_available(
        clinic=clinic_a,
        service=consulta,
        now=NOW,
        start=local(MONDAY, 9),
        end=local(MONDAY, 9, 30),
    )

    assert [(times([slot])[0], slot.room_id) for slot in slots] == [
        ("09:00", sala_2.pk),
        ("09:15", sala_1.pk),
    ]


def test_the_buffers_of_a_booked_appointment_are_respected(clinic_a, helena, consulta):
    exam = ServiceFactory(clinic=clinic_a, buffer_before_minutes=15, buffer_after_minutes=15)
    AppointmentFactory(service=exam, professional=helena, start=local(MONDAY, 10))

    morning = times(available(clinic_a, consulta))

    assert "09:15" in morning and "10:45" in morning  # 09:15–09:45 and 10:45– are free
    assert not {"09:30", "10:00", "10:30"} & set(morning)


def test_a_cancelled_appointment_frees_its_slot(clinic_a, helena, consulta):
    appointment = AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 9))
    assert "09:00" not in times(available(clinic_a, consulta))

    appointment.status = AppointmentStatus.CANCELLED
    appointment.save(update_fields=["status"])

    assert "09:00" in times(available(clinic_a, consulta))


@pytest.mark.parametrize("status", [AppointmentStatus.NO_SHOW, AppointmentStatus.RESCHEDULED])
def test_ended_appointments_that_do_not_occupy_free_their_slot(clinic_a, helena, consulta, status):
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 9), status=status)

    assert "09:00" in times(available(clinic_a, consulta))


def test_time_off_blocks_its_hours(clinic_a, helena, consulta):
    TimeOffFactory(professional=helena, start=local(MONDAY, 10), end=local(MONDAY, 11))

    morning = times(available(clinic_a, consulta))

    assert "09:30" in morning and "11:00" in morning
    assert not {"09:45", "10:00", "10:30", "10:45"} & set(morning)


def test_a_week_of_vacation_blocks_the_whole_week(clinic_a, helena, consulta):
    TimeOffFactory(
        professional=helena, start=local(MONDAY, 0), end=local(MONDAY + timedelta(days=7), 0)
    )

    assert available(clinic_a, consulta) == []
    assert available(clinic_a, consulta, day=MONDAY + timedelta(days=7)) != []


def test_hours_valid_only_between_two_dates(clinic_a, consulta):
    dentist = ProfessionalFactory(clinic=clinic_a)
    consulta.professionals.add(dentist)
    WorkingHoursFactory(
        professional=dentist,
        start_time=time(19),
        end_time=time(20),
        valid_from=MONDAY + timedelta(days=7),
        valid_until=MONDAY + timedelta(days=7),
    )

    assert "19:00" not in times(available(clinic_a, consulta))
    assert "19:00" in times(available(clinic_a, consulta, day=MONDAY + timedelta(days=7)))
    assert "19:00" not in times(available(clinic_a, consulta, day=MONDAY + timedelta(days=14)))


# --- Holidays and closures -------------------------------------------------------------------


@pytest.mark.parametrize(
    "holiday",
    [date(2026, 11, 20), date(2026, 12, 25)],
    ids=["consciencia-negra", "natal"],
)
def test_national_holidays_are_closed_unless_the_clinic_works_on_them(
    clinic_a, helena, consulta, holiday
):
    WorkingHoursFactory(professional=helena, weekday=holiday.weekday())
    consulta.max_advance_days = 400
    consulta.save()
    a_week_before = holiday - timedelta(days=7)

    assert available(clinic_a, consulta, day=holiday) == []
    assert available(clinic_a, consulta, day=a_week_before) != []

    clinic_a.settings = {"scheduling": {"work_on_holidays": True}}
    clinic_a.save(update_fields=["settings"])
    assert times(available(clinic_a, consulta, day=holiday)) == grid("08:00", "11:30")


def test_a_clinic_closure_closes_every_day_it_covers(clinic_a, consulta):
    ClinicClosureFactory(clinic=clinic_a, start_date=MONDAY, end_date=MONDAY, reason="Reforma")

    assert available(clinic_a, consulta) == []
    assert available(clinic_a, consulta, day=MONDAY + timedelta(days=7)) != []


# --- Notice and advance ----------------------------------------------------------------------


@time_machine.travel(datetime(2026, 3, 2, 9, 5, tzinfo=SP), tick=False)
def test_minimum_notice_counts_from_now(clinic_a, consulta):
    consulta.min_notice_minutes = 60
    consulta.save()

    slots = slot_list_available(clinic=clinic_a, service=consulta, **whole_day(MONDAY))

    assert times(slots)[0] == "10:15"  # the first grid time at or after 10:05


def test_maximum_advance_counts_from_now(clinic_a, consulta):
    consulta.max_advance_days = 7
    now = local(MONDAY, 10)
    two_weeks = {"start": local(MONDAY, 0), "end": local(MONDAY + timedelta(days=14), 0)}

    slots = slot_list_available(clinic=clinic_a, service=consulta, now=now, **two_weeks)

    assert slots[0].start == local(MONDAY, 10)
    assert slots[-1].start == local(MONDAY + timedelta(days=7), 10)


def test_it_only_offers_starts_inside_the_searched_range(clinic_a, consulta):
    slots = slot_list_available(
        clinic=clinic_a,
        service=consulta,
        now=NOW,
        start=local(MONDAY, 9, 50),
        end=local(MONDAY, 10, 30),
    )

    assert times(slots) == ["10:00", "10:15"]


# --- Rooms -----------------------------------------------------------------------------------


@pytest.fixture
def rooms(clinic_a, consulta):
    """The consultation needs one of two rooms ("Sala 2" created first: picked by name)."""
    sala_2 = RoomFactory(clinic=clinic_a, name="Sala 2")
    sala_1 = RoomFactory(clinic=clinic_a, name="Sala 1")
    consulta.rooms.set([sala_2, sala_1])
    return sala_1, sala_2


def test_it_picks_the_first_free_room_by_name(clinic_a, helena, consulta, rooms):
    sala_1, sala_2 = rooms
    other = ProfessionalFactory(clinic=clinic_a)
    AppointmentFactory(service=consulta, professional=other, room=sala_1, start=local(MONDAY, 9))

    by_time = {times([slot])[0]: slot.room_id for slot in available(clinic_a, consulta)}

    assert by_time["08:00"] == sala_1.pk
    assert by_time["09:00"] == sala_2.pk


def test_no_slot_when_every_room_is_busy(clinic_a, helena, consulta, rooms):
    sala_1, sala_2 = rooms
    AppointmentFactory(service=consulta, room=sala_1, start=local(MONDAY, 9))
    TimeOffFactory(
        professional=None,
        room=sala_2,
        start=local(MONDAY, 8, 50),
        end=local(MONDAY, 9, 10),
        reason="Manutenção do ar",
    )

    by_time = {times([slot])[0]: slot.room_id for slot in available(clinic_a, consulta)}

    assert by_time["08:30"] == sala_1.pk  # ends as Sala 1 gets busy
    assert "08:45" not in by_time and "09:00" not in by_time
    assert by_time["09:15"] == sala_2.pk  # Sala 2 is back at 09:10
    assert by_time["09:30"] == sala_1.pk


def test_asking_for_a_room_gives_only_slots_in_it(clinic_a, helena, consulta, rooms):
    _sala_1, sala_2 = rooms
    AppointmentFactory(service=consulta, room=sala_2, start=local(MONDAY, 9))

    slots = available(clinic_a, consulta, room=sala_2)

    assert {slot.room_id for slot in slots} == {sala_2.pk}
    assert "09:00" not in times(slots)
    assert available(clinic_a, consulta, room=RoomFactory(clinic=clinic_a, name="Sala 9")) == []


def test_hours_tied_to_a_room_use_that_room_and_need_it_free(clinic_a, consulta):
    consultorio = RoomFactory(clinic=clinic_a, name="Consultório 3")
    pediatra = ProfessionalFactory(clinic=clinic_a)
    consulta.professionals.set([pediatra])
    WorkingHoursFactory(professional=pediatra, room=consultorio, end_time=time(10))
    AppointmentFactory(service=consulta, room=consultorio, start=local(MONDAY, 9))

    slots = available(clinic_a, consulta)

    assert {slot.room_id for slot in slots} == {consultorio.pk}
    assert times(slots) == ["08:00", "08:15", "08:30", "09:30"]


def test_a_service_without_rooms_gives_slots_without_room(clinic_a, consulta):
    assert {slot.room_id for slot in available(clinic_a, consulta)} == {None}
    assert available(clinic_a, consulta, room=RoomFactory(clinic=clinic_a)) == []


def test_hours_in_a_room_closed_for_good_give_nothing(clinic_a, helena, consulta):
    old_room = RoomFactory(clinic=clinic_a, name="Sala antiga", is_active=False)
    WorkingHoursFactory(
        professional=helena, weekday=Weekday.TUESDAY, room=old_room, start_time=time(8)
    )

    assert available(clinic_a, consulta, day=MONDAY + timedelta(days=1)) == []


def test_hours_in_a_room_the_service_cannot_use_offer_no_slot_for_it(clinic_a, helena):
    studio = RoomFactory(clinic=clinic_a, name="Estúdio de pilates")
    office = RoomFactory(clinic=clinic_a, name="Consultório 1")
    pilates = ServiceFactory(clinic=clinic_a, professionals=[helena], rooms=[studio])
    tuesday = MONDAY + timedelta(days=1)
    WorkingHoursFactory(
        professional=helena, weekday=Weekday.TUESDAY, room=office, start_time=time(8)
    )

    assert available(clinic_a, pilates, day=tuesday) == []  # booking refuses pilates there
    assert {slot.room_id for slot in available(clinic_a, pilates)} == {studio.pk}


# --- Who -------------------------------------------------------------------------------------


def test_any_professional_offers_whoever_is_free(clinic_a, helena, consulta):
    bruno = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Bruno")
    WorkingHoursFactory(professional=bruno, start_time=time(9), end_time=time(10))
    consulta.professionals.add(bruno)
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 9))

    slots = [s for s in available(clinic_a, consulta) if s.start < local(MONDAY, 10)]

    at_nine = [slot.professional_id for slot in slots if slot.start == local(MONDAY, 9)]
    assert at_nine == [bruno.pk]
    at_half_past = [slot.professional_id for slot in slots if slot.start == local(MONDAY, 9, 30)]
    assert at_half_past == sorted([helena.pk, bruno.pk])
    assert slots == sorted(slots, key=lambda s: (s.start, s.professional_id))


def test_one_professional_gives_only_their_slots(clinic_a, helena, consulta):
    bruno = ProfessionalFactory(clinic=clinic_a)
    WorkingHoursFactory(professional=bruno, start_time=time(19), end_time=time(20))
    consulta.professionals.add(bruno)

    slots = available(clinic_a, consulta, professional=bruno)

    assert times(slots) == ["19:00", "19:15", "19:30"]
    assert {slot.professional_id for slot in slots} == {bruno.pk}


def test_an_inactive_professional_has_no_slots(clinic_a, helena, consulta):
    helena.is_active = False
    helena.save()

    assert available(clinic_a, consulta) == []
    assert available(clinic_a, consulta, professional=helena) == []


def test_a_professional_who_does_not_perform_the_service_has_no_slots(clinic_a, consulta):
    outsider = ProfessionalFactory(clinic=clinic_a)
    WorkingHoursFactory(professional=outsider)

    assert available(clinic_a, consulta, professional=outsider) == []


def test_an_inactive_service_has_no_slots(clinic_a, consulta):
    consulta.is_active = False
    consulta.save()

    assert available(clinic_a, consulta) == []


def test_it_hides_other_clinics(clinic_a, clinic_b, helena, consulta):
    assert available(clinic_b, consulta) == []
    assert available(clinic_a, consulta, professional=ProfessionalFactory(clinic=clinic_b)) == []
    foreign_room = RoomFactory(clinic=clinic_b)
    assert available(clinic_a, consulta, room=foreign_room) == []


# --- Time zones ------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "utc_hour"), [("America/Sao_Paulo", 11), ("America/Manaus", 12)])
def test_the_same_hours_are_local_to_the_clinic(db, zone, utc_hour):
    clinic = ClinicFactory(time_zone=zone)
    professional = ProfessionalFactory(clinic=clinic)
    WorkingHoursFactory(professional=professional)
    service = ServiceFactory(clinic=clinic, professionals=[professional])
    tz = ZoneInfo(zone)

    slots = slot_list_available(clinic=clinic, service=service, now=NOW, **whole_day(MONDAY, tz=tz))

    assert slots[0].start == datetime(2026, 3, 2, utc_hour, 0, tzinfo=UTC)
    assert times(slots, tz) == grid("08:00", "11:30")


def test_days_are_the_clinic_days_not_utc_days(db):
    """Manaus 20:00–23:00 is 00:00–03:00 UTC of the next day: still Monday's hours."""
    manaus = ZoneInfo("America/Manaus")
    clinic = ClinicFactory(time_zone="America/Manaus")
    professional = ProfessionalFactory(clinic=clinic)
    WorkingHoursFactory(professional=professional, start_time=time(20), end_time=time(23))
    service = ServiceFactory(clinic=clinic, professionals=[professional])

    slots = slot_list_available(
        clinic=clinic, service=service, now=NOW, **whole_day(MONDAY, tz=manaus)
    )

    assert slots[0].start == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert times(slots, manaus) == grid("20:00", "22:30")

    # 21:00 in Manaus is already Tuesday in UTC; the search is still about Monday evening.
    later = slot_list_available(
        clinic=clinic,
        service=service,
        now=NOW,
        start=local(MONDAY, 21, tz=manaus),
        end=local(MONDAY, 23, tz=manaus),
    )
    assert times(later, manaus) == grid("21:00", "22:30")


# --- Performance -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_with_its_setup_in_hand_a_search_asks_the_database_once(clinic_a, helena, consulta, rooms):
    # Everything that makes time busy comes in one statement, and each piece below takes
    # away a slot that would be offered without it.
    sala_1, sala_2 = rooms
    # Helena is busy from before the window opens until 09:20 (else 09:00 in Sala 1) ...
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 8, 50))
    # ... and again from 10:15 (else 10:00 in Sala 2), and off from 11:00 (else 10:45).
    AppointmentFactory(service=consulta, professional=helena, start=local(MONDAY, 10, 15))
    TimeOffFactory(professional=helena, start=local(MONDAY, 11), end=local(MONDAY, 12))
    # Sala 1 is off 09:30-10:30 (else 09:30 in it); Sala 2 is taken by a one-hour session
    # that began before the window opened (else 09:30 in it).
    TimeOffFactory(
        professional=None, room=sala_1, start=local(MONDAY, 9, 30), end=local(MONDAY, 10, 30)
    )
    session = ServiceFactory(clinic=clinic_a, duration_minutes=60)
    other = ProfessionalFactory(clinic=clinic_a)
    AppointmentFactory(service=session, professional=other, room=sala_2, start=local(MONDAY, 8, 45))
    setup = agenda_setup(clinic_a.pk)

    with CaptureQueriesContext(connection) as queries:
        slots = slot_list_available(
            clinic=clinic_a,
            service=consulta,
            now=NOW,
            start=local(MONDAY, 9),
            end=local(MONDAY, 12),
            setup=setup,
        )

    assert len(queries) == 1
    assert [(times([slot])[0], slot.room_id) for slot in slots] == [("09:45", sala_2.pk)]


@pytest.mark.postgres
def test_postgresql_plans_the_busy_time_once_per_connection(clinic_a, helena, consulta):
    # Prepared after its 5th run (settings: prepare_threshold), then never planned again:
    # with PostgreSQL's default plan_cache_mode it was planned anew on every search, the
    # plan costing more CPU than the search itself.
    setup = agenda_setup(clinic_a.pk)
    for week in range(12):
        day = MONDAY + timedelta(weeks=week)
        assert available(clinic_a, consulta, day=day, setup=setup)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%scheduling_timeoff%"],
        )
        [(generic, custom)] = cursor.fetchall()
    assert (generic, custom) == (12 - 5, 0)


def test_it_takes_a_fixed_number_of_queries_however_long_the_range(
    clinic_a, helena, consulta, rooms, django_assert_max_num_queries
):
    for n in range(3):
        other = ProfessionalFactory(clinic=clinic_a)
        consulta.professionals.add(other)
        WorkingHoursFactory(professional=other, weekday=n)
        TimeOffFactory(professional=other, start=local(MONDAY + timedelta(days=n), 9))
        AppointmentFactory(
            service=consulta, professional=other, start=local(MONDAY + timedelta(days=7), 10)
        )
    closed = MONDAY + timedelta(days=21)
    ClinicClosureFactory(clinic=clinic_a, start_date=closed, end_date=closed)

    def count(days):
        with CaptureQueriesContext(connection) as queries:
            slots = slot_list_available(
                clinic=clinic_a,
                service=consulta,
                now=NOW,
                start=local(MONDAY, 0),
                end=local(MONDAY + timedelta(days=days), 0),
            )
        assert slots
        return len(queries)

    # The first search may load the agenda's setup (and, with Redis, keep it: then the
    # next searches read only time off and appointments); none depends on the range.
    with django_assert_max_num_queries(7):
        first = count(90)
    assert count(1) == count(90) <= first
