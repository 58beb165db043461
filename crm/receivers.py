"""CRM's answers to other apps' in-process signals: thin, they call a service."""

from __future__ import annotations

from . import services


def erase_patient_leads(sender, *, patient, **kwargs) -> None:
    """clinic.privacy is erasing a patient's contact data (LGPD): their leads go too."""
    services.leads_anonymise(patient=patient)
