"""Availability against a brute-force oracle, on random agendas.

Hypothesis draws a small agenda as rows (working hours, time off, closures, rooms,
appointments in every status) and a search; the oracle below walks every minute of every
working interval of every day around the search, straight over those rows, and keeps the
grid minutes where the service fits. It shares no code with ``scheduling/availability.py``.
Every slot returned must be really free, and no free slot may be missing.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clinic.models import Room
from scheduling.availability import slot_list_available
from scheduling.choices import OCCUPYING_STATUSES, AppointmentStatus
from scheduling.models import Appointment, ClinicClosure, TimeOff, WorkingHours
from tests.clinic.factories import ClinicFactory, PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import ServiceFactory

pytestmark = pytest.mark.django_db

# Friday 20 November 2026, Consciência Negra: a national holiday in most agendas drawn.
HOLIDAY = date(2026, 11, 20)
DAYS = 4  # agendas span four days (and the evening before) from a random first day
MINUTE = timedelta(minutes=1)
BR_HOLIDAYS = holidays.country_holidays("BR")


# --- Drawing an agenda -----------------------------------------------------------------------


@dataclass
class Agenda:
    zone: str
    step: int
    work_on_holidays: bool
    first_day: date
    professionals: list[dict]  # active, performs
    rooms: list[dict]  # name, active
    service: dict
    hours: list[dict]
    time_off: list[dict]
    closures: list[tuple[int, int]]
    appointments: list[dict]
    now: float  # minutes (and seconds) after the first day's local midnight
    search: tuple[float, float]  # [start, end), likewise
    professional: int | None
    room: int | None

    def at(self, minutes) -> datetime:
        """A moment ``minutes`` after the first day's local midnight, in UTC."""
        midnight = datetime.combine(self.first_day, time(0), tzinfo=ZoneInfo(self.zone))
        return (midnight + timedelta(minutes=minutes)).astimezone(UTC)


seconds = st.integers(0, 59).map(lambda n: n / 60)  # in minutes


def sometimes(strategy, one_in=3):
    """``strategy`` one time in ``one_in``, else ``None``: most agendas should have slots."""
    # None at n == 0: Hypothesis favours small integers (and shrinks towards them).
    return st.integers(0, one_in - 1).flatmap(lambda n: strategy if n == one_in - 1 else st.none())


