"""Shared reads of the clinic app (admin, portal, API and KPIs use the same queries)."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from .choices import ConsentStatus
from .models import Clinic, Consent, Patient, search_normalize
from .validators import cpf_normalize

_DIGITS = re.compile(r"\d")


def clinics_at_local_hours(
    *, hours: Collection[int] | None, now: datetime | None = None
) -> QuerySet[Clinic]:
    """The active clinics, by id; with ``hours``, only those where it is now one of these
    hours of the day in their own time zone.

    The daily jobs (reminders at 08:00 and 18:00, birthdays, dunning …) run every hour and
    each serves the clinics whose local time it is: a clinic in Manaus is reminded at its
    18:00, an hour after one in São Paulo (DESIGN.md: times are the clinic's local time)."""
    clinics = Clinic.objects.filter(is_active=True).order_by("pk")
    if hours is None:
        return clinics
    now = now or timezone.now()
    zones = clinics.order_by().values_list("time_zone", flat=True).distinct()
    return clinics.filter(
        time_zone__in=[zone for zone in zones if now.astimezone(ZoneInfo(zone)).hour in hours]
    )


def patient_search(*, clinic: Clinic | None, term: str, queryset: QuerySet | None = None):
    """Patients of a clinic matching what a receptionist typed: part of the name (accents
    and case ignored), a CPF with or without punctuation, or part of a phone number.

    ``clinic=None`` searches the given queryset as it is (a superuser viewing all clinics).
    """
    qs = queryset if queryset is not None else Patient.objects.for_clinic(clinic)
    term = (term or "").strip()
    if not term:
        return qs
    condition = Q()
    for word in search_normalize(term).split():
        condition &= Q(search_name__contains=word)
    digits = "".join(_DIGITS.findall(term))
    if digits and len(digits) >= 3 and not re.search(r"[^\d\s().\-+/]", term):
        # Only digits and punctuation: a CPF or a phone, typed any way.
        condition = Q(cpf__startswith=cpf_normalize(digits)) | Q(phone__contains=digits)
    return qs.filter(condition)


def consent_current(*, patient: Patient, channel: str, purpose: str) -> Consent | None:
    """The decision in force for a channel and purpose: the latest one recorded."""
    return (
        Consent.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient, channel=channel, purpose=purpose)
        .order_by("-recorded_at", "-pk")
        .first()
    )


def consent_is_granted(*, patient: Patient, channel: str, purpose: str) -> bool:
    consent = consent_current(patient=patient, channel=channel, purpose=purpose)
    return consent is not None and consent.status == ConsentStatus.GRANTED


def clinic_dashboard(*, clinic: Clinic | None) -> dict:
    """Figures for the admin index. Later apps add today's agenda, payments, the unanswered
    messages and alerts (``config.admin``)."""
    from .models import Professional, Room

    if clinic is None:
        return {"clinic": None}
    return {
        "clinic": clinic,
        "patients": Patient.objects.for_clinic(clinic).count(),
        "professionals": Professional.objects.for_clinic(clinic).filter(is_active=True).count(),
        "rooms": Room.objects.for_clinic(clinic).filter(is_active=True).count(),
    }


def consents_in_force(*, patient: Patient) -> dict[tuple[str, str], Consent]:
    """(channel, purpose) → the latest decision recorded (consents are append-only: the
    newest row is the one in force), in one query."""
    in_force: dict[tuple[str, str], Consent] = {}
    rows = (
        Consent.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-recorded_at", "-pk")
        .only("channel", "purpose", "status", "recorded_at", "source")
    )
    for consent in rows:
        in_force.setdefault((consent.channel, consent.purpose), consent)
    return in_force


def registration_gaps(patient: Patient) -> list[str]:
    """What the patient's registration lacks of the identification a clinical record must
    hold (CFM 1.638/2002 art. 5 (a): full name, birth date, sex, mother's name, place of
    birth — município and UF — and full address with CEP), one translated message each;
    empty when complete. "Prefer not to say" counts as an answer for sex; an address is
    full with CEP (8 digits), street, number (or "s/n"), district, city and state."""
    gaps = []
    if len(patient.full_name.split()) < 2:
        gaps.append(gettext("Full name (first name and surname)"))
    if patient.birth_date is None:
        gaps.append(gettext("Birth date"))
    if not patient.sex:
        gaps.append(gettext("Sex"))
    if not patient.mother_name.strip():
        gaps.append(gettext("Mother's name"))
    if not (patient.birthplace_city.strip() and patient.birthplace_state):
        gaps.append(gettext("Place of birth (city and state)"))
    address = {
        gettext("CEP"): len(_DIGITS.findall(patient.postal_code)) == 8,
        gettext("street"): bool(patient.street.strip()),
        gettext("number"): bool(patient.number.strip()),
        gettext("district"): bool(patient.district.strip()),
        gettext("city"): bool(patient.city.strip()),
        gettext("state"): bool(patient.state),
    }
    missing = [name for name, present in address.items() if not present]
    if missing:
        gaps.append(gettext("Full address (missing: %(parts)s)") % {"parts": ", ".join(missing)})
    return gaps
