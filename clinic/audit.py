"""The audit trail: ``audit_record`` writes one append-only ``AuditEntry``.

Recorded today: staff opening a patient's record (it shows clinical fields), an
appointment (its notes) or a patient's messages in the admin, and downloading a report
that lists patients; a partner key reading a patient through the API; a patient signing in
to the portal and downloading their data; a patient's anonymisation. Add a call wherever
personal or clinical data is read or changed outside the services that already publish
events. Patients see the entries about them on the portal's privacy page
(:func:`audit_entries_about`).

An entry is written in the caller's transaction: an action that rolls back leaves none.
"""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.utils.translation import gettext as _

from .models import AuditEntry, Clinic, Patient
from .partner_api.models import API_KEY_PREFIX

A = AuditEntry.Actor


def request_origin(request: HttpRequest | None) -> dict:
    """Where a request came from, as stored on audit entries and portal sessions:
    ``{"ip": …, "user_agent": …}`` (empty without a request)."""
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:255],
    }


def audit_record(
    *,
    clinic: Clinic | int,
    action: str,
    actor_kind: str,
    actor_id: int | None = None,
    actor_label: str = "",
    patient: Patient | int | None = None,
    obj=None,
    request: HttpRequest | None = None,
    details: dict | None = None,
) -> AuditEntry:
    """One entry: ``actor`` did ``action`` (e.g. "view", "export", "anonymise") to ``obj``
    (a model instance, or None), about ``patient``, from ``request``'s address."""
    return AuditEntry.objects.create(
        clinic_id=getattr(clinic, "pk", clinic),
        action=action,
        actor_kind=actor_kind,
        actor_id=actor_id,
        actor_label=actor_label[:255],
        patient_id=getattr(patient, "pk", patient),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details or {},
        **request_origin(request),
    )


def audit_staff(*, request: HttpRequest, clinic, action: str, **kwargs) -> AuditEntry:
    user = request.user
    return audit_record(
        clinic=clinic,
        action=action,
        actor_kind=A.STAFF,
        actor_id=user.pk,
        actor_label=user.get_username(),
        request=request,
        **kwargs,
    )


def audit_staff_view(*, request: HttpRequest, obj, patient=None, **details) -> AuditEntry:
    """Staff opened a page that shows a patient's data: ``obj`` (the patient's record by
    default, else e.g. an appointment of ``patient``); ``details`` say which page."""
    return audit_staff(
        request=request,
        clinic=obj.clinic_id,
        action=AuditEntry.Action.VIEW,
        patient=obj if patient is None else patient,
        obj=obj,
        details=details,
    )


def audit_patient(*, request: HttpRequest, patient: Patient, action: str, **kwargs):
    return audit_record(
        clinic=patient.clinic_id,
        action=action,
        actor_kind=A.PATIENT,
        actor_id=patient.pk,
        actor_label=patient.first_name,
        patient=patient,
        request=request,
        **kwargs,
    )


def audit_api_read(*, request, clinic, patient: Patient) -> AuditEntry:
    """A patient read through the partner API: by a key, or by staff in the browsable API."""
    key = getattr(request, "auth", None)
    if key is not None and hasattr(key, "prefix"):
        actor = {"actor_kind": A.API_KEY, "actor_id": key.pk, "actor_label": str(key)}
    else:
        user = request.user
        actor = {"actor_kind": A.STAFF, "actor_id": user.pk, "actor_label": user.get_username()}
    return audit_record(
        clinic=clinic,
        action=AuditEntry.Action.VIEW,
        patient=patient,
        obj=patient,
        request=request,
        **actor,
    )


def audit_entries_about(*, patient: Patient, limit: int = 30) -> list[AuditEntry]:
    """The latest entries about one patient, in their clinic: "who saw my data"."""
    return list(
        AuditEntry.objects.for_clinic(patient.clinic_id).filter(patient_id=patient.pk)[:limit]
    )


#: An API key's label is its ``str()``, "<name> (cdr_<prefix>_…)": patients see the name.
_KEY_SUFFIX = re.compile(rf" \({API_KEY_PREFIX}_[0-9a-f]+_…\)$")


def audit_entry_for_patient(entry: AuditEntry) -> dict:
    """One entry as the patient reads it: who (the clinic's team, a partner system by
    name, the patient, the system — never a staff member's name) and what."""
    who = {
        A.STAFF: _("The clinic's team"),
        A.PATIENT: _("You"),
        A.SYSTEM: _("The system"),
    }.get(entry.actor_kind)
    if entry.actor_kind == A.API_KEY:
        who = _("Partner system: %(name)s") % {"name": _KEY_SUFFIX.sub("", entry.actor_label)}
    action, what = entry.action, entry.object_type
    if action == AuditEntry.Action.VIEW and entry.details.get("page") == "messages":
        summary = _("viewed your messages")
    elif what.startswith("records.") or entry.details.get("page") == "clinical_record":
        # The clinical record (clinic.records): reads, downloads of attachments.
        summary = (
            _("downloaded a document of your clinical record")
            if action == AuditEntry.Action.EXPORT
            else _("viewed your clinical record")
        )
    elif action == AuditEntry.Action.VIEW and what == "scheduling.appointment":
        summary = _("viewed an appointment of yours, with its notes")
    elif action == AuditEntry.Action.VIEW:
        summary = _("viewed your record")
    elif action == AuditEntry.Action.EXPORT:
        summary = _("downloaded your data")
    elif action == AuditEntry.Action.SIGN_IN:
        summary = _("signed in to this portal")
    else:
        summary = entry.get_action_display()
    return {"at": entry.at, "who": who, "what": summary}