@st.composite
def agendas(draw):
    mostly = st.sampled_from([True] * 7 + [False])
    # The first professional works and performs the service; the others may not.
    others = draw(
        st.lists(st.fixed_dictionaries({"active": mostly, "performs": mostly}), max_size=2)
    )
    professionals = [{"active": True, "performs": True}, *others]
    room_count = draw(st.integers(1, 3))
    # Created in a shuffled order so that "first by name" is not "first created".
    names = draw(st.permutations(["Sala A", "Sala B", "Sala C"][:room_count]))
    rooms = [{"name": name, "active": draw(mostly)} for name in names]
    room_index = st.integers(0, room_count - 1)
    n_professionals = len(professionals)
    service = draw(
        st.fixed_dictionaries(
            {
                "duration": st.sampled_from([10, 15, 20, 30, 45, 60]),
                "before": st.sampled_from([0, 0, 5, 10, 15]),
                "after": st.sampled_from([0, 0, 5, 10, 15]),
                "notice": st.sampled_from([0, 0, 0, 30, 120, 1440]),
                "advance": st.sampled_from([30, 30, 7, 3, 2, 1]),
                "active": st.sampled_from([True] * 19 + [False]),
                # Half the services need one of the rooms.
                "rooms": st.booleans().flatmap(
                    lambda needs: (
                        st.lists(room_index, min_size=1, max_size=3) if needs else st.just([])
                    )
                ),
            }
        )
    )
    hours = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "professional": st.integers(0, n_professionals - 1),
                    "day": st.integers(-1, DAYS - 1),
                    "start": st.integers(6 * 12, 20 * 12).map(lambda n: n * 5),
                    "length": st.integers(6, 60).map(lambda n: n * 5),
                    "room": sometimes(room_index),
                    # Relative to the day of these hours: the bounds are inclusive.
                    "valid_from": sometimes(st.sampled_from([0, 1, -1, 7, -7])),
                    "valid_until": sometimes(st.sampled_from([0, -1, 1, 7, -7])),
                }
            ),
            min_size=2,
            max_size=6,
        )
    )

    def near_hours():
        """(hours, minute) a little before, in or after a random working interval: where
        time off and appointments matter."""
        h = hours[draw(st.integers(0, len(hours) - 1))]
        # Hypothesis favours small numbers: the smallest offset is the interval's start.
        offset = draw(st.integers(0, 66)) * 5 - (30 if draw(st.booleans()) else 0)
        return h, h["day"] * 1440 + h["start"] + offset

    def whose(h):
        """Mostly the professional of those hours, sometimes another (for rooms)."""
        return draw(sometimes(st.integers(0, n_professionals - 1))) or h["professional"]

    time_off = []
    for _ in range(draw(st.integers(0, 3))):
        h, start = near_hours()
        time_off.append(
            {
                "professional": whose(h),
                "room": draw(sometimes(room_index, 2)),
                "of_room_only": draw(st.booleans()),
                "start": start,
                "length": draw(st.integers(3, 48)) * 5,
            }
        )
    appointments = []
    for _ in range(draw(st.integers(0, 10))):
        h, start = near_hours()
        appointments.append(
            {
                "professional": whose(h),
                "room": draw(sometimes(room_index, 2)),
                "start": start,
                "duration": draw(st.sampled_from([10, 15, 20, 30, 45, 60, 90])),
                "before": draw(st.sampled_from([0, 0, 5, 15])),
                "after": draw(st.sampled_from([0, 0, 5, 15])),
                "status": draw(st.sampled_from(list(AppointmentStatus))),
            }
        )
    # Now: near some working hours (so that the notice matters), or at a random moment.
    if draw(st.booleans()):
        now = near_hours()[1] - draw(st.integers(0, 24)) * 60
    else:
        now = draw(st.integers(-720, 1440))
    # A search from around the first day's start, maybe at an odd second, for a short while
    # or for the whole agenda.
    if appointments and draw(st.booleans()):  # from inside an appointment under way
        a = appointments[draw(st.integers(0, len(appointments) - 1))]
        a["status"] = AppointmentStatus.SCHEDULED
        search_start = a["start"] + draw(st.integers(1, a["duration"] // 5 - 1)) * 5
        now = min(now, search_start - 1440)
    else:
        search_start = draw(st.integers(-72, 144)) * 5
    search_start += draw(sometimes(seconds, 2)) or 0
    search_length = (
        draw(
            st.integers(0, 3).flatmap(
                lambda n: (
                    st.integers(0, 48) if n == 3 else st.integers(DAYS * 288, (DAYS + 1) * 288)
                )
            )
        )
        * 5
    )
    return Agenda(
        zone=draw(st.sampled_from(["America/Sao_Paulo", "America/Manaus"])),
        step=draw(st.sampled_from([5, 10, 15, 20, 30])),
        work_on_holidays=draw(st.booleans()),
        first_day=HOLIDAY - timedelta(days=draw(st.integers(0, DAYS))),
        professionals=professionals,
        rooms=rooms,
        service=service,
        hours=hours,
        time_off=time_off,
        closures=draw(
            sometimes(st.tuples(st.integers(-1, DAYS), st.integers(0, 2)).map(lambda c: [c]), 2)
        )
        or [],
        appointments=appointments,
        now=now + draw(seconds),
        search=(search_start, search_start + search_length),
        professional=draw(sometimes(st.integers(0, n_professionals - 1))),
        room=draw(sometimes(room_index, 5)),
    )


def overlaps(a_start, a_end, b_start, b_end) -> bool:
    return a_start < b_end and b_start < a_end


def build(agenda: Agenda):
    """The agenda as database rows."""
    clinic = ClinicFactory(
        time_zone=agenda.zone,
        settings={
            "scheduling": {
                "slot_step_minutes": agenda.step,
                "work_on_holidays": agenda.work_on_holidays,
            }
        },
    )
    professionals = [
        ProfessionalFactory(clinic=clinic, is_active=p["active"]) for p in agenda.professionals
    ]
    rooms = [
        RoomFactory(clinic=clinic, name=r["name"], is_active=r["active"]) for r in agenda.rooms
    ]
    s = agenda.service
    service = ServiceFactory(
        clinic=clinic,
        duration_minutes=s["duration"],
        buffer_before_minutes=s["before"],
        buffer_after_minutes=s["after"],
        min_notice_minutes=s["notice"],
        max_advance_days=s["advance"],
        is_active=s["active"],
        professionals=[
            p for p, d in zip(professionals, agenda.professionals, strict=True) if d["performs"]
        ],
        rooms=[rooms[i] for i in set(s["rooms"])],
    )
    for h in agenda.hours:
        day = agenda.first_day + timedelta(days=h["day"])
        valid = [
            None if h[k] is None else day + timedelta(days=h[k])
            for k in ("valid_from", "valid_until")
        ]
        if valid[0] and valid[1] and valid[0] > valid[1]:
            valid.reverse()
        end = min(h["start"] + h["length"], 24 * 60 - 5)
        WorkingHours.objects.create(
            clinic=clinic,
            professional=professionals[h["professional"]],
            weekday=day.weekday(),
            start_time=time(h["start"] // 60, h["start"] % 60),
            end_time=time(end // 60, end % 60),
            room=None if h["room"] is None else rooms[h["room"]],
            valid_from=valid[0],
            valid_until=valid[1],
        )
    for t in agenda.time_off:
        TimeOff.objects.create(
            clinic=clinic,
            professional=(
                None
                if t["of_room_only"] and t["room"] is not None
                else professionals[t["professional"]]
            ),
            room=None if t["room"] is None else rooms[t["room"]],
            start=agenda.at(t["start"]),
            end=agenda.at(t["start"] + t["length"]),
        )
    for offset, length in agenda.closures:
        first = agenda.first_day + timedelta(days=offset)
        ClinicClosure.objects.create(
            clinic=clinic, start_date=first, end_date=first + timedelta(days=length), reason="x"
        )
    # What the exclusion constraints allow: occupying appointments never overlap for the
    # same professional or room (each has its own patient).
    kept = []
    for a in agenda.appointments:
        start = agenda.at(a["start"])
        end = start + timedelta(minutes=a["duration"])
        occupied = (start - timedelta(minutes=a["before"]), end + timedelta(minutes=a["after"]))
        occupying = a["status"] in OCCUPYING_STATUSES
        if occupying and any(
            (
                k["professional"] == a["professional"]
                or (a["room"] is not None and k["room"] == a["room"])
            )
            and overlaps(*occupied, *k["occupied"])
            for k in kept
        ):
            continue
        if occupying:
            kept.append({**a, "occupied": occupied})
        Appointment.objects.create(
            clinic=clinic,
            service=service,
            patient=PatientFactory(clinic=clinic),
            professional=professionals[a["professional"]],
            room=None if a["room"] is None else rooms[a["room"]],
            start=start,
            end=end,
            occupied_start=occupied[0],
            occupied_end=occupied[1],
            status=a["status"],
        )
    return clinic, service, professionals, rooms


# --- The oracle ------------------------------------------------------------------------------


def busy_rows(professional=None, room=None):
    """(start, end) of every time off and occupying appointment of a professional or room,
    straight from the rows."""
    if professional is not None:
        offs = TimeOff.objects.filter(professional=professional)
        appointments = Appointment.objects.filter(professional=professional)
    else:
        offs = TimeOff.objects.filter(room=room)
        appointments = Appointment.objects.filter(room=room)
    rows = [(o.start, o.end) for o in offs]
    rows += [(a.occupied_start, a.occupied_end) for a in appointments if a.is_occupying]
    return rows


def is_free(busy, start, end) -> bool:
    return not any(overlaps(start, end, b_start, b_end) for b_start, b_end in busy)


def oracle(clinic, service, *, professional, room, start, end, now):
    """Every free slot, by walking each working interval minute by minute."""
    if not service.is_active:
        return set()
    tz = ZoneInfo(clinic.time_zone)
    options = clinic.settings["scheduling"]
    step = options["slot_step_minutes"]
    duration = timedelta(minutes=service.duration_minutes)
    before = timedelta(minutes=service.buffer_before_minutes)
    after = timedelta(minutes=service.buffer_after_minutes)
    earliest = now + timedelta(minutes=service.min_notice_minutes)
    latest = now + timedelta(days=service.max_advance_days)
    closures = list(ClinicClosure.objects.filter(clinic=clinic))
    service_rooms = sorted(service.rooms.all(), key=lambda r: r.name)
    room_busy = {r.pk: busy_rows(room=r) for r in Room.objects.filter(clinic=clinic)}
    candidates = [
        p
        for p in service.professionals.all()
        if p.is_active and (professional is None or p.pk == professional.pk)
    ]
    found = set()
    day = start.astimezone(tz).date() - timedelta(days=1)
    while day <= end.astimezone(tz).date() + timedelta(days=1):
        closed = any(c.start_date <= day <= c.end_date for c in closures) or (
            day in BR_HOLIDAYS and not options["work_on_holidays"]
        )
        for p in [] if closed else candidates:
            busy = busy_rows(professional=p)
            for hours in WorkingHours.objects.filter(professional=p):
                if not hours.applies_on(day):
                    continue
                opens = datetime.combine(day, hours.start_time, tzinfo=tz).astimezone(UTC)
                closes = datetime.combine(day, hours.end_time, tzinfo=tz).astimezone(UTC)
                minute = opens
                while minute < closes:
                    on_grid = (minute - opens) % timedelta(minutes=step) == timedelta(0)
                    occupied = (minute - before, minute + duration + after)
                    if (
                        on_grid
                        and start <= minute < end
                        and earliest <= minute <= latest
                        and opens <= occupied[0]
                        and occupied[1] <= closes
                        and is_free(busy, *occupied)
                    ):
                        if hours.room is not None:
                            # A service needing rooms takes place only in one of them.
                            usable = hours.room.is_active and (
                                not service_rooms or hours.room in service_rooms
                            )
                            wanted = [hours.room] if usable else []
                        elif service_rooms:
                            wanted = [r for r in service_rooms if r.is_active]
                        else:
                            wanted = [None]
                        if room is not None:
                            wanted = [r for r in wanted if r == room]
                        for r in wanted:
                            if r is None or is_free(room_busy[r.pk], *occupied):
                                found.add((minute, p.pk, None if r is None else r.pk))
                                break
                    minute += MINUTE
        day += timedelta(days=1)
    return found


# --- The property ----------------------------------------------------------------------------


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(agenda=agendas())
def test_it_finds_exactly_the_free_slots(db, agenda):
    with transaction.atomic():
        clinic, service, professionals, rooms = build(agenda)
        drawn = {
            "professional": (
                None if agenda.professional is None else professionals[agenda.professional]
            ),
            "room": None if agenda.room is None else rooms[agenda.room],
            "start": agenda.at(agenda.search[0]),
            "end": agenda.at(agenda.search[1]),
            "now": agenda.at(agenda.now),
        }
        # And the whole agenda, for anyone anywhere, seen from the day before.
        everything = {
            "professional": None,
            "room": None,
            "start": agenda.at(-1440),
            "end": agenda.at((DAYS + 1) * 1440),
            "now": agenda.at(-1440),
        }
        for asked in (drawn, everything):
            check(clinic, service, asked)
        transaction.set_rollback(True)


def check(clinic, service, asked):
    slots = slot_list_available(clinic=clinic, service=service, **asked)

    duration = timedelta(minutes=service.duration_minutes)
    occupied = [(s.start - service.buffer_before, s.end + service.buffer_after) for s in slots]
    for slot, (occupied_start, occupied_end) in zip(slots, occupied, strict=True):
        assert slot.end - slot.start == duration
        assert slot.start.utcoffset() == timedelta(0)
        assert is_free(busy_rows(professional=slot.professional_id), occupied_start, occupied_end)
        if slot.room_id is not None:
            assert is_free(busy_rows(room=slot.room_id), occupied_start, occupied_end)
    assert slots == sorted(
        slots, key=lambda s: (s.start, s.professional_id, s.room_id is not None, s.room_id or 0)
    )
    got = {(s.start, s.professional_id, s.room_id) for s in slots}
    expected = oracle(clinic, service, **asked)
    # Shown by --hypothesis-show-statistics: most examples must have slots to compare.
    event("slots: none" if not expected else f"slots: {min(len(expected), 50) // 10 * 10}+")
    event(f"with a room: {any(r is not None for _s, _p, r in expected)}")
    assert got - expected == set(), "offered, but not free"
    assert expected - got == set(), "free, but not offered"
    assert len(got) == len(slots), "a slot offered twice"
