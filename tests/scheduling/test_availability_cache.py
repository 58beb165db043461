"""The versioned cache of ``/api/v1/availability``: a repeated search is answered without
the database, and every change to what a search reads gives, at once, what a fresh search
gives (scheduling/availability_cache.py)."""

from datetime import time, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.partner_api.keys import api_key_create
from scheduling import agenda_setup, availability_cache
from scheduling.api import SlotSerializer
from scheduling.availability import slot_list_available
from scheduling.availability_cache import availability_changed, availability_version
from scheduling.models import Service, WorkingHours
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import (
    ClinicClosureFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)
from tests.scheduling.test_api import make_agenda

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch):
    """As with Redis (the tests' cache is one process's memory, which is all there is)."""
    monkeypatch.setattr(availability_cache, "cache_enabled", lambda: True)
    monkeypatch.setattr(agenda_setup, "cache_enabled", lambda: True)


@pytest.fixture
def agenda(clinic_a):
    agenda = make_agenda(clinic_a)
    _key, secret = api_key_create(clinic=clinic_a, name="Site", scopes=["availability:read"])
    agenda.client = Client(headers={"Authorization": f"Bearer {secret}"})
    return agenda


def window(agenda, **kwargs):
    start = agenda.nine.replace(hour=0)
    return {"start": start, "end": start + timedelta(days=1)} | kwargs


def cached(agenda, **kwargs):
    """What the API answers (from the cache when it can)."""
    query = {"service": agenda.service.pk, **window(agenda, **kwargs)}
    query = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in query.items()}
    response = agenda.client.get("/api/v1/availability", query)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def fresh(agenda, **kwargs):
    """What a search made now gives, serialized as the API does."""
    service = Service.objects.get(pk=agenda.service.pk)
    agenda.clinic.refresh_from_db()
    search = {"clinic": agenda.clinic, "service": service, **window(agenda, **kwargs)}
    slots = slot_list_available(**search)
    return SlotSerializer(slots, many=True, context={"clinic": agenda.clinic}).data


def starts(results):
    return [row["start"] for row in results]


def book_nine(agenda):
    return appointment_book(
        clinic=agenda.clinic,
        patient=agenda.patient,
        professional=agenda.professional,
        service=agenda.service,
        start=agenda.nine,
    )


def assert_fresh(agenda, **kwargs):
    assert cached(agenda, **kwargs) == fresh(agenda, **kwargs)


def test_a_repeated_search_does_not_touch_the_database(agenda):
    first = cached(agenda)
    assert first
    with CaptureQueriesContext(connection) as queries:
        again = cached(agenda)
    assert again == first
    # The key, the version and the answer are all in the cache: only the request log
    # (written directly without Redis) touches the database.
    assert [q["sql"] for q in queries if "clinic_apirequestlog" not in q["sql"]] == []


#: What the agenda's setup is read from (scheduling/agenda_setup.py).
SETUP_READS = (
    "scheduling_workinghours",
    "scheduling_clinicclosure",
    "scheduling_service_professionals",
    "scheduling_service_rooms",
    'FROM "scheduling_service" ',
)


#: A setup is kept only when read outside any transaction: not inside the one pytest-django
#: wraps each test in.
KEPT_ONLY_OUTSIDE_TRANSACTIONS = pytest.mark.django_db(transaction=True)


def setup_reads(queries) -> list[str]:
    return [q["sql"] for q in queries if any(table in q["sql"] for table in SETUP_READS)]


@KEPT_ONLY_OUTSIDE_TRANSACTIONS
def test_another_question_reuses_the_kept_agenda_setup(agenda):
    cached(agenda)
    next_day = {k: v + timedelta(days=1) for k, v in window(agenda).items()}
    with CaptureQueriesContext(connection) as queries:
        answer = cached(agenda, **next_day)
    assert answer == fresh(agenda, **next_day)
    assert setup_reads(queries) == []
    assert [q for q in queries if "scheduling_appointment" in q["sql"]]  # computed now


@KEPT_ONLY_OUTSIDE_TRANSACTIONS
def test_a_setup_read_inside_a_transaction_that_rolls_back_is_not_kept(agenda):
    before = cached(agenda)
    assert before
    with pytest.raises(RuntimeError), transaction.atomic():
        WorkingHours.objects.filter(professional=agenda.professional).delete()
        search = {"clinic": agenda.clinic, "service": agenda.service, **window(agenda)}
        assert slot_list_available(**search) == []  # its own change, not committed
        raise RuntimeError("rolled back")
    assert cached(agenda) == before == fresh(agenda)


@KEPT_ONLY_OUTSIDE_TRANSACTIONS
def test_a_booking_drops_the_answers_but_not_the_setup(agenda):
    cached(agenda)
    book_nine(agenda)
    with CaptureQueriesContext(connection) as queries:
        answer = cached(agenda)
    assert agenda.nine.isoformat() not in starts(answer)
    assert setup_reads(queries) == []
    assert answer == fresh(agenda)


