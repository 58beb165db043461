"""Availability: the free slots of the agenda for a service.

A slot is free when its occupied range — ``[start - buffer before, end + buffer after)`` —
lies inside one of the professional's working intervals that day, overlaps none of the
professional's time off or occupying appointments, and, when the slot needs a room, none of
that room's time off or occupying appointments either (half-open ranges: back-to-back is
fine, as in the exclusion constraints of migration 0002).

How it is computed: a fixed handful of queries whatever the length of the range (the
agenda's setup — candidate professionals, working hours, the service's rooms, closures —
in four, none while a process keeps it current (``agenda_setup.py``); then time off and the
occupying appointments of the professionals and of the rooms — only ids and the occupied
columns), then interval arithmetic in Python over integers (microseconds since the epoch):
busy intervals sorted and merged, the free gaps of each working interval walked on the
slot grid. Never one query per day or per slot.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language

from clinic.kernel.timezones import clinic_zone

from .agenda_setup import AgendaSetup, agenda_setup
from .choices import OCCUPYING_STATUSES
from .conf import clinic_option
from .models import Appointment, TimeOff

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MINUTE = 60_000_000  # in microseconds


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable time: ``start``/``end`` are the service's own time (buffers excluded), as
    aware UTC datetimes; ``room_id`` is the room the slot takes, or ``None``."""

    start: datetime
    end: datetime
    professional_id: int
    room_id: int | None


def slot_list_available(
    *,
    clinic,
    service,
    professional=None,
    room=None,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    setup: AgendaSetup | None = None,
    professional_checked: bool = False,
) -> list[Slot]:
    """Free slots of ``service`` starting in ``[start, end)``, sorted by start, professional
    and room.

    ``professional`` limits the search to one professional (who must perform the service);
    without it every active professional of the service is a candidate ("any
    professional"). ``room`` limits it to slots in that room. Days are the clinic's local
    days; closures and national holidays are skipped (holidays unless the clinic works on
    them: option ``work_on_holidays``). Slot starts lie on a grid of ``slot_step_minutes``
    counted from the start of each working interval, at least the service's minimum notice
    after ``now`` (default: the current time) and at most its maximum advance.
    ``setup``: the clinic's agenda setup when the caller has it (default: loaded, or this
    process's copy while it is current — ``scheduling/agenda_setup.py``).
    ``professional_checked``: the caller has checked the professional's occupying
    appointments itself (``appointment_book``'s conflicts, for the one slot it books), so
    they are not read again (their time off, rooms and all the rest still are).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("slot_list_available needs aware datetimes")
    setup = setup or agenda_setup(clinic.pk)
    if setup.clinic_id != clinic.pk:
        raise ValueError("slot_list_available got another clinic's agenda setup")
    search = _search_prepare(
        clinic,
        service,
        professional=professional,
        room=room,
        start=start,
        end=end,
        now=now or timezone.now(),
        setup=setup,
        published=True,
    )
    if search is None:
        return []
    professional_busy, room_busy = _busy_time(
        clinic.pk,
        professional_ids=search.professional_ids,
        room_ids=search.room_ids,
        lo=search.busy_lo,
        hi=search.busy_hi,
        professional_appointments=not professional_checked,
    )
    return _slots(search, _merged(professional_busy), _merged(room_busy))


def slots_for_reception(
    *,
    clinic,
    start: datetime,
    end: datetime,
    professional=None,
    now: datetime | None = None,
    setup: AgendaSetup | None = None,
) -> dict[int, list[Slot]]:
    """The slots reception can book, by service id: every active service of the clinic (of
    ``professional`` only, when given) starting in ``[start, end)``, computed exactly as
    :func:`slot_list_available` computes them (working hours, time off, closures, holidays,
    rooms, occupying appointments with both buffers), except that reception is not held to
    a service's minimum notice or maximum advance — only to the future. The agenda draws
    its free time from this, so every time it offers books. A fixed number of queries
    whatever the number of services: the setup (or none while it is kept), the active
    services, and one read of the busy time for all of them."""
    setup = setup or agenda_setup(clinic.pk)
    now = now or timezone.now()
    searches = []
    for service in setup.services.values():
        if professional is not None and not setup.performs(service.pk, professional.pk):
            continue
        search = _search_prepare(
            clinic,
            service,
            professional=professional,
            room=None,
            start=start,
            end=end,
            now=now,
            setup=setup,
            published=False,
        )
        if search is not None:
            searches.append(search)
    if not searches:
        return {}
    professional_busy, room_busy = _busy_time(
        clinic.pk,
        professional_ids=sorted({pk for s in searches for pk in s.professional_ids}),
        room_ids=sorted({pk for s in searches for pk in s.room_ids}),
        lo=min(s.busy_lo for s in searches),
        hi=max(s.busy_hi for s in searches),
        professional_appointments=True,
    )
    professional_merged, room_merged = _merged(professional_busy), _merged(room_busy)
    return {s.service.pk: _slots(s, professional_merged, room_merged) for s in searches}


@dataclass(slots=True)
class _Search:
    """One service's search, ready for the busy time (times in microseconds)."""

    service: object
    lo: int  # slot starts lie in [lo, hi]
    hi: int
    duration: int
    before: int
    after: int
    step: int
    tz: ZoneInfo
    first_day: date
    last_day: date
    professional_ids: list[int]
    by_weekday: dict
    needs_room: bool
    eligible: list[int]
    room: object
    room_ids: list[int]
    closed: set
    busy_lo: datetime  # every occupied range of a possible slot lies inside [busy_lo, busy_hi)
    busy_hi: datetime


