"""Every write of the clinical record. Edges (the admin pages) validate input; these
functions assume it is valid, enforce the record's rules and run in one transaction.

Rules and their sources:
- CFM 1.638/2002 art. 5: what a record must hold before it is signed (``signing_missing``).
- Lei 13.787/2018 art. 4, CFM 1.638: a signed entry is never altered; a correction is a new
  version with a justification, the previous stays visible; inactivation, never deletion.
- Lei 13.787/2018 art. 2: integrity — each signed entry is a link of the patient's hash
  chain (``clinic.records.chain``).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.kernel.tenancy import other_clinic_object
from clinic.models import Clinic, Patient, Professional
from clinic.selectors import registration_gaps
from integrations.events import publish

from . import chain
from .access import BREAK_GLASS_HOURS
from .exceptions import (
    AttachmentRefused,
    EncounterLocked,
    NotTheAuthor,
    RecordError,
    SigningRefused,
)
from .models import (
    Attachment,
    BreakGlass,
    ClinicalTemplateVersion,
    Encounter,
    EncounterStatus,
    Entry,
    EntryInactivation,
    EntryKind,
    EntryStatus,
)

K = EntryKind


def _same_clinic(clinic, *objects) -> None:
    if other_clinic_object(clinic, *objects) is not None:
        raise RecordError(_("Everything in a record must belong to one clinic."))


def open_encounter(
    *,
    clinic: Clinic,
    patient: Patient,
    professional: Professional,
    by,
    appointment_id: int | None = None,
    service_name: str = "",
) -> Encounter:
    """Open a draft encounter (scheduling calls this when an appointment starts; a walk-in
    has no appointment). Opening the same appointment twice returns its encounter."""
    _same_clinic(clinic, patient, professional)
    with transaction.atomic():
        if appointment_id is not None:
            existing = Encounter.objects.filter(appointment_id=appointment_id).first()
            if existing is not None:
                return existing
        return Encounter.objects.create(
            clinic=clinic,
            patient=patient,
            professional=professional,
            appointment_id=appointment_id,
            service_name=service_name[:150],
            created_by=by,
        )


def _check_author(encounter: Encounter, by) -> Professional:
    professional = encounter.professional
    if professional.user_id != by.pk:
        raise NotTheAuthor(_("Only the encounter's professional writes in it."))
    return professional


def _check_open(encounter: Encounter) -> None:
    if encounter.is_finalized:
        raise EncounterLocked(
            _("This encounter is signed: it accepts no new entry. Correct an entry instead.")
        )


def entry_save_draft(
    *,
    encounter: Encounter,
    kind: str,
    content: dict,
    by,
    template_version: ClinicalTemplateVersion | None = None,
    confidential: bool = False,
) -> Entry:
    """Create or update the author's draft of one section (autosave calls this too)."""
    with transaction.atomic():
        encounter = Encounter.objects.select_for_update().get(pk=encounter.pk)
        _check_open(encounter)
        professional = _check_author(encounter, by)
        now = timezone.now()
        draft = Entry.objects.filter(
            encounter=encounter, kind=kind, author=by, status=EntryStatus.DRAFT
        ).first()
        if draft is None:
            draft = Entry(
                clinic_id=encounter.clinic_id,
                encounter=encounter,
                patient_id=encounter.patient_id,
                kind=kind,
                author=by,
                created_at=now,
                **_author_snapshot(professional),
            )
        draft.content = content
        draft.template_version = template_version
        draft.confidential = confidential
        draft.updated_at = now
        draft.save()
        return draft


def entry_discard_draft(*, encounter: Encounter, kind: str, by) -> None:
    """An emptied section: its draft goes (drafts were never signed)."""
    Entry.objects.filter(
        encounter=encounter, kind=kind, author=by, status=EntryStatus.DRAFT
    ).delete()


def _author_snapshot(professional: Professional) -> dict:
    return {
        "author_name": professional.full_name,
        "council": professional.council or "",
        "council_number": professional.registration or "",
        "council_state": professional.council_state or "",
    }


def registration_missing(patient: Patient) -> list[str]:
    """The identification CFM 1.638 art. 5 (a) asks for that the patient's registration
    lacks."""
    return [str(gap) for gap in registration_gaps(patient)]


