"""Choices of the scheduling app, and the appointment status machine."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ServiceCategory(models.TextChoices):
    CONSULTATION = "consultation", _("Consultation")
    THERAPY = "therapy", _("Therapy session")
    EXAM = "exam", _("Exam")
    PROCEDURE = "procedure", _("Procedure")
    COMBO = "combo", _("Combo")


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CONFIRMED = "confirmed", _("Confirmed")
    ARRIVED = "arrived", _("Arrived")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    NO_SHOW = "no_show", _("No-show")
    CANCELLED = "cancelled", _("Cancelled")
    RESCHEDULED = "rescheduled", _("Rescheduled")


S = AppointmentStatus

#: Statuses that occupy the professional, the room and the patient for the time slot. The
#: database refuses two of these overlapping (exclusion constraints on PostgreSQL).
OCCUPYING_STATUSES = (S.SCHEDULED, S.CONFIRMED, S.ARRIVED, S.IN_PROGRESS, S.COMPLETED)

#: The status machine (DESIGN.md "Scheduling rules"). Anything not listed is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.SCHEDULED: frozenset({S.CONFIRMED, S.ARRIVED, S.NO_SHOW, S.CANCELLED, S.RESCHEDULED}),
    S.CONFIRMED: frozenset({S.ARRIVED, S.NO_SHOW, S.CANCELLED, S.RESCHEDULED}),
    # A patient who arrived may still leave before being seen.
    S.ARRIVED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.NO_SHOW: frozenset(),
    S.CANCELLED: frozenset(),
    S.RESCHEDULED: frozenset(),
}


class Channel(models.TextChoices):
    """How something was done: who booked or confirmed, through what."""

    RECEPTION = "reception", _("Reception")
    PORTAL = "portal", _("Patient portal")
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    API = "api", _("Partner API")
    PHONE = "phone", _("Phone")


class DayPeriod(models.TextChoices):
    MORNING = "morning", _("Morning (before noon)")
    AFTERNOON = "afternoon", _("Afternoon (from noon)")
    ANY = "any", _("Any time")


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Offered a slot")
    BOOKED = "booked", _("Booked")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")


class OfferStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLAIMED = "claimed", _("Claimed")
    TAKEN = "taken", _("Taken by someone else")
    EXPIRED = "expired", _("Expired")


class WaitlistOfferMode(models.TextChoices):
    ONE = "one", _("One patient at a time")
    ALL = "all", _("Everyone at once, first claim wins")