def _search_prepare(
    clinic, service, *, professional, room, start, end, now, setup, published
) -> _Search | None:
    """Steps 1-4 of a search, from the agenda's setup: the bounds on a slot's start, the
    candidates and their working hours valid in the range, the rooms, the closed days.
    ``published``: the service's minimum notice and maximum advance apply (patients and
    partners); otherwise only the past is out (reception). None when nothing can be free."""
    if not service.is_active or service.clinic_id != clinic.pk:
        return None
    if professional is not None and (
        professional.clinic_id != clinic.pk or not professional.is_active
    ):
        return None
    if room is not None and (room.clinic_id != clinic.pk or not room.is_active):
        return None

    # Bounds on a slot start s, in microseconds: lo <= s <= hi.
    if published:
        lo = _us(max(start, now + timedelta(minutes=service.min_notice_minutes)))
        hi = min(_us(now + timedelta(days=service.max_advance_days)), _us(end) - 1)
    else:
        lo, hi = _us(max(start, now)), _us(end) - 1
    if lo > hi:
        return None
    duration = service.duration_minutes * _MINUTE
    before = service.buffer_before_minutes * _MINUTE
    after = service.buffer_after_minutes * _MINUTE
    step = max(int(clinic_option(clinic, "slot_step_minutes")), 1) * _MINUTE
    tz = clinic_zone(clinic)
    first_day = _dt(lo).astimezone(tz).date()
    last_day = _dt(hi).astimezone(tz).date()

    # 1-4. From the agenda's setup (kept per process with Redis): the candidates, their
    # working hours valid somewhere in the range, the rooms the service needs when a
    # working interval names none, the days the clinic is closed.
    professional_ids = setup.candidates.get(service.pk, [])
    if professional is not None:
        professional_ids = [professional.pk] if professional.pk in professional_ids else []
    if not professional_ids:
        return None

    wanted = set(professional_ids)
    by_weekday = defaultdict(list)
    interval_rooms = set()
    for pk, weekday, from_time, until_time, room_id, room_active, *valid in setup.hours:
        valid_from, valid_until = valid
        if pk not in wanted:
            continue
        if (valid_from and valid_from > last_day) or (valid_until and valid_until < first_day):
            continue
        if room is not None and room_id is not None and room_id != room.pk:
            continue
        if room_id is not None:
            if not room_active:
                continue  # an inactive room takes no bookings
            interval_rooms.add(room_id)
        by_weekday[weekday].append((pk, from_time, until_time, room_id, *valid))
    if not by_weekday:
        return None

    service_rooms = setup.service_rooms.get(service.pk, [])
    eligible = [pk for pk, active, owner in service_rooms if active and owner == clinic.pk]
    if room is not None:
        eligible = [room.pk] if room.pk in eligible else []

    return _Search(
        service=service,
        lo=lo,
        hi=hi,
        duration=duration,
        before=before,
        after=after,
        step=step,
        tz=tz,
        first_day=first_day,
        last_day=last_day,
        professional_ids=professional_ids,
        by_weekday=by_weekday,
        needs_room=bool(service_rooms),
        eligible=eligible,
        room=room,
        room_ids=sorted(interval_rooms | set(eligible)),
        closed=closed_days(clinic, first_day, last_day, setup=setup),
        busy_lo=_dt(lo - before),
        busy_hi=_dt(hi + duration + after),
    )


