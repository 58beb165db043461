"""Recurring series: the plan of every occurrence with its clashes, and booking it all or
nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Patient, Professional, Room

from ..choices import Channel
from ..exceptions import (
    SchedulingError,
    SeriesClash,
    SlotUnavailable,
)
from ..models import (
    Appointment,
    RecurrenceSeries,
    Service,
)
from .appointments import appointment_book
from .common import _conflicts, _free_room, _occupied, _same_clinic

MAX_SERIES_OCCURRENCES = 104  # two years of weekly sessions


# --- Recurring series -----------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesOccurrence:
    start: datetime
    end: datetime
    conflicts: list[str] = field(default_factory=list)

    @property
    def free(self) -> bool:
        return not self.conflicts


def _series_starts(
    clinic: Clinic, first_start: datetime, interval_weeks: int, occurrences, until
) -> list[datetime]:
    """Same local wall-clock time every N weeks (DST-proof), by count or until a date."""
    if not occurrences and not until:
        raise SchedulingError(_("Say how many sessions, or until which date."))
    if interval_weeks < 1:
        raise SchedulingError(_("The interval must be at least one week."))
    zone = clinic_zone(clinic)
    local = first_start.astimezone(zone)
    starts = []
    k = 0
    while len(starts) < MAX_SERIES_OCCURRENCES:
        day = local.date() + timedelta(weeks=k * interval_weeks)
        if until and day > until:
            break
        starts.append(datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone))
        k += 1
        if occurrences and len(starts) >= occurrences:
            break
    return starts


def series_plan(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    service: Service,
    first_start: datetime,
    interval_weeks: int = 1,
    occurrences: int | None = None,
    until: date | None = None,
    room: Room | None = None,
) -> list[SeriesOccurrence]:
    """Every occurrence of a series, each with what clashes (empty when free)."""
    _same_clinic(clinic, patient, professional, service, room)
    plan = []
    for start in _series_starts(clinic, first_start, interval_weeks, occurrences, until):
        end, occupied_start, occupied_end = _occupied(service, start)
        chosen = room or _free_room(
            clinic=clinic, service=service, occupied_start=occupied_start, occupied_end=occupied_end
        )
        conflicts = _conflicts(
            clinic_id=clinic.pk,
            professional_id=professional.pk,
            room_id=chosen.pk if chosen else None,
            patient_id=patient.pk,
            occupied_start=occupied_start,
            occupied_end=occupied_end,
        )
        plan.append(SeriesOccurrence(start=start, end=end, conflicts=conflicts))
    return plan


@transaction.atomic
def series_book(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    service: Service,
    first_start: datetime,
    interval_weeks: int = 1,
    occurrences: int | None = None,
    until: date | None = None,
    room: Room | None = None,
    skip=(),
    booked_via: str = Channel.RECEPTION,
    booked_by=None,
) -> tuple[RecurrenceSeries, list[Appointment]]:
    """Book a whole series, checked first: every occurrence not in ``skip`` must be free,
    else ``SeriesClash`` lists the dates that clash and nothing is booked."""
    skip = {s.astimezone(ZoneInfo("UTC")) for s in skip}
    plan = series_plan(
        clinic=clinic,
        patient=patient,
        professional=professional,
        service=service,
        first_start=first_start,
        interval_weeks=interval_weeks,
        occurrences=occurrences,
        until=until,
        room=room,
    )
    wanted = [o for o in plan if o.start.astimezone(ZoneInfo("UTC")) not in skip]
    clashes = [o for o in wanted if not o.free]
    if clashes:
        raise SeriesClash(
            _("Some dates of the series are taken: choose to skip them or cancel."),
            clashes=clashes,
        )
    if not wanted:
        raise SchedulingError(_("Every date of the series was skipped: nothing to book."))
    series = RecurrenceSeries.objects.create(
        clinic=clinic,
        interval_weeks=interval_weeks,
        occurrences=occurrences,
        until=until,
        created_by=booked_by,
    )
    booked = []
    for occurrence in wanted:
        try:
            booked.append(
                appointment_book(
                    clinic=clinic,
                    patient=patient,
                    professional=professional,
                    service=service,
                    start=occurrence.start,
                    room=room,
                    booked_via=booked_via,
                    booked_by=booked_by,
                    series=series,
                )
            )
        except SlotUnavailable as exc:  # taken since the plan: all or nothing
            raise SeriesClash(
                _("A date of the series was taken meanwhile: check again."),
                clashes=[SeriesOccurrence(occurrence.start, occurrence.end, exc.conflicts)],
            ) from None
    return series, booked