@KEPT_ONLY_OUTSIDE_TRANSACTIONS
def test_a_kept_setup_past_its_age_is_loaded_again_whatever_its_version(agenda, monkeypatch):
    cached(agenda)
    monkeypatch.setattr(agenda_setup, "MAX_AGE_SECONDS", 0)
    next_day = {k: v + timedelta(days=1) for k, v in window(agenda).items()}
    with CaptureQueriesContext(connection) as queries:
        cached(agenda, **next_day)
    assert setup_reads(queries)


def test_a_booking_is_seen_at_once(agenda):
    cached(agenda)
    book_nine(agenda)
    assert agenda.nine.isoformat() not in starts(cached(agenda))
    assert_fresh(agenda)


def test_a_cancellation_and_a_reschedule_are_seen_at_once(agenda):
    booked = appointment_book(
        clinic=agenda.clinic,
        patient=agenda.patient,
        professional=agenda.professional,
        service=agenda.service,
        start=agenda.nine,
    )
    cached(agenda)
    moved = appointment_reschedule(appointment=booked, start=agenda.nine + timedelta(hours=2))
    assert agenda.nine.isoformat() in starts(cached(agenda))
    assert_fresh(agenda)
    appointment_cancel(appointment=moved)
    assert (agenda.nine + timedelta(hours=2)).isoformat() in starts(cached(agenda))
    assert_fresh(agenda)


def test_working_hours_time_off_and_closures_are_seen_at_once(agenda):
    before = cached(agenda)
    hours = WorkingHoursFactory(
        professional=agenda.professional,
        weekday=agenda.nine.weekday(),
        start_time=time(19),
        end_time=time(21),
    )
    assert len(cached(agenda)) > len(before)
    assert_fresh(agenda)
    hours.end_time = time(20)
    hours.save()
    assert_fresh(agenda)
    hours.delete()
    assert_fresh(agenda)

    TimeOffFactory(
        professional=agenda.professional, start=agenda.nine, end=agenda.nine + timedelta(hours=3)
    )
    assert agenda.nine.isoformat() not in starts(cached(agenda))
    assert_fresh(agenda)

    ClinicClosureFactory(clinic=agenda.clinic, end_date=agenda.nine.date())
    assert cached(agenda) == []
    assert_fresh(agenda)


def test_who_performs_a_service_and_its_rooms_are_seen_at_once(agenda):
    other = ProfessionalFactory(clinic=agenda.clinic)
    WorkingHoursFactory(professional=other, weekday=agenda.nine.weekday())
    cached(agenda)
    agenda.service.professionals.add(other)
    assert other.pk in {row["professional"] for row in cached(agenda)}
    assert_fresh(agenda)
    agenda.service.professionals.remove(other)
    assert other.pk not in {row["professional"] for row in cached(agenda)}
    assert_fresh(agenda)

    room = RoomFactory(clinic=agenda.clinic)
    agenda.service.rooms.add(room)
    assert {row["room"] for row in cached(agenda)} == {room.pk}
    assert_fresh(agenda)
    room.is_active = False
    room.save()
    assert cached(agenda) == []
    assert_fresh(agenda)


def test_a_professional_who_stops_working_is_seen_at_once(agenda):
    other = ProfessionalFactory(clinic=agenda.clinic)
    WorkingHoursFactory(professional=other, weekday=agenda.nine.weekday())
    agenda.service.professionals.add(other)
    assert other.pk in {row["professional"] for row in cached(agenda)}
    other.is_active = False
    other.save()
    assert other.pk not in {row["professional"] for row in cached(agenda)}
    assert_fresh(agenda)


def test_service_and_clinic_settings_are_part_of_the_search(agenda):
    cached(agenda)
    agenda.service.duration_minutes = 60
    agenda.service.save()
    assert_fresh(agenda)
    agenda.clinic.settings = {"scheduling": {"slot_step_minutes": 30}}
    agenda.clinic.save()
    assert_fresh(agenda)


def test_a_change_behind_the_signals_back_is_seen_once_announced(agenda):
    cached(agenda)
    Service.objects.filter(pk=agenda.service.pk).update(duration_minutes=90)  # no signal
    availability_changed(agenda.clinic.pk)
    assert_fresh(agenda)


def test_the_minimum_notice_is_applied_at_the_time_of_serving(agenda, monkeypatch):
    monkeypatch.setattr(availability_cache, "TTL_SECONDS", 3 * 3600)
    agenda.service.min_notice_minutes = 120
    agenda.service.save()
    start = agenda.nine.replace(hour=8)
    with time_machine.travel(start - timedelta(hours=2), tick=False) as clock:
        assert cached(agenda)[0]["start"] == start.isoformat()
        clock.shift(timedelta(hours=1))
        with CaptureQueriesContext(connection) as queries:
            later = cached(agenda)
        assert later[0]["start"] == (start + timedelta(hours=1)).isoformat()
        assert not [q for q in queries if "scheduling_" in q["sql"]]  # from the cache
        assert_fresh(agenda)


