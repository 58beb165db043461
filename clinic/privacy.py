"""LGPD: what the portal's "download my data" gathers, and the clinic's side of privacy
requests.

Each app contributes the part of a patient's data it owns through ``export_section``
(clinic must not import scheduling, billing or its own sub-apps, so they register
themselves: from their ``portal`` module, or ``clinic.messaging.privacy`` and
``clinic.portal.privacy``)::

    @export_section("appointments", _("Appointments"), order=20)
    def appointments(patient) -> list[dict]:
        ...

A section returns JSON-ready data (lists of dicts of strings and numbers; dates as ISO
8601 strings) and must be scoped to ``patient`` (and so to its clinic).

Below the registry: the clinic app's own sections, and the services of the patient's
rights (LGPD, Lei 13.709/2018, art. 18).

- **What the export holds.** Everything stored about the patient, reception notes
  included: the data subject has the right to access all of their personal data (art. 18,
  II), not only what the portal shows. Left out are keys of the system that say nothing
  about the person: the check-in token (a bearer secret), the search index, internal ids,
  provider message ids and session token hashes. Staff who recorded a decision are not
  named; the channel it came through is.
- **What deletion does** (``patient_anonymise``). Health records must be kept for 20
  years (Lei 13.787/2018, art. 6), and name, CPF, birth date and social name identify that
  record, so they stay, with the health fields, appointments, payments and invoices (tax
  law). Contact data (phone, e-mail, address, the addresses in the message log) and
  marketing data (how they found the clinic, marketing and data-sharing consents) are
  erased or revoked, and every portal session ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.events import publish

from .audit import audit_record
from .choices import (
    ConsentLegalBasis,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    ContactChannel,
    Sex,
)
from .exceptions import ClinicError
from .models import (
    ADDRESS_FIELDS,
    AuditEntry,
    Consent,
    Patient,
    PrivacyRequest,
    new_checkin_token,
)
from .selectors import consents_in_force
from .services import consent_record
from .validators import phone_format

#: Sent by ``patient_anonymise`` inside its transaction, before the contact data is erased:
#: ``patient`` (still with its phone and e-mail) and ``by``. Apps that keep copies of a
#: patient's contact data (crm's leads) erase them in a receiver; the portal ends the
#: patient's sessions in one (``clinic.portal.privacy``).
patient_anonymising = Signal()


#: What must be kept whatever the patient asks: ``hold(patient) -> str | None`` returns the
#: legal basis for keeping some of the patient's data (None when it holds nothing of them).
#: ``patient_anonymise`` records every basis on the deletion request it closes and tells the
#: patient. The clinical record registers one (``clinic.records.retention``: Lei 13.787/2018
#: art. 6, CFM 1.821/2007 art. 7); clinic's core cannot import it, hence the registry.
_RETENTION_HOLDS: dict[str, Callable[[Patient], str | None]] = {}


def retention_hold(key: str):
    """Register ``hold(patient)`` as the retention rule ``key`` (see ``_RETENTION_HOLDS``)."""

    def register(hold: Callable[[Patient], str | None]):
        _RETENTION_HOLDS[key] = hold
        return hold

    return register


def retention_holds(patient: Patient) -> list[str]:
    """The legal bases for keeping part of ``patient``'s data, one per rule that applies."""
    return [basis for _key, hold in sorted(_RETENTION_HOLDS.items()) if (basis := hold(patient))]


@dataclass(frozen=True)
class ExportSection:
    key: str
    title: str  # lazy translation
    order: int
    build: Callable[[Patient], object]


_SECTIONS: dict[str, ExportSection] = {}


def export_section(key: str, title, *, order: int = 50):
    """Register ``build(patient)`` as the part ``key`` of a patient's data export."""

    def register(build: Callable[[Patient], object]):
        _SECTIONS[key] = ExportSection(key=key, title=title, order=order, build=build)
        return build

    return register


def export_sections() -> list[ExportSection]:
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key))


