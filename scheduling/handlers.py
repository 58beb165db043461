"""What the agenda does when other things happen (domain event subscribers)."""

from datetime import datetime

from clinic.models import Clinic
from integrations.events import subscriber

# Importing reminders also registers its reply handler with clinic.messaging (what a
# patient's "1", "2" or "3" means).
from . import reminders
from .services import appointment_complete_after_encounter, waitlist_offer_slot


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


@subscriber("appointment.booked")
def send_booking_confirmation(event, delivery):
    """The patient gets the booking confirmation (``confirmacao``), once."""
    reminders.booking_confirmation_send(appointment_id=event.payload["appointment_id"])


@subscriber("appointment.no_show")
def send_no_show_follow_up(event, delivery):
    """A missed appointment gets a kind follow-up (``falta_consulta``), once."""
    reminders.no_show_follow_up_send(appointment_id=event.payload["appointment_id"])


@subscriber("waitlist.offered")
def send_waitlist_offer(event, delivery):
    """The patient offered a freed slot gets the claim link (``vaga_disponivel``), once."""
    reminders.waitlist_offer_send(offer_id=event.payload["offer_id"])


@subscriber("appointment.rescheduled")
def send_reschedule_notice(event, delivery):
    """Reception moved the appointment and chose to tell the patient: the new time goes out
    as a booking confirmation (``confirmacao``) of the new appointment, once."""
    if event.payload.get("notify_patient"):
        reminders.booking_confirmation_send(appointment_id=event.payload["appointment_id"])


@subscriber("encounter.finalized")
def complete_signed_encounter(event, delivery):
    """The encounter of an appointment was signed: the appointment is completed."""
    if event.payload.get("appointment_id"):
        appointment_complete_after_encounter(appointment_id=event.payload["appointment_id"])
