"""A clinic's time zone: every date a person sees or types is in it (DESIGN.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone


def clinic_zone(clinic: Any) -> ZoneInfo:
    """The time zone of ``clinic`` (anything with a ``time_zone`` name, e.g. a Clinic)."""
    return ZoneInfo(clinic.time_zone)


def clinic_today(clinic: Any, now: datetime | None = None) -> date:
    """The date it is at the clinic at ``now`` (default: this moment)."""
    return timezone.localdate(now or timezone.now(), clinic_zone(clinic))