# --- The clinic app's own sections ----------------------------------------------------------
#
# What goes into "download my data" (LGPD art. 18, II and V: access and portability): every
# personal datum the clinic app stores about the patient, reception notes included — the
# data subject has the right to access all of it, not only what the portal shows. Left out
# are only values that are not information about the person but keys of the system: the
# check-in token (a bearer secret: it would turn a leaked export into a way to check in),
# the search index (``search_name``, a copy of the name), provider message ids and internal
# row ids, and the hashes of portal session tokens. Staff users who recorded a decision are
# not named (their identity is the clinic's, not the patient's, data); the source is given.
def export_iso(value) -> str | None:
    """ISO 8601; moments in the clinic's time zone (with their offset)."""
    if not value:
        return None
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.isoformat()


def _label(choices, value: str) -> str:
    return str(dict(choices).get(value, value)) if value else ""


@export_section("patient", _("Your record"), order=0)
def _export_patient(patient: Patient) -> dict:
    return {
        "full_name": patient.full_name,
        "social_name": patient.social_name,
        "cpf": patient.cpf_formatted,
        "birth_date": export_iso(patient.birth_date),
        "sex": _label(Sex.choices, patient.sex),
        "gender_identity": patient.gender_identity,
        "mother_name": patient.mother_name,
        "birthplace_city": patient.birthplace_city,
        "birthplace_state": patient.birthplace_state,
        "phone": patient.phone_formatted,
        "email": patient.email,
        "preferred_channel": _label(ContactChannel.choices, patient.preferred_channel),
        "postal_code": patient.postal_code,
        "street": patient.street,
        "number": patient.number,
        "complement": patient.complement,
        "district": patient.district,
        "city": patient.city,
        "state": patient.state,
        "blood_type": patient.blood_type,
        "allergies": patient.allergies,
        "chronic_conditions": patient.chronic_conditions,
        "medications": patient.medications,
        "lead_source": patient.lead_source,
        "reception_notes": patient.notes,
        "no_show_count": patient.no_show_count,
        "created_at": export_iso(patient.created_at),
        "updated_at": export_iso(patient.updated_at),
    }


@export_section("consents", _("Consents (history of your decisions)"), order=5)
def _export_consents(patient: Patient) -> list[dict]:
    rows = (
        Consent.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-recorded_at", "-pk")
    )
    return [
        {
            "recorded_at": export_iso(c.recorded_at),
            "channel": c.get_channel_display(),
            "purpose": c.get_purpose_display(),
            "decision": c.get_status_display(),
            "legal_basis": c.get_legal_basis_display(),
            "source": c.get_source_display(),
            "text_version": c.text_version,
        }
        for c in rows
    ]


@export_section("privacy_requests", _("Your privacy requests"), order=90)
def _export_privacy_requests(patient: Patient) -> list[dict]:
    return [
        {
            "requested_at": export_iso(r.requested_at),
            "request": r.get_kind_display(),
            "status": r.get_status_display(),
            "details": r.details,
            "handled_at": export_iso(r.handled_at),
            "resolution": r.resolution,
        }
        for r in privacy_requests_of(patient=patient)
    ]


# --- Reads ----------------------------------------------------------------------------------
def privacy_requests_of(*, patient: Patient):
    """The patient's privacy requests, newest first."""
    return (
        PrivacyRequest.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-requested_at", "-pk")
    )


@dataclass
class PatientExport:
    """Everything "download my data" holds: who exported it, when, and each section."""

    generated_at: datetime
    clinic: dict
    patient_name: str
    sections: list[tuple[str, str, object]]  # (key, title, data)

    def as_json(self) -> dict:
        return {
            "format": "cuidar.patient-export",
            "version": 1,
            "generated_at": timezone.localtime(self.generated_at).isoformat(),
            "clinic": self.clinic,
            "sections": {key: data for key, _title, data in self.sections},
            "titles": {key: title for key, title, _data in self.sections},
        }


def patient_export(*, patient: Patient) -> PatientExport:
    """Gather every registered section for ``patient``. Each section is scoped to the
    patient (and so to the clinic); the clinic app's own cost one query each."""
    clinic = patient.clinic
    return PatientExport(
        generated_at=timezone.now(),
        clinic={
            "name": clinic.name,
            "legal_name": clinic.legal_name,
            "cnpj": clinic.cnpj_formatted,
            "email": clinic.email,
            "phone": phone_format(clinic.phone) if clinic.phone else "",
            "address": clinic.address_line,
        },
        patient_name=patient.display_name,
        sections=[(s.key, str(s.title), s.build(patient)) for s in export_sections()],
    )


