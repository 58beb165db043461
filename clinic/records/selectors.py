"""Reads of the clinical record shared by its pages, the portal and the bench. Each page's
reads are a fixed number of queries, whatever the number of encounters (a patient followed
for years has hundreds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from clinic.models import Patient

from .models import (
    Attachment,
    Encounter,
    EncounterStatus,
    Entry,
    EntryInactivation,
    EntryKind,
    EntryStatus,
)
from .retention import entry_source

K = EntryKind
DRAFT_PENDING_AFTER = timedelta(hours=24)


def current_entries(queryset):
    """Signed entries that no later version corrects and nobody inactivated."""
    return (
        queryset.filter(status=EntryStatus.FINALIZED)
        .exclude(Exists(Entry.objects.filter(supersedes=OuterRef("pk"))))
        .exclude(Exists(EntryInactivation.objects.filter(entry=OuterRef("pk"))))
    )


@dataclass
class PatientSummary:
    """The header of every clinical page."""

    patient: Patient
    age: int | None
    active_diagnoses: list[dict] = field(default_factory=list)
    last_vitals: dict | None = None
    last_scales: dict | None = None
    alerts: list[str] = field(default_factory=list)
    pending_drafts: int = 0


def patient_summary(*, patient: Patient, user, registration_missing: list[str]) -> PatientSummary:
    """Name, age, sex, allergies, conditions and medications come from the patient; active
    diagnoses, last vitals and scales from the current signed entries (3 queries)."""
    # Confidential entries are their author's only: not even the header reads them.
    current = current_entries(
        Entry.objects.filter(Q(confidential=False) | Q(author=user), patient=patient)
    )
    summary = PatientSummary(patient=patient, age=patient.age())
    latest = {}
    for entry in current.filter(kind__in=[K.DIAGNOSIS, K.VITALS, K.SCALES]).order_by(
        "-finalized_at", "-pk"
    )[:60]:
        if entry.kind == K.DIAGNOSIS:
            summary.active_diagnoses.extend(
                item
                for item in entry.content.get("items", [])
                if item.get("code") not in {d.get("code") for d in summary.active_diagnoses}
            )
        elif entry.kind not in latest:
            latest[entry.kind] = entry
    if K.VITALS in latest:
        summary.last_vitals = {"at": latest[K.VITALS].finalized_at, **latest[K.VITALS].content}
    if K.SCALES in latest:
        summary.last_scales = {"at": latest[K.SCALES].finalized_at, **latest[K.SCALES].content}
    summary.alerts = list(registration_missing)
    summary.pending_drafts = Encounter.objects.filter(
        patient=patient, status=EncounterStatus.DRAFT
    ).count()
    return summary


def patient_encounters(*, patient: Patient):
    """Every encounter of the patient, newest first, with its professional (1 query)."""
    return (
        Encounter.objects.filter(clinic_id=patient.clinic_id, patient=patient)
        .select_related("professional")
        .order_by("-started_at", "-pk")
    )


def progress_rows(*, patient: Patient) -> dict[str, list[tuple]]:
    """Scales and vitals over time, from current signed entries that are not confidential:
    ``{"scales": [(date, {key: value}), …], "vitals": […]}`` by the encounter's date
    (1 query)."""
    rows: dict[str, list[tuple]] = {K.SCALES: [], K.VITALS: []}
    entries = (
        current_entries(Entry.objects.filter(patient=patient, kind__in=[K.VITALS, K.SCALES]))
        .exclude(confidential=True)
        .order_by("encounter__started_at", "pk")
        .values_list("kind", "content", "encounter__started_at")
    )
    for kind, content, at in entries:
        rows[kind].append((at, content))
    return rows


@entry_source
def encounter_last_dates(*, clinic, patient_ids=None):
    """Retention (``retention.entry_source``): each patient's last encounter."""
    encounters = Encounter.objects.for_clinic(clinic)
    if patient_ids is not None:
        encounters = encounters.filter(patient_id__in=patient_ids)
    return (
        encounters.values("patient_id")
        .annotate(last=Max("started_at"))
        .values_list("patient_id", "last")
    )


def encounter_entries(*, encounter: Encounter):
    """The encounter's entries, every version, with their inactivation (1 query)."""
    return (
        Entry.objects.filter(encounter=encounter)
        .select_related("inactivation", "template_version__template", "superseded_by")
        .order_by("kind", "version", "pk")
    )


def encounter_attachments(*, encounter: Encounter):
    return Attachment.objects.filter(encounter=encounter).order_by("uploaded_at", "pk")


def pending_drafts(*, professional, now=None):
    """The professional's encounters still unsigned 24 h after they began."""
    now = now or timezone.now()
    return (
        Encounter.objects.filter(
            professional=professional,
            status=EncounterStatus.DRAFT,
            started_at__lt=now - DRAFT_PENDING_AFTER,
        )
        .select_related("patient")
        .order_by("started_at")
    )
