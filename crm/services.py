"""Every write of the CRM app. Edges (the partner API) validate input; these functions run
atomically and publish the domain events."""

from __future__ import annotations

from django.db import transaction

from clinic.models import Clinic
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