# --- Writes ---------------------------------------------------------------------------------
class PrivacyError(ClinicError):
    code = "privacy_error"


class DeletionAlreadyRequested(PrivacyError):
    status_code = 409
    code = "deletion_already_requested"


#: Version of the consent texts shown on the portal's consent page (Consent.text_version).
PORTAL_CONSENT_TEXT_VERSION = "portal-2026-11"
#: The channels and purposes a patient decides on in the portal.
PORTAL_CONSENT_CHANNELS = (ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL)
PORTAL_CONSENT_PURPOSES = (
    ConsentPurpose.UTILITY,
    ConsentPurpose.MARKETING,
    ConsentPurpose.DATA_SHARING,
)
#: What anonymisation erases from the patient's record (contact and marketing data).
ANONYMISED_FIELDS = ("phone", "email", *ADDRESS_FIELDS, "lead_source")
#: Consents anonymisation revokes: those that exist for marketing, not for care.
ANONYMISED_PURPOSES = (ConsentPurpose.MARKETING, ConsentPurpose.DATA_SHARING)


def _lock_patient(patient: Patient) -> None:
    # One request at a time per patient: two clicks on "request deletion" (or an
    # anonymisation racing a new request) must not both pass the "already open?" check.
    # There is no partial unique constraint to do it (no migration here), so the patient's
    # row is the lock. On SQLite writes are serialised anyway.
    Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk").first()


@transaction.atomic
def consents_record_from_portal(
    *, patient: Patient, decisions: dict[tuple[str, str], str]
) -> list[Consent]:
    """Record the patient's own decisions from the portal: only those that differ from the
    decision in force are written (append-only), all or none."""
    _lock_patient(patient)
    in_force = consents_in_force(patient=patient)
    recorded = []
    for (channel, purpose), status in decisions.items():
        current = in_force.get((channel, purpose))
        if current is not None and current.status == status:
            continue
        recorded.append(
            consent_record(
                patient=patient,
                channel=channel,
                purpose=purpose,
                status=status,
                source=ConsentSource.PORTAL,
                legal_basis=ConsentLegalBasis.CONSENT,
                text_version=PORTAL_CONSENT_TEXT_VERSION,
            )
        )
    return recorded


@transaction.atomic
def privacy_export_record(*, patient: Patient, file_format: str) -> PrivacyRequest:
    """Note that the patient downloaded their data (an export is answered at once)."""
    now = timezone.now()
    return PrivacyRequest.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        kind=PrivacyRequest.Kind.EXPORT,
        status=PrivacyRequest.Status.DONE,
        requested_at=now,
        handled_at=now,
        resolution=gettext("Downloaded on the patient portal (%(format)s).")
        % {"format": file_format.upper()},
    )


@transaction.atomic
def privacy_request_create(*, patient: Patient, kind: str, details: str = "") -> PrivacyRequest:
    """Record a patient's request for the clinic to handle, and publish
    ``privacy.requested``. A second deletion request while one is open is refused."""
    _lock_patient(patient)
    if (
        kind == PrivacyRequest.Kind.DELETION
        and privacy_requests_of(patient=patient)
        .filter(kind=kind, status=PrivacyRequest.Status.OPEN)
        .exists()
    ):
        raise DeletionAlreadyRequested(
            gettext(
                "You already have a deletion request being handled by the clinic. "
                "You can follow it on this page."
            )
        )
    request = PrivacyRequest.objects.create(
        clinic_id=patient.clinic_id,
        patient=patient,
        kind=kind,
        details=details.strip(),
        requested_at=timezone.now(),
    )
    publish(
        "privacy.requested",
        clinic=patient.clinic_id,
        payload={"privacy_request_id": request.pk, "patient_id": patient.pk, "kind": kind},
    )
    return request


def _close(
    request: PrivacyRequest, *, status: str, by, resolution: str, retention_basis: str = ""
) -> PrivacyRequest:
    request.status = status
    request.handled_at = timezone.now()
    request.handled_by = by
    request.resolution = resolution
    request.retention_basis = retention_basis
    request.save(
        update_fields=["status", "handled_at", "handled_by", "resolution", "retention_basis"]
    )
    return request


