"""Every read, print and export of clinical content goes to the audit trail — ids only, no
clinical text and no patient name (``clinic.audit``); the patient sees it on the portal's
privacy page ("who accessed my data")."""

from __future__ import annotations

from clinic.audit import audit_staff
from clinic.models import AuditEntry


def audit_record_read(*, request, patient, obj, page: str, via: str = "", export=False):
    """Staff read (or printed/downloaded: ``export``) clinical content of ``patient``:
    ``obj`` is the encounter, attachment or patient shown; ``page`` which page."""
    details = {"page": page}
    if via:
        details["via"] = via
    return audit_staff(
        request=request,
        clinic=patient.clinic_id,
        action=AuditEntry.Action.EXPORT if export else AuditEntry.Action.VIEW,
        patient=patient,
        obj=obj,
        details=details,
    )
