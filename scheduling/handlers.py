"""What the agenda does when other things happen (domain event subscribers)."""

from datetime import datetime

from clinic.models import Clinic
from integrations.events import subscriber

from .services import waitlist_offer_slot


@subscriber("slot.freed")
def offer_freed_slot_to_waitlist(event, delivery):
    """A future slot became free: offer it to the waitlist (first claim wins)."""
    payload = event.payload
    clinic = Clinic.objects.get(pk=event.clinic_id)
    waitlist_offer_slot(
        clinic=clinic,
        service_id=payload["service_id"],
        professional_id=payload["professional_id"],
        room_id=payload.get("room_id"),
        start=datetime.fromisoformat(payload["start"]),
        end=datetime.fromisoformat(payload["end"]),
    )
