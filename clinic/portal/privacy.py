"""The portal's part of the patient's rights (LGPD), plugged into ``clinic.privacy`` (core
does not import the portal; ``PortalConfig.ready`` imports this module and connects the
receiver):

- the "Sign-ins to the patient portal" section of "download my data" (``export_section``):
  when and from where, never the hash of a session's token (a key of the system, not
  information about the person);
- ``patient_anonymising``: an anonymised patient is signed out of every device.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from clinic.models import Patient
from clinic.privacy import export_iso, export_section

from .models import PortalSession
from .sessions import sessions_end_all


@export_section("portal_sessions", _("Sign-ins to the patient portal"), order=80)
def export_portal_sessions(patient: Patient) -> list[dict]:
    """Every portal session of the patient, ended ones included."""
    rows = (
        PortalSession.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-created_at", "-pk")
        .only("created_at", "last_seen_at", "ended_at", "ip", "user_agent")
    )
    return [
        {
            "signed_in_at": export_iso(s.created_at),
            "last_seen_at": export_iso(s.last_seen_at),
            "ended_at": export_iso(s.ended_at),
            "ip": s.ip or "",
            "device": s.user_agent,
        }
        for s in rows
    ]


def end_sessions_of_anonymised_patient(sender, *, patient: Patient, **kwargs) -> None:
    """Receiver of ``clinic.privacy.patient_anonymising`` (inside ``patient_anonymise``'s
    transaction): every portal session of the patient ends."""
    sessions_end_all(patient=patient)
