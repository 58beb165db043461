"""config.postgresql: Django's PostgreSQL backend reading datetimes with psycopg's C loader,
and health-checking connections only after idle time.

The values must be exactly those Django's own loader gives (aware, UTC, microseconds kept),
whatever the instant: DST changes, leap days, the far past and future."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader, register_tzloader
from psycopg.pq import Format

from config.postgresql.base import (
    HEALTH_CHECK_IDLE_SECONDS,
    TIMESTAMPTZ_OID,
    FastTzLoader,
    optimised,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

INSTANTS = [
    "2026-02-22 02:59:59.999999+00",  # the end of São Paulo's last DST (2019) pattern
    "2024-02-29 12:00:00+00",
    "2026-11-22 20:42:27.123456-03",
    "2026-03-02 09:00:00+05:30",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1969-12-31 23:59:59.5+00",
]
QUERY = "SELECT v::timestamptz FROM unnest(%s::text[]) AS v"


def _read_all(cursor) -> list[datetime]:
    cursor.execute(QUERY, [INSTANTS])
    return [row[0] for row in cursor.fetchall()]


def test_the_connection_reads_timestamptz_with_the_fast_loader():
    assert optimised(), "psycopg[binary] is a dependency: its C loader must be there"
    assert connection.vendor == "postgresql"
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert issubclass(loader, FastTzLoader)
    assert loader.timezone == connection.timezone  # so Django adds no per-cursor loader
    with connection.cursor() as cursor:
        values = _read_all(cursor)
    assert all(value.tzinfo is UTC for value in values)


def test_values_equal_djangos_own_loader():
    with connection.cursor() as cursor:
        fast = _read_all(cursor)
        # Django's pure-Python loader, on this cursor only.
        register_tzloader(connection.timezone, cursor.cursor)
        assert not issubclass(
            cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT), FastTzLoader
        )
        assert issubclass(
            cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT), BaseTzLoader
        )
        django = _read_all(cursor)
    assert fast == django
    assert [value.tzinfo for value in fast] == [value.tzinfo for value in django]
    assert fast[2] == datetime(2026, 11, 22, 23, 42, 27, 123456, tzinfo=UTC)
    assert fast[3] == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    assert fast[6] == datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=500_000)


def test_models_round_trip_aware_datetimes(clinic_a):
    from scheduling.models import TimeOff
    from tests.clinic.factories import ProfessionalFactory

    professional = ProfessionalFactory(clinic=clinic_a)
    start = datetime(2026, 11, 22, 23, 42, 27, 123456, tzinfo=UTC)
    off = TimeOff.objects.create(
        clinic=clinic_a, professional=professional, start=start, end=start + timedelta(hours=1)
    )
    read = TimeOff.objects.get(pk=off.pk)
    assert (read.start, read.end) == (start, start + timedelta(hours=1))
    assert read.start.tzinfo is UTC


# --- Health checks only after idle time -----------------------------------------------------


class Pings(list):
    """The health-check pings (``SELECT 1``) sent; ``alive``: what they answer."""

    alive = True


@pytest.fixture
def pings(monkeypatch):
    sent = Pings()

    def is_usable():
        sent.append(time.monotonic())
        return sent.alive

    monkeypatch.setattr(connection, "is_usable", is_usable)
    return sent


def next_request():
    """What Django does for each request or task: the connection is checked again."""
    connection.health_check_done = False


def query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_connection_used_a_moment_ago_is_not_pinged_again(pings):
    assert connection.health_check_enabled
    query()
    for _ in range(3):
        next_request()
        assert query() == 42
    assert pings == []


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_sat_idle_is_pinged_and_replaced_when_dead(pings, monkeypatch):
    query()
    before = connection.connection
    connection.used_at -= HEALTH_CHECK_IDLE_SECONDS  # as if the last request were a while ago
    next_request()
    assert query() == 42
    assert len(pings) == 1
    assert connection.connection is before  # alive: kept

    pings.alive = False
    connection.used_at -= HEALTH_CHECK_IDLE_SECONDS
    next_request()
    assert query() == 42  # a new connection answers instead of an error
    assert len(pings) == 2
    assert connection.connection is not before
