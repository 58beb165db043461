"""The agenda's setup, as availability searches read it: who performs each service, the
working hours, the rooms each service uses and the clinic's closures, plus (when asked) the
active services and professionals. It changes rarely, and every search needs it.

:func:`agenda_setup` loads it in four queries. With Redis it is kept in each process under
the clinic's **setup version**, a random token replaced (now, and again after the commit)
whenever any of it changes: working hours, closures, services and whom or which rooms they
use, professionals, rooms (model signals, wired in ``SchedulingConfig.ready`` through
``availability_cache``). A search reads the version first (one round trip, shared with the
answer cache in the partner API) and loads the setup only when the version is not the one
it was kept under (or after ``MAX_AGE_SECONDS``): the same argument as the answer cache's
makes it exact (``scheduling/availability_cache.py``). Only a setup read outside any
transaction is kept (a rolled-back change replaces no version). Without Redis every search
loads it.

The setup is shared by the requests of a process: read it, never change it (nor the model
instances in it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from datetime import time as clock_time
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction

from clinic.kernel.redis import StateUnavailable, state_get_many, state_set
from clinic.models import Professional

from .models import ClinicClosure, Service, WorkingHours

#: Clinics whose setup a process keeps (the least recently loaded goes first).
MAX_KEPT = 256
#: A kept setup is loaded again after this long even when its version stands (a safety net,
#: as for cached answers: a change made while Redis did not answer replaced no version).
MAX_AGE_SECONDS = 60


# --- Versions: random tokens in Redis, replaced by every change ----------------------------
def cache_enabled() -> bool:
    """Versions need a store every process shares (Redis: ``REDIS_URL``)."""
    return bool(getattr(settings, "REDIS_URL", ""))


def setup_version_name(clinic_id: int) -> str:
    return f"cuidar:agenda-setup-version:{clinic_id}"


def version_current(name: str, kept: str | None) -> str:
    """The token under ``name``: ``kept`` (as just read), or a new one if none is kept
    (what was kept under a forgotten token can never match it)."""
    if kept is not None:
        return kept
    state_set(name, uuid.uuid4().hex, None, only_if_missing=True)
    return state_get_many([name])[0]


def versions_replace(names: list[str]) -> None:
    """New tokens under ``names``, now and again after the commit of the current
    transaction (a reader between the two saw the old rows under the first new token)."""

    def replace():
        for name in names:
            try:
                state_set(name, uuid.uuid4().hex, None)
            except StateUnavailable:  # logged; what is kept expires or is reloaded
                return

    replace()
    transaction.on_commit(replace)


def setup_version(clinic_id: int) -> str | None:
    """The clinic's setup token; ``None`` without Redis or when it does not answer."""
    if not cache_enabled():
        return None
    name = setup_version_name(clinic_id)
    try:
        return version_current(name, state_get_many([name])[0])
    except StateUnavailable:
        return None


#: ``(professional, weekday, start time, end time, room, room active, valid from, valid until)``
HoursRow = tuple[
    int, int, clock_time, clock_time, int | None, bool | None, date | None, date | None
]


HOURS_COLUMNS = (
    *("professional_id", "weekday", "start_time", "end_time", "room_id", "room__is_active"),
    *("valid_from", "valid_until"),
)


@dataclass(eq=False)
class AgendaSetup:
    clinic_id: int
    #: Service → every professional it names (none: anyone may perform it, for booking).
    performers: dict[int, frozenset[int]]
    #: Service → the active professionals of the clinic who perform it, by id.
    candidates: dict[int, list[int]]
    #: The clinic's working hours, by start time then id.
    hours: list[HoursRow]
    #: Service → its rooms ``(room, active, clinic)`` by name then id.
    service_rooms: dict[int, list[tuple[int, bool, int]]]
    #: The clinic's closures ``(first day, last day)``.
    closures: list[tuple[date, date]]

    def performs(self, service_id: int, professional_id: int) -> bool:
        """As ``appointment_book`` decides: a service naming nobody is performed by anyone."""
        named = self.performers.get(service_id, frozenset())
        return professional_id in named or not named

    @cached_property
    def services(self) -> dict[int, Service]:
        """The clinic's active services, by id (loaded on first use)."""
        active = Service.objects.for_clinic(self.clinic_id).filter(is_active=True)
        return {service.pk: service for service in active}

    @cached_property
    def professionals(self) -> dict[int, Professional]:
        """The clinic's active professionals, by id (loaded on first use)."""
        active = Professional.objects.for_clinic(self.clinic_id).filter(is_active=True)
        return {professional.pk: professional for professional in active}


def agenda_setup_load(clinic_id: int) -> AgendaSetup:
    """The setup as the database has it now (four queries)."""
    performers: dict[int, set[int]] = defaultdict(set)
    candidates: dict[int, list[int]] = defaultdict(list)
    for service_id, professional_id, active, owner in (
        Service.professionals.through.objects.filter(service__clinic_id=clinic_id)
        .order_by("professional_id")
        .values_list(
            "service_id", "professional_id", "professional__is_active", "professional__clinic_id"
        )
    ):
        performers[service_id].add(professional_id)
        if active and owner == clinic_id:
            candidates[service_id].append(professional_id)
    hours = list(
        WorkingHours.objects.for_clinic(clinic_id)
        .order_by("start_time", "pk")
        .values_list(*HOURS_COLUMNS)
    )
    service_rooms: dict[int, list[tuple[int, bool, int]]] = defaultdict(list)
    for service_id, room_id, active, owner in (
        Service.rooms.through.objects.filter(service__clinic_id=clinic_id)
        .order_by("room__name", "room_id")
        .values_list("service_id", "room_id", "room__is_active", "room__clinic_id")
    ):
        service_rooms[service_id].append((room_id, active, owner))
    closures = list(
        ClinicClosure.objects.for_clinic(clinic_id).values_list("start_date", "end_date")
    )
    return AgendaSetup(
        clinic_id=clinic_id,
        performers={pk: frozenset(ids) for pk, ids in performers.items()},
        candidates=dict(candidates),
        hours=hours,
        service_rooms=dict(service_rooms),
        closures=closures,
    )


_kept: dict[int, tuple[str, float, AgendaSetup]] = {}
_keeping = threading.Lock()
_UNREAD = object()


def agenda_setup(clinic_id: int, *, version=_UNREAD) -> AgendaSetup:
    """The clinic's setup: this process's copy while the clinic's setup version is the one
    it was loaded under, else loaded now. ``version``: the setup version if the caller has
    read it already (``None``: no Redis)."""
    if version is _UNREAD:
        version = setup_version(clinic_id)
    now = time.monotonic()
    if version is not None:
        kept_version, loaded_at, setup = _kept.get(clinic_id, (None, 0.0, None))
        if kept_version == version and now - loaded_at < MAX_AGE_SECONDS:
            return setup
    setup = agenda_setup_load(clinic_id)
    # Only a setup read outside any transaction is kept: inside one, the rows read may be the
    # transaction's own changes, which a rollback takes back without replacing the version.
    if version is not None and not connection.in_atomic_block:
        with _keeping:  # threaded workers: one writer at a time (reads need no lock)
            _kept.pop(clinic_id, None)
            while len(_kept) >= MAX_KEPT:
                _kept.pop(next(iter(_kept)))
            _kept[clinic_id] = (version, now, setup)
    return setup
