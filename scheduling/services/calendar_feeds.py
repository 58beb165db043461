"""The professional's private ICS calendar feed."""

from __future__ import annotations

from django.db import transaction

from clinic.models import Professional

from ..models import (
    CalendarFeed,
    new_feed_token,
)


# --- Calendar feeds -------------------------------------------------------------------------
@transaction.atomic
def calendar_feed_rotate(*, professional: Professional) -> CalendarFeed:
    """Create the professional's private ICS feed, or issue a new link (the old one stops
    working at once)."""
    feed, created = CalendarFeed.objects.get_or_create(
        professional=professional, defaults={"clinic_id": professional.clinic_id}
    )
    if not created:
        feed.token = new_feed_token()
        feed.save(update_fields=["token"])
    return feed
