"""Every write of the CRM app. Edges (the partner API) validate input; these functions run
atomically and publish the domain events."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from clinic.models import Clinic
from clinic.validators import phone_variants
from integrations import events

from .models import Lead


@transaction.atomic
def lead_create(
    *,
    clinic: Clinic,
    name: str,
    phone: str = "",
    email: str = "",
    message: str = "",
    source: str = "",
    utm_source: str = "",
    utm_medium: str = "",
    utm_campaign: str = "",
    utm_term: str = "",
    utm_content: str = "",
    landing_page: str = "",
) -> Lead:
    """Record a lead and publish ``lead.created`` (payload: ids only, no personal data).

    Raises ``django.core.exceptions.ValidationError`` when the model refuses a value (a phone
    that is not a phone, …).
    """
    lead = Lead(
        clinic=clinic,
        name=name.strip(),
        phone=phone,
        email=email,
        message=message,
        source=source,
        utm_source=utm_source,
        utm_medium=utm_medium,
        utm_campaign=utm_campaign,
        utm_term=utm_term,
        utm_content=utm_content,
        landing_page=landing_page,
    )
    lead.full_clean()
    lead.save()
    events.publish("lead.created", clinic=clinic, payload={"lead_id": lead.pk})
    return lead


#: What an anonymised lead is called (its name was personal data), and what is erased.
ANONYMISED_NAME = "—"
ERASED_FIELDS = ("name", "phone", "email", "message")


@transaction.atomic
def leads_anonymise(*, patient) -> int:
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