def test_a_window_past_the_maximum_advance_is_never_cached(agenda):
    agenda.service.max_advance_days = 5
    agenda.service.save()
    far = {"start": timezone.now(), "end": timezone.now() + timedelta(days=10)}
    assert cached(agenda, **far)
    with CaptureQueriesContext(connection) as queries:
        cached(agenda, **far)
    assert [q for q in queries if "scheduling_" in q["sql"]]  # the far bound moves


def test_another_clinics_changes_do_not_drop_this_clinics_answers(agenda, clinic_b):
    cached(agenda)
    version = availability_version(agenda.clinic.pk)
    other = ServiceFactory(clinic=clinic_b)
    other.save()
    PatientFactory(clinic=agenda.clinic)  # patients do not change availability
    assert availability_version(agenda.clinic.pk) == version


def test_the_version_changes_again_after_the_commit(agenda, django_capture_on_commit_callbacks):
    """A search that ran between a change and its commit read the old rows under the new
    version: replacing the version after the commit makes that answer unreachable."""
    with django_capture_on_commit_callbacks() as callbacks:
        TimeOffFactory(professional=agenda.professional, start=agenda.nine)
        during = availability_version(agenda.clinic.pk)
    assert callbacks
    for callback in callbacks:
        callback()
    assert availability_version(agenda.clinic.pk) != during


def test_without_a_shared_cache_every_search_is_fresh(agenda, monkeypatch):
    monkeypatch.setattr(availability_cache, "cache_enabled", lambda: False)
    cached(agenda)
    with CaptureQueriesContext(connection) as queries:
        cached(agenda)
    assert [q for q in queries if "scheduling_" in q["sql"]]


def test_a_refused_query_is_not_kept(agenda):
    outsider = ProfessionalFactory(clinic=agenda.clinic)
    query = {"service": agenda.service.pk, "professional": outsider.pk}
    query |= {k: v.isoformat() for k, v in window(agenda).items()}
    assert agenda.client.get("/api/v1/availability", query).status_code == 400
    agenda.service.professionals.add(outsider)
    WorkingHoursFactory(professional=outsider, weekday=agenda.nine.weekday())
    response = agenda.client.get("/api/v1/availability", query)
    assert response.status_code == 200
    assert {row["professional"] for row in response.json()["results"]} == {outsider.pk}


def test_the_answer_is_in_the_clinics_time_zone_as_loaded(agenda):
    before = cached(agenda)
    agenda.clinic.time_zone = "America/Manaus"
    agenda.clinic.save()
    after = cached(agenda)
    assert after != before
    assert all(row["start"].endswith("-04:00") for row in after)
    assert_fresh(agenda)


def test_staff_working_in_no_clinic_get_a_field_error_not_a_crash(agenda, superuser, client_for):
    start, end = window(agenda).values()
    query = {"service": agenda.service.pk, "start": start.isoformat(), "end": end.isoformat()}
    response = client_for(superuser).get("/api/v1/availability", query)
    assert response.status_code == 400
    assert "service" in response.json()["errors"]


def test_when_redis_is_down_every_search_is_computed(agenda, monkeypatch):
    from clinic.kernel import redis as shared_redis
    from tests.clinic.partner_api.test_framework import DownRedis

    expected = fresh(agenda)
    monkeypatch.setattr(shared_redis, "state_client", lambda: DownRedis())
    assert cached(agenda) == expected
    with CaptureQueriesContext(connection) as queries:
        assert cached(agenda) == expected
    assert [q for q in queries if "scheduling_" in q["sql"]]  # computed, not kept
    book_nine(agenda)  # a booking still works, and the next search sees it
    assert_fresh(agenda)


@KEPT_ONLY_OUTSIDE_TRANSACTIONS
def test_a_process_keeps_the_setups_of_at_most_max_kept_clinics(agenda, clinic_b, monkeypatch):
    from tests.clinic.factories import ClinicFactory

    monkeypatch.setattr(agenda_setup, "_kept", {})
    monkeypatch.setattr(agenda_setup, "MAX_KEPT", 2)
    third = ClinicFactory()
    for clinic in (agenda.clinic, clinic_b, third):
        agenda_setup.agenda_setup(clinic.pk, version="v1")
    assert list(agenda_setup._kept) == [clinic_b.pk, third.pk]  # the oldest went first
    kept = agenda_setup._kept[third.pk][2]
    assert agenda_setup.agenda_setup(third.pk, version="v1") is kept
    assert agenda_setup.agenda_setup(third.pk, version="v2") is not kept  # a new version
