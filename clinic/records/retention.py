"""Retention of the clinical record: nothing clinical is deleted automatically; it is kept 20
years after the patient's last entry (Lei 13.787/2018 art. 6; CFM 1.821/2007 art. 7), and
then listed for a documented review — never eliminated by the system.

Interface (issue 20):

- ``entry_source(fn)``: registers where clinical entries live. ``fn(*, clinic,
  patient_ids=None) -> Iterable[tuple[patient_id, date]]`` yields, for the patients of
  ``clinic`` (a Clinic or its id; only ``patient_ids`` when given) with at least one
  clinical entry, the date of
  their last entry (as stored, in the clinic's day). The encounters (i20-core) register one;
  attachments or imported records may register more — the latest date of all wins.
- ``last_entry_dates(clinic, *, patient_ids=None) -> dict[patient_id, date]``.
- ``retention_until(last) -> date``: the day the record may first be eliminated.
- ``records_past_retention(clinic, *, today=None) -> list[PastRetention]``: patients whose
  last entry is older than 20 years, oldest first (the report of ``manage.py
  records_retention_report``).
- A retention hold (``clinic.privacy.retention_hold``): a deletion request of a patient
  with clinical entries keeps the record and records the legal basis on the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from django.utils import formats, timezone
from django.utils.translation import gettext

from clinic.models import Patient
from clinic.privacy import retention_hold

#: Lei 13.787/2018 art. 6 and CFM 1.821/2007 art. 7: 20 years from the last entry.
RETENTION_YEARS = 20

_SOURCES: list[Callable[..., Iterable[tuple[int, date]]]] = []


def entry_source(fn):
    """Register ``fn`` as a source of last clinical entries (see the module docstring)."""
    if fn not in _SOURCES:
        _SOURCES.append(fn)
    return fn


def last_entry_dates(clinic, *, patient_ids=None) -> dict[int, date]:
    """``{patient_id: date of the last clinical entry}`` in ``clinic``, from every source."""
    latest: dict[int, date] = {}
    for source in _SOURCES:
        for patient_id, when in source(clinic=clinic, patient_ids=patient_ids):
            day = when.date() if hasattr(when, "date") and callable(when.date) else when
            if patient_id not in latest or day > latest[patient_id]:
                latest[patient_id] = day
    return latest


def retention_until(last: date) -> date:
    """20 years after ``last`` (29 February falls on 28 February)."""
    try:
        return last.replace(year=last.year + RETENTION_YEARS)
    except ValueError:
        return last.replace(year=last.year + RETENTION_YEARS, day=28)


@dataclass(frozen=True)
class PastRetention:
    patient_id: int
    last_entry: date
    kept_until: date


def records_past_retention(clinic, *, today: date | None = None) -> list[PastRetention]:
    """Patients of ``clinic`` whose record is past its 20 years, oldest last entry first.
    Listing is all this does: elimination is a documented human decision."""
    today = today or timezone.localdate()
    rows = [
        PastRetention(patient_id, last, retention_until(last))
        for patient_id, last in last_entry_dates(clinic).items()
        if retention_until(last) <= today
    ]
    return sorted(rows, key=lambda r: (r.last_entry, r.patient_id))


@retention_hold("clinical_record")
def clinical_record_hold(patient: Patient) -> str | None:
    """The legal basis for keeping ``patient``'s clinical record, if they have one."""
    last = last_entry_dates(patient.clinic_id, patient_ids=[patient.pk]).get(patient.pk)
    if last is None:
        return None
    return gettext(
        "The clinical record is kept: Lei 13.787/2018 (art. 6) and CFM Resolution 1.821/2007 "
        "(art. 7) require keeping it for 20 years after the last entry (last entry on "
        "%(last)s; kept at least until %(until)s)."
    ) % {
        "last": formats.date_format(last, "SHORT_DATE_FORMAT"),
        "until": formats.date_format(retention_until(last), "SHORT_DATE_FORMAT"),
    }