def closed_days(clinic, first_day: date, last_day: date, *, setup: AgendaSetup) -> set[date]:
    """The clinic's closed days in ``[first_day, last_day]``: its closures, and the national
    holidays unless it works on them (option ``work_on_holidays``)."""
    closed = set()
    for closure_start, closure_end in setup.closures:
        day = max(closure_start, first_day)
        while day <= min(closure_end, last_day):
            closed.add(day)
            day += timedelta(days=1)
    if not clinic_option(clinic, "work_on_holidays"):
        for year in range(first_day.year, last_day.year + 1):
            closed |= {d for d in _national_holidays(year) if first_day <= d <= last_day}
    return closed


def holiday_name(clinic, day: date) -> str:
    """The national holiday's name on ``day`` when the clinic closes for it, else ""."""
    if clinic_option(clinic, "work_on_holidays"):
        return ""
    language = "pt_BR" if (get_language() or "").lower().startswith("pt") else "en_US"
    return _holiday_names(day.year, language).get(day, "")


@lru_cache(maxsize=32)
def _holiday_names(year: int, language: str) -> dict[date, str]:
    return dict(holidays.country_holidays("BR", years=year, language=language).items())


def _merged(busy: BusyTime) -> dict[int, tuple[list[int], list[int]]]:
    return defaultdict(lambda: ([], []), {pk: _merge(rows) for pk, rows in busy.items()})


def _slots(search: _Search, professional_merged, room_merged) -> list[Slot]:
    """Step 6: walk each working interval of each open day on the grid."""
    lo, hi, step = search.lo, search.hi, search.step
    duration, before, after, tz = search.duration, search.before, search.after, search.tz
    found = set()
    day = search.first_day
    while day <= search.last_day:
        if day not in search.closed:
            for (
                pk,
                from_time,
                until_time,
                interval_room,
                valid_from,
                valid_until,
            ) in search.by_weekday.get(day.weekday(), ()):
                if (valid_from and day < valid_from) or (valid_until and day > valid_until):
                    continue
                if interval_room is not None:
                    # Hours in a room the service cannot use (it needs others): none, as
                    # booking refuses it ("… cannot take place in …").
                    usable = not search.needs_room or interval_room in search.eligible
                    choices = [interval_room] if usable else []
                elif search.needs_room:
                    choices = search.eligible
                elif search.room is not None:
                    continue  # these hours take no room, and only that room was asked for
                else:
                    choices = None
                if choices == []:
                    continue
                interval_start = _us(datetime.combine(day, from_time, tzinfo=tz))
                interval_end = _us(datetime.combine(day, until_time, tzinfo=tz))
                starts, ends = professional_merged[pk]
                for gap_start, gap_end in _gaps(interval_start, interval_end, starts, ends):
                    first = max(gap_start + before, lo)
                    last = min(gap_end - duration - after, hi)
                    if first > last:
                        continue
                    # The first grid point at or after ``first``: ceil division.
                    first = interval_start - (interval_start - first) // step * step
                    for slot_start in range(first, last + 1, step):
                        slot_room = None
                        if choices is not None:
                            occupied = (slot_start - before, slot_start + duration + after)
                            slot_room = next(
                                (r for r in choices if _is_free(*occupied, *room_merged[r])),
                                None,
                            )
                            if slot_room is None:
                                continue
                        found.add((slot_start, pk, slot_room))
        day += timedelta(days=1)

    moments = {}  # many professionals share the same starts: one datetime each
    for slot_start, _pk, _room in found:
        for moment in (slot_start, slot_start + duration):
            if moment not in moments:
                moments[moment] = _dt(moment)
    return [
        Slot(moments[slot_start], moments[slot_start + duration], pk, slot_room)
        for slot_start, pk, slot_room in sorted(
            found, key=lambda f: (f[0], f[1], f[2] is not None, f[2] or 0)
        )
    ]