#: CFM 1.638/2002 art. 5 (b): the sections a signed encounter must hold; any one kind of
#: each group satisfies it (a follow-up session's evolution note is its anamnesis; a filled
#: anamnesis or evolution template is its section's entry, ``content["answers"]``). Lazy
#: labels: they are shown in the language of the request, not of the import.
REQUIRED_SECTIONS = (
    ((K.ANAMNESIS, K.CHIEF_COMPLAINT, K.HPI, K.EVOLUTION), gettext_lazy("anamnesis")),
    ((K.PHYSICAL_EXAM, K.VITALS), gettext_lazy("physical examination")),
    ((K.DIAGNOSIS,), gettext_lazy("diagnostic hypothesis or diagnosis (CID-10)")),
    ((K.PLAN,), gettext_lazy("treatment / plan")),
)


def _filled(content) -> bool:
    """Whether an entry's content says something: a text, a template's answers, values."""
    return any(value not in (None, "", [], {}) for value in (content or {}).values())


def _template_gaps(entries) -> list[str]:
    """The required fields of a filled template that were left unanswered (a draft may
    leave them empty; a signed anamnesis or evolution form may not)."""
    gaps = []
    for entry in entries:
        version = entry.template_version
        answers = (entry.content or {}).get("answers")
        if version is None or not answers:
            continue
        for field in version.fields:
            if field.get("required") and answers.get(field.get("key")) in (None, "", []):
                gaps.append(
                    _("%(template)s: %(field)s")
                    % {"template": version.template.name, "field": field["label"]}
                )
    return gaps


def signing_missing(encounter: Encounter, *, entries: list[Entry] | None = None) -> list[str]:
    """What CFM 1.638 requires that the encounter lacks (empty: it may be signed). ``entries``
    are the ones to be signed (default: all of the encounter's)."""
    if entries is None:
        entries = list(
            Entry.objects.filter(encounter=encounter).select_related("template_version__template")
        )
    kinds = {entry.kind for entry in entries if _filled(entry.content)}
    missing = [
        _("Patient registration: %(item)s") % {"item": gap}
        for gap in registration_missing(encounter.patient)
    ]
    for group, label in REQUIRED_SECTIONS:
        if not kinds.intersection(group):
            missing.append(str(label))
    return missing + _template_gaps(entries)


def _chain_append(entry: Entry, *, last: Entry | None, now) -> Entry:
    entry.status = EntryStatus.FINALIZED
    entry.finalized_at = now
    entry.chain_seq = (last.chain_seq if last else 0) + 1
    entry.prev_hash = last.entry_hash if last else ""
    entry.entry_hash = chain.link_hash(entry.prev_hash, chain.entry_values(entry))
    return entry


def _chain_head(patient_id: int) -> Entry | None:
    # The patient's row lock (taken by the caller) serialises appends to one chain.
    return (
        Entry.objects.filter(patient_id=patient_id, chain_seq__isnull=False)
        .only("chain_seq", "entry_hash")
        .order_by("-chain_seq")
        .first()
    )


def encounter_finalize(*, encounter: Encounter, by) -> Encounter:
    """Sign the encounter: its author's drafts become signed links of the patient's chain
    and the encounter locks. The caller has re-authenticated the author (sudo). Refused,
    with the list of what is missing, while CFM 1.638's items are absent."""
    with transaction.atomic():
        # Lock order: patient, then encounter (every writer of a chain does the same).
        Patient.objects.select_for_update().only("pk").get(pk=encounter.patient_id)
        encounter = Encounter.objects.select_for_update().get(pk=encounter.pk)
        _check_open(encounter)
        _check_author(encounter, by)
        drafts = list(
            Entry.objects.filter(encounter=encounter, status=EntryStatus.DRAFT)
            .select_related("template_version__template")
            .order_by("created_at", "pk")
        )
        missing = signing_missing(encounter, entries=drafts)
        if missing:
            raise SigningRefused(
                _("The encounter cannot be signed yet: something CFM 1.638 requires is missing."),
                missing=missing,
            )
        now = timezone.now()
        last = _chain_head(encounter.patient_id)
        for draft in drafts:
            last = _chain_append(draft, last=last, now=now)
            draft.save()
        encounter.status = EncounterStatus.FINALIZED
        encounter.finalized_at = now
        encounter.save(update_fields=["status", "finalized_at"])
        publish(
            "encounter.finalized",
            clinic=encounter.clinic_id,
            payload={
                "encounter_id": encounter.pk,
                "patient_id": encounter.patient_id,
                "professional_id": encounter.professional_id,
                "appointment_id": encounter.appointment_id,
            },
        )
    return encounter


