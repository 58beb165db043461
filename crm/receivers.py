"""CRM's answers to other apps' in-process signals."""

from __future__ import annotations

from django.db.models import Q

from clinic.messaging import phone_variants
from integrations import events

from .models import Lead

#: What an anonymised lead is called (its name was personal data), and what is erased.
ANONYMISED_NAME = "—"
ERASED_FIELDS = ("name", "phone", "email", "message")


def leads_anonymise(sender, *, patient, **kwargs) -> int:
    """A patient's contact data is being erased (LGPD deletion): the leads of that clinic
    with the same phone (with or without the 9th digit) or e-mail lose their name, phone,
    e-mail and message too. Where they came from (source, UTM) is not personal and stays,
    so the funnel still counts them."""
    match = Q()
    if patient.phone:
        match |= Q(phone__in=phone_variants(patient.phone))
    if patient.email:
        match |= Q(email__iexact=patient.email)
    if not match:
        return 0
    leads = Lead.objects.for_clinic(patient.clinic_id).filter(match)
    ids = list(leads.values_list("pk", flat=True))
    Lead.objects.filter(pk__in=ids).update(name=ANONYMISED_NAME, phone="", email="", message="")
    for lead_id in ids:  # partners that keep leads erase their copies too
        events.publish(
            "lead.updated",
            clinic=patient.clinic_id,
            payload={"lead_id": lead_id, "fields": list(ERASED_FIELDS)},
        )
    return len(ids)