BusyTime = dict[int, list[tuple[int, int]]]


def _busy_time(
    clinic_id: int,
    *,
    professional_ids: list[int],
    room_ids: list[int],
    lo: datetime,
    hi: datetime,
    professional_appointments: bool,
) -> tuple[BusyTime, BusyTime]:
    """When the professionals and the rooms are busy inside ``[lo, hi)``: their time off
    and their occupying appointments (``professional_appointments=False``: not the
    professionals' appointments) as ``{owner id: [(start, end) in microseconds]}``, for
    the professionals and for the rooms."""
    professional_busy: BusyTime = defaultdict(list)
    room_busy: BusyTime = defaultdict(list)
    appointment_professionals = professional_ids if professional_appointments else []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _busy_time_sql(),
                {
                    "clinic": clinic_id,
                    "professionals": professional_ids,
                    "appointment_professionals": appointment_professionals,
                    "rooms": room_ids,
                    "occupying": list(OCCUPYING_STATUSES),
                    "lo": lo,
                    "hi": hi,
                },
            )
            rows = cursor.fetchall()
    else:  # small agendas, and no exclusion constraint to lean on: the plain filters
        time_off = (
            TimeOff.objects.for_clinic(clinic_id)
            .filter(start__lt=hi, end__gt=lo)
            .filter(Q(professional_id__in=professional_ids) | Q(room_id__in=room_ids))
            .values_list("professional_id", "room_id", "start", "end")
        )
        occupying = Appointment.objects.for_clinic(clinic_id).occupying().overlapping(lo, hi)
        rows = [(*owners, _us(a), _us(b)) for *owners, a, b in time_off]
        if appointment_professionals:
            rows += [
                (pk, None, _us(a), _us(b))
                for pk, a, b in occupying.filter(
                    professional_id__in=appointment_professionals
                ).values_list("professional_id", "occupied_start", "occupied_end")
            ]
        if room_ids:
            rows += [
                (None, pk, _us(a), _us(b))
                for pk, a, b in occupying.filter(room_id__in=room_ids).values_list(
                    "room_id", "occupied_start", "occupied_end"
                )
            ]
    # A time off names a professional, a room or both; an appointment row names its owner.
    for professional_id, room_id, busy_from, busy_until in rows:
        if professional_id is not None:
            professional_busy[professional_id].append((busy_from, busy_until))
        if room_id is not None:
            room_busy[room_id].append((busy_from, busy_until))
    return professional_busy, room_busy


