"""A versioned cache of the partner API's availability answers (``/api/v1/availability``).

An answer is kept with the clinic's **availability version** it was computed under, under a
name made of the clinic *as loaded* (a fingerprint of all its fields: time zone, scheduling
options …) and the query string; it is served only while the clinic's version is still
that one. The version is a random token per clinic, replaced after the commit of every
change to what an answer reads from the database: appointments, working hours, time off,
closures, services (and who performs them, which rooms they use), professionals and rooms
(model signals, wired in ``SchedulingConfig.ready``). Changes to the agenda's setup (all of
those but appointments and time off) also replace the clinic's setup version, under which
each process keeps the setup (``agenda_setup.py``). Both versions and the answer are read in
one round trip. Why this is exact:

- The version is read *before* the request reads anything from the database (the service
  and professional it validates included). A change that commits after that read replaces
  the version afterwards, so the answer is kept with a version that is no longer current
  and is never served; a request that reads the new version started after the commit and
  sees the change.
- The clinic comes with the cached API key and may be a little older than the version: it
  is part of the key, so a stale clinic only ever meets the answer computed from it.
- Time: an answer computed at ``now0`` is kept only for windows ending within the service's
  maximum advance at ``now0`` (the far bound then does not move with the clock), and its
  slots are filtered again by the minimum notice when served — which is what a fresh search
  gives, since slots sit on a fixed grid.

Writes that bypass model signals (``queryset.update()``, ``bulk_create``, raw SQL) must call
:func:`availability_changed`; entries also expire after ``TTL_SECONDS``. The cache is used
only when it is shared by every process (Redis: ``REDIS_URL``); a per-process memory cache
could not see another process's changes. Redis not answering means no cache: every search
is computed (and a version that could not be replaced leaves answers and kept setups at
most ``TTL_SECONDS`` old; no booking ever trusts an answer: ``appointment_book`` searches
again, and the exclusion constraints stand behind it).
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta

from django.db.models.signals import m2m_changed, post_delete, post_save

from clinic.kernel.redis import StateUnavailable, state_get_many, state_set

from .agenda_setup import cache_enabled, setup_version_name, version_current, versions_replace
from .availability import Slot, _us

#: How long an answer is kept (a safety net: versions make answers stale, not time).
TTL_SECONDS = 60
#: Answers with more slots than this are not kept (a month of "anyone" is large).
MAX_CACHED_SLOTS = 5000


def _version_name(clinic_id: int) -> str:
    return f"cuidar:availability-version:{clinic_id}"


def availability_version(clinic_id: int) -> str | None:
    """The clinic's current token; ``None`` when Redis does not answer."""
    name = _version_name(clinic_id)
    try:
        return version_current(name, state_get_many([name])[0])
    except StateUnavailable:
        return None


def availability_changed(clinic_id: int | None) -> None:
    """Something a search reads changed for this clinic, behind the model signals' back:
    kept setups and cached answers are dropped (now, and again after the commit)."""
    if clinic_id is not None and cache_enabled():
        versions_replace([setup_version_name(clinic_id), _version_name(clinic_id)])


def _answers_changed(clinic_id: int | None) -> None:
    """Appointments or time off changed: cached answers are dropped, the setup stands."""
    if clinic_id is not None and cache_enabled():
        versions_replace([_version_name(clinic_id)])


def _fingerprint(obj) -> str:
    values = tuple(
        (field.attname, getattr(obj, field.attname)) for field in obj._meta.concrete_fields
    )
    return hashlib.sha256(repr(values).encode()).hexdigest()[:20]


def availability_answer_get(*, clinic, params) -> tuple[tuple | None, list | None, str | None]:
    """Before anything else is read: ``(place, results, setup version)``, where
    ``results`` is the kept answer to this query string (filtered for the current time) or
    ``None``, ``place`` is where to keep a fresh answer (``None``: not cached), and the
    clinic's setup version is for :func:`~scheduling.agenda_setup.agenda_setup` (all three
    in one round trip)."""
    if clinic is None or not cache_enabled():
        return None, None, None
    name = (
        "cuidar:availability:"
        + hashlib.sha256(
            repr((clinic.pk, _fingerprint(clinic), sorted(params.lists()))).encode()
        ).hexdigest()
    )
    version_name, setup_name = _version_name(clinic.pk), setup_version_name(clinic.pk)
    try:
        version, kept, setup = state_get_many([version_name, name, setup_name])
        version = version_current(version_name, version)
        setup = version_current(setup_name, setup)
    except StateUnavailable:
        return None, None, None
    if kept is None or kept["version"] != version:
        return (name, version), None, setup
    from django.utils import timezone

    earliest = max(kept["start"], _us(timezone.now()) + kept["notice"])
    return (name, version), [row for s, row in kept["rows"] if s >= earliest], setup


def availability_answer_set(
    place: tuple | None,
    *,
    service,
    start: datetime,
    end: datetime,
    now: datetime,
    slots: list[Slot],
    results: list,
) -> None:
    """Keep a fresh answer, computed at ``now`` (``results``: ``slots`` serialized)."""
    if place is None or len(slots) > MAX_CACHED_SLOTS:
        return
    if end > now + timedelta(days=service.max_advance_days):
        return  # its far bound moves with the clock
    name, version = place
    kept = {
        "version": version,
        "start": _us(start),
        "notice": service.min_notice_minutes * 60_000_000,
        "rows": [(_us(slot.start), row) for slot, row in zip(slots, results, strict=True)],
    }
    with contextlib.suppress(StateUnavailable):  # logged; the next search computes again
        state_set(name, kept, TTL_SECONDS)


# --- What changes availability ---------------------------------------------------------------
def _changed(sender, instance, **kwargs) -> None:
    _answers_changed(getattr(instance, "clinic_id", None))


def _setup_changed(sender, instance, **kwargs) -> None:
    availability_changed(getattr(instance, "clinic_id", None))


def _performers_or_rooms_changed(sender, instance, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        availability_changed(getattr(instance, "clinic_id", None))


def connect_signals() -> None:
    """Called from ``SchedulingConfig.ready``."""
    from clinic.models import Professional, Room

    from .models import Appointment, ClinicClosure, Service, TimeOff, WorkingHours

    for model in (Appointment, TimeOff):
        uid = f"availability-cache-{model._meta.label_lower}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{uid}-delete")
    for model in (WorkingHours, ClinicClosure, Service, Professional, Room):
        uid = f"availability-cache-{model._meta.label_lower}"
        post_save.connect(_setup_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(_setup_changed, sender=model, dispatch_uid=f"{uid}-delete")
    for through in (Service.professionals.through, Service.rooms.through):
        m2m_changed.connect(
            _performers_or_rooms_changed,
            sender=through,
            dispatch_uid=f"availability-cache-{through._meta.label_lower}",
        )