@transaction.atomic
def privacy_request_refuse(*, request: PrivacyRequest, by, resolution: str) -> PrivacyRequest:
    """Close an open request without acting on it; ``resolution`` tells the patient why
    (it is shown on their privacy page)."""
    request = PrivacyRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != PrivacyRequest.Status.OPEN:
        raise PrivacyError(gettext("This request has already been handled."))
    if not resolution.strip():
        raise PrivacyError(
            gettext("Write why the request is refused: the patient will read it."),
            fields={"resolution": [gettext("This field is required.")]},
        )
    return _close(
        request, status=PrivacyRequest.Status.REFUSED, by=by, resolution=resolution.strip()
    )


def anonymisation_resolution() -> str:
    return gettext(
        "Your contact data (phone, e-mail and address) and how you found the clinic were "
        "erased, your consents for marketing and for sharing data with partners were "
        "revoked, and you were signed out of the portal. Your identification (name, CPF, "
        "birth date) and your clinical and financial records are kept, as the law requires: "
        "health records for 20 years (Lei 13.787/2018) and tax records for the legal period."
    )


@transaction.atomic
def patient_anonymise(*, patient: Patient, by) -> PrivacyRequest | None:
    """Carry out a deletion request as far as the law allows, and close it.

    Erased: contact data (phone, e-mail, address, and the addresses in the message log),
    how the patient found the clinic; revoked (new rows, with ``by`` as the recorder):
    every granted marketing and data-sharing consent; ended (by the portal's receiver of
    ``patient_anonymising``): every portal session; the check-in QR code is replaced.
    Kept: name, social name, CPF, birth date and the health fields — they identify the
    clinical record, which must be kept for 20 years (Lei 13.787/2018, art. 6) — and
    appointments, payments and invoices (tax law). Utility consents stay as they were: with
    no address left nothing can be sent, and the record of what the patient agreed to is
    evidence.

    Returns the deletion request it closed (None when there was no open one).
    """
    _lock_patient(patient)
    # Apps above this one erase their copies while the contact data is still there to match
    # them, in this transaction: crm's leads, messaging's addresses in the message log; the
    # portal ends the patient's sessions.
    patient_anonymising.send(sender=Patient, patient=patient, by=by)
    for name in ANONYMISED_FIELDS:
        setattr(patient, name, "")
    patient.checkin_token = new_checkin_token()
    # No full_clean: the phone is required for a live record, and this one no longer
    # has one on purpose.
    patient.save(update_fields=[*ANONYMISED_FIELDS, "checkin_token", "updated_at"])
    for (channel, purpose), consent in consents_in_force(patient=patient).items():
        if purpose in ANONYMISED_PURPOSES and consent.status == ConsentStatus.GRANTED:
            consent_record(
                patient=patient,
                channel=channel,
                purpose=purpose,
                status=ConsentStatus.REVOKED,
                source=ConsentSource.RECEPTION,
                legal_basis=ConsentLegalBasis.CONSENT,
                recorded_by=by,
            )
    request = (
        privacy_requests_of(patient=patient)
        .select_for_update()
        .filter(kind=PrivacyRequest.Kind.DELETION, status=PrivacyRequest.Status.OPEN)
        .first()
    )
    if request is not None:
        # What the law makes the clinic keep (the clinical record …), recorded on the request
        # and told to the patient.
        holds = retention_holds(patient)
        _close(
            request,
            status=PrivacyRequest.Status.DONE,
            by=by,
            resolution="\n\n".join([anonymisation_resolution(), *holds]),
            retention_basis="\n".join(holds),
        )
    publish(
        "patient.updated",
        clinic=patient.clinic_id,
        payload={"patient_id": patient.pk, "fields": sorted(ANONYMISED_FIELDS)},
    )
    audit_record(
        clinic=patient.clinic_id,
        action=AuditEntry.Action.ANONYMISE,
        actor_kind=AuditEntry.Actor.STAFF if by is not None else AuditEntry.Actor.SYSTEM,
        actor_id=getattr(by, "pk", None),
        actor_label=by.get_username() if by is not None else "",
        patient=patient,
        obj=patient,
    )
    publish(
        "patient.anonymised",
        clinic=patient.clinic_id,
        payload={
            "patient_id": patient.pk,
            "privacy_request_id": request.pk if request is not None else None,
        },
    )
    return request