def entry_correct(*, entry: Entry, content: dict, justification: str, by) -> Entry:
    """A correction of a signed entry: a new signed version by the same author, with a
    justification; the previous version stays, marked as corrected."""
    justification = (justification or "").strip()
    if not justification:
        raise RecordError(
            _("A correction needs a justification."),
            fields={"justification": [_("Say why the entry is corrected.")]},
        )
    with transaction.atomic():
        Patient.objects.select_for_update().only("pk").get(pk=entry.patient_id)
        entry = Entry.objects.select_related("encounter__professional").get(pk=entry.pk)
        if not entry.is_finalized:
            raise RecordError(_("Only a signed entry is corrected; edit the draft instead."))
        if entry.author_id != by.pk:
            raise NotTheAuthor(_("Only the author of an entry corrects it."))
        if Entry.objects.filter(supersedes=entry).exists():
            raise RecordError(_("This version was already corrected: correct the latest one."))
        if EntryInactivation.objects.filter(entry=entry).exists():
            raise RecordError(_("An inactivated entry is not corrected."))
        now = timezone.now()
        correction = Entry(
            clinic_id=entry.clinic_id,
            encounter_id=entry.encounter_id,
            patient_id=entry.patient_id,
            kind=entry.kind,
            content=content,
            template_version_id=entry.template_version_id,
            confidential=entry.confidential,
            version=entry.version + 1,
            supersedes=entry,
            justification=justification,
            author=by,
            created_at=now,
            **_author_snapshot(entry.encounter.professional),
        )
        # Inserted as a draft first: its id is part of the link it becomes.
        correction.save()
        _chain_append(correction, last=_chain_head(entry.patient_id), now=now)
        correction.save()
        return correction


def entry_inactivate(*, entry: Entry, justification: str, by) -> EntryInactivation:
    """Declare a signed entry void (shown struck through). Never a deletion."""
    justification = (justification or "").strip()
    if not justification:
        raise RecordError(
            _("Inactivating an entry needs a justification."),
            fields={"justification": [_("Say why the entry is inactivated.")]},
        )
    with transaction.atomic():
        entry = Entry.objects.select_for_update().get(pk=entry.pk)
        if not entry.is_finalized:
            raise RecordError(_("A draft is not inactivated; clear it instead."))
        if entry.author_id != by.pk:
            raise NotTheAuthor(_("Only the author of an entry inactivates it."))
        if EntryInactivation.objects.filter(entry=entry).exists():
            raise RecordError(_("This entry is already inactivated."))
        return EntryInactivation.objects.create(
            clinic_id=entry.clinic_id, entry=entry, justification=justification, by=by
        )


def break_glass(*, clinic: Clinic, patient: Patient, user, reason: str) -> BreakGlass:
    """Emergency access to a record outside one's care, with a written reason; the clinical
    director is told (``record.emergency_access``, ids only)."""
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise RecordError(
            _("Write the reason for the emergency access."),
            fields={"reason": [_("Write at least 10 characters.")]},
        )
    _same_clinic(clinic, patient)
    with transaction.atomic():
        now = timezone.now()
        glass = BreakGlass.objects.create(
            clinic=clinic,
            user=user,
            patient=patient,
            reason=reason,
            at=now,
            expires_at=now + timedelta(hours=BREAK_GLASS_HOURS),
        )
        publish(
            "record.emergency_access",
            clinic=clinic,
            payload={"break_glass_id": glass.pk, "patient_id": patient.pk, "user_id": user.pk},
        )
    return glass


#: What may be attached, by magic bytes (never by the name or the browser's word).
ATTACHMENT_TYPES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024


def sniff_type(head: bytes) -> str | None:
    for magic, content_type in ATTACHMENT_TYPES:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def attachment_add(*, encounter: Encounter, upload, by, description: str = "") -> Attachment:
    """Attach a photo, scan or exam PDF to a draft encounter: type sniffed, size limited,
    SHA-256 recorded, stored under a random key."""
    if upload.size > ATTACHMENT_MAX_BYTES:
        raise AttachmentRefused(
            _("The file is larger than %(mb)s MB.") % {"mb": ATTACHMENT_MAX_BYTES // 2**20},
            fields={"file": [_("File too large.")]},
        )
    upload.seek(0)
    content_type = sniff_type(upload.read(16))
    if content_type is None:
        raise AttachmentRefused(
            _("Only PDF, JPEG, PNG and WebP files may be attached."),
            fields={"file": [_("File type not accepted.")]},
        )
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    with transaction.atomic():
        encounter = Encounter.objects.select_for_update().get(pk=encounter.pk)
        _check_open(encounter)
        _check_author(encounter, by)
        return Attachment.objects.create(
            clinic_id=encounter.clinic_id,
            encounter=encounter,
            patient_id=encounter.patient_id,
            file=upload,
            original_name=(upload.name or "")[:200],
            content_type=content_type,
            size=upload.size,
            sha256=digest.hexdigest(),
            description=description[:200],
            uploaded_by=by,
        )
