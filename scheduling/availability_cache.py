"""A versioned cache of the partner API's availability answers (``/api/v1/availability``).

An answer is kept under a key made of the clinic's **availability version**, the clinic *as
loaded* (a fingerprint of all its fields: time zone, scheduling options …) and the query
string. The version is a random token per clinic, replaced after the commit of every change
to what an answer reads from the database: appointments, working hours, time off, closures,
services (and who performs them, which rooms they use), professionals and rooms (model
signals, wired in ``SchedulingConfig.ready``). Why this is exact:

- The version is read *before* the request reads anything from the database (the service
  and professional it validates included). A change that commits after that read replaces
  the version afterwards, so the answer lands under a version nobody reads any more; a
  request that reads the new version started after the commit and sees the change.
- The clinic comes with the cached API key and may be a little older than the version: it
  is part of the key, so a stale clinic only ever meets the answer computed from it.
- Time: an answer computed at ``now0`` is kept only for windows ending within the service's
  maximum advance at ``now0`` (the far bound then does not move with the clock), and its
  slots are filtered again by the minimum notice when served — which is what a fresh search
  gives, since slots sit on a fixed grid.

Writes that bypass model signals (``queryset.update()``, ``bulk_create``, raw SQL) must call
:func:`availability_changed`; entries also expire after ``TTL_SECONDS``. The cache is used
only when it is shared by every process (Redis: ``REDIS_URL``); a per-process memory cache
could not see another process's changes.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from .availability import Slot, _us

#: How long an answer is kept (a safety net: versions make answers stale, not time).
TTL_SECONDS = 60
#: Answers with more slots than this are not kept (a month of "anyone" is large).
MAX_CACHED_SLOTS = 5000


def cache_enabled() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def _version_name(clinic_id: int) -> str:
    return f"availability-version:{clinic_id}"


def availability_version(clinic_id: int) -> str:
    """The clinic's current token (a new one if none is kept: entries of a forgotten
    version can never match it)."""
    name = _version_name(clinic_id)
    version = cache.get(name)
    if version is None:
        cache.add(name, uuid.uuid4().hex, None)
        version = cache.get(name)
    return version


def availability_changed(clinic_id: int | None) -> None:
    """Something an answer reads changed for this clinic: its cached answers are dropped
    (now, and again after the commit — see the module's docstring)."""
    if clinic_id is None:
        return

    def bump():
        cache.set(_version_name(clinic_id), uuid.uuid4().hex, None)

    bump()
    transaction.on_commit(bump)


def _fingerprint(obj) -> str:
    values = tuple(
        (field.attname, getattr(obj, field.attname)) for field in obj._meta.concrete_fields
    )
    return hashlib.sha256(repr(values).encode()).hexdigest()[:20]


def availability_answer_get(*, clinic, params) -> tuple[str | None, list | None]:
    """Before anything else is read: ``(name, results)``, where ``results`` is the kept
    answer to this query string (filtered for the current time) or ``None``, and ``name``
    is where to keep a fresh answer (``None``: not cached)."""
    if clinic is None or not cache_enabled():
        return None, None
    version = availability_version(clinic.pk)
    name = (
        "availability:"
        + hashlib.sha256(
            repr((clinic.pk, version, _fingerprint(clinic), sorted(params.lists()))).encode()
        ).hexdigest()
    )
    kept = cache.get(name)
    if kept is None:
        return name, None
    from django.utils import timezone

    earliest = max(kept["start"], _us(timezone.now()) + kept["notice"])
    return name, [row for slot_start, row in kept["rows"] if slot_start >= earliest]


def availability_answer_set(
    name: str | None,
    *,
    service,
    start: datetime,
    end: datetime,
    now: datetime,
    slots: list[Slot],
    results: list,
) -> None:
    """Keep a fresh answer, computed at ``now`` (``results``: ``slots`` serialized)."""
    if name is None or len(slots) > MAX_CACHED_SLOTS:
        return
    if end > now + timedelta(days=service.max_advance_days):
        return  # its far bound moves with the clock
    kept = {
        "start": _us(start),
        "notice": service.min_notice_minutes * 60_000_000,
        "rows": [(_us(slot.start), row) for slot, row in zip(slots, results, strict=True)],
    }
    cache.set(name, kept, TTL_SECONDS)


# --- What changes availability ---------------------------------------------------------------
def _changed(sender, instance, **kwargs) -> None:
    availability_changed(getattr(instance, "clinic_id", None))


def _performers_or_rooms_changed(sender, instance, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        availability_changed(getattr(instance, "clinic_id", None))


def connect_signals() -> None:
    """Called from ``SchedulingConfig.ready``."""
    from clinic.models import Professional, Room

    from .models import Appointment, ClinicClosure, Service, TimeOff, WorkingHours

    for model in (Appointment, WorkingHours, TimeOff, ClinicClosure, Service, Professional, Room):
        uid = f"availability-cache-{model._meta.label_lower}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{uid}-delete")
    for through in (Service.professionals.through, Service.rooms.through):
        m2m_changed.connect(
            _performers_or_rooms_changed,
            sender=through,
            dispatch_uid=f"availability-cache-{through._meta.label_lower}",
        )