@cache
def _busy_time_sql() -> str:
    """PostgreSQL: the rows of ``_busy_time`` — ``(professional id, room id, start, end)``,
    an appointment naming only its owner — in one statement whose text never changes
    (owners come as arrays), so that PostgreSQL parses and plans it once per connection
    (``prepare_threshold`` in settings) and Python builds nothing per search: composing
    the same queries with the ORM cost more CPU than all the rest of a search.

    The plain overlap filter (``occupied_start < hi AND occupied_end > lo``) is slow on a
    long history: the btree on ``(owner, occupied_start)`` bounds only one side (every
    past appointment starts before ``hi``), and the planner tends to pick an exclusion
    constraint's GiST index on the range alone, which walks the whole index. Those
    constraints also guarantee that an owner's occupying appointments never overlap, so
    at most one of them starts before ``lo`` and still runs at ``lo``: the last one to
    start before ``lo``. Hence, for professionals and for rooms: the appointments starting
    inside ``[lo, hi)`` (a bounded index range) plus, per owner, that last one (a one-row
    backward index probe, LATERAL) when it ends after ``lo``. Times are microseconds since
    the epoch: integers are what the interval arithmetic wants, and no datetime is built
    per row."""
    appointments = connection.ops.quote_name(Appointment._meta.db_table)
    time_off = connection.ops.quote_name(TimeOff._meta.db_table)
    occupying = "clinic_id = %(clinic)s AND status = ANY(%(occupying)s::text[])"

    def us(column: str) -> str:
        return f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint"

    def occupied(owner_column: str, owners: str) -> str:
        def named(owner: str) -> str:  # the (professional, room) of a row: one is NULL
            return f"{owner}, NULL" if owner_column == "professional_id" else f"NULL, {owner}"

        return f"""
        SELECT {named(owner_column)}, {us("occupied_start")}, {us("occupied_end")}
          FROM {appointments}
         WHERE {occupying} AND {owner_column} = ANY({owners}::bigint[])
           AND occupied_start >= %(lo)s AND occupied_start < %(hi)s
        UNION ALL
        SELECT {named("owner.id")}, {us("last.occupied_start")}, {us("last.occupied_end")}
          FROM unnest({owners}::bigint[]) AS owner(id)
         CROSS JOIN LATERAL (
                SELECT occupied_start, occupied_end FROM {appointments}
                 WHERE {occupying} AND {owner_column} = owner.id AND occupied_start < %(lo)s
                 ORDER BY occupied_start DESC LIMIT 1
               ) AS last
         WHERE last.occupied_end > %(lo)s"""  # noqa: S608 - our names; values are parameters

    professionals = occupied("professional_id", "%(appointment_professionals)s")
    rooms = occupied("room_id", "%(rooms)s")
    return f"""
        SELECT professional_id, room_id, {us("start")}, {us('"end"')}
          FROM {time_off}
         WHERE clinic_id = %(clinic)s AND start < %(hi)s AND "end" > %(lo)s
           AND (professional_id = ANY(%(professionals)s::bigint[])
                OR room_id = ANY(%(rooms)s::bigint[]))
        UNION ALL {professionals}
        UNION ALL {rooms}"""  # noqa: S608 - table and column names of ours, values as parameters


@lru_cache(maxsize=32)
def _national_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("BR", years=year))


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _merge(intervals: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, merged busy intervals as two parallel lists (starts, ends); both sorted."""
    starts: list[int] = []
    ends: list[int] = []
    for busy_start, busy_end in sorted(intervals):
        if ends and busy_start <= ends[-1]:
            ends[-1] = max(ends[-1], busy_end)
        else:
            starts.append(busy_start)
            ends.append(busy_end)
    return starts, ends


def _gaps(lo: int, hi: int, starts: list[int], ends: list[int]):
    """The free parts of ``[lo, hi)`` between merged busy intervals."""
    i = bisect_right(ends, lo)  # the first busy interval ending after lo
    cursor = lo
    while i < len(starts) and starts[i] < hi:
        if starts[i] > cursor:
            yield cursor, starts[i]
        cursor = max(cursor, ends[i])
        i += 1
    if cursor < hi:
        yield cursor, hi


def _is_free(lo: int, hi: int, starts: list[int], ends: list[int]) -> bool:
    i = bisect_right(ends, lo)
    return i == len(starts) or starts[i] >= hi
