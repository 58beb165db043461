"""Who may read what of the clinical record (SBIS NGS1.03 access profiles).

- Administrative staff (reception, managers, clinic administrators without a professional
  profile) see that an encounter exists — date, professional, service — never its content.
- A professional (a staff member linked to an active Professional of the clinic) reads the
  record of the patients in their care: an encounter with them, or an appointment with them
  (scheduling tells through the ``care_relationship`` plug-in point: the record never
  imports scheduling).
- Any other professional of the clinic must "break the glass" with a written reason
  (:func:`clinic.records.services.break_glass`), which is audited and told to the clinical
  director; the access lasts ``BREAK_GLASS_HOURS``.
- Entries flagged confidential (psychotherapy notes) are shown to their author only.
- Everything is within one clinic. Cuidar has no "organization" above clinics: two units
  of one group are two clinics, and a member of both works in one at a time, so another
  unit sees nothing of this one (sharing would need the patient's consent, which the
  record does not model yet).

Callers audit every read of content (``clinic.records.audit``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from clinic.models import Membership, Patient, Professional

from .models import BreakGlass, Encounter

BREAK_GLASS_HOURS = 4


class Level(enum.IntEnum):
    NONE = 0  # another clinic, or not a member: not even existence
    EXISTENCE = 1  # date, professional, service
    BREAK_GLASS = 2  # existence, and may break the glass
    CONTENT = 3


@dataclass(frozen=True)
class RecordAccess:
    level: Level
    professional: Professional | None = None
    via: str = ""  # "care" or "break_glass" when level is CONTENT

    @property
    def reads_content(self) -> bool:
        return self.level == Level.CONTENT

    @property
    def sees_existence(self) -> bool:
        return self.level >= Level.EXISTENCE


_care_checks: list[Callable[[Professional, Patient], bool]] = []


def care_relationship(check: Callable[[Professional, Patient], bool]):
    """Plug-in point: ``check(professional, patient)`` says whether the patient is in the
    professional's care by something the record does not know (an appointment)."""
    _care_checks.append(check)
    return check


def professional_of(user, clinic) -> Professional | None:
    """The user's active professional profile in ``clinic`` (with an active membership)."""
    if not getattr(user, "is_authenticated", False) or clinic is None:
        return None
    return (
        Professional.objects.filter(clinic=clinic, user=user, is_active=True)
        .filter(clinic__memberships__user=user, clinic__memberships__is_active=True)
        .first()
    )


def _is_member(user, clinic) -> bool:
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, clinic=clinic, is_active=True).exists()


def in_care(professional: Professional, patient: Patient) -> bool:
    if Encounter.objects.filter(
        clinic_id=patient.clinic_id, patient=patient, professional=professional
    ).exists():
        return True
    return any(check(professional, patient) for check in _care_checks)


def record_access(*, user, clinic, patient: Patient) -> RecordAccess:
    """What ``user``, working in ``clinic``, may see of ``patient``'s record."""
    if (
        clinic is None
        or patient.clinic_id != clinic.pk
        or not getattr(user, "is_authenticated", False)
        or not user.is_active
        or not _is_member(user, clinic)
    ):
        return RecordAccess(Level.NONE)
    professional = professional_of(user, clinic)
    if professional is None:
        return RecordAccess(Level.EXISTENCE)
    if in_care(professional, patient):
        return RecordAccess(Level.CONTENT, professional, "care")
    if BreakGlass.objects.filter(
        clinic=clinic, user=user, patient=patient, expires_at__gt=timezone.now()
    ).exists():
        return RecordAccess(Level.CONTENT, professional, "break_glass")
    return RecordAccess(Level.BREAK_GLASS, professional)


def entry_visible(entry, user) -> bool:
    """A confidential entry is its author's only."""
    return not entry.confidential or entry.author_id == user.pk
