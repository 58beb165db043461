"""Choices of the CRM: the funnel, where leads come from, what they want, the timeline and
campaigns (seed 004 §3.5)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LeadStatus(models.TextChoices):
    """The funnel's stages; allowed moves are ``LEAD_TRANSITIONS``."""

    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    INTERESTED = "interested", _("Interested")
    SCHEDULED = "scheduled", _("Scheduled")
    CONVERTED = "converted", _("Converted")
    LOST = "lost", _("Lost")


S = LeadStatus
#: The funnel as a declared state machine (CONVENTIONS rule 3). Converted is an end; a lost
#: lead may come back (they wrote again) as contacted.
LEAD_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.CONTACTED, S.INTERESTED, S.SCHEDULED, S.CONVERTED, S.LOST}),
    S.CONTACTED: frozenset({S.NEW, S.INTERESTED, S.SCHEDULED, S.CONVERTED, S.LOST}),
    S.INTERESTED: frozenset({S.CONTACTED, S.SCHEDULED, S.CONVERTED, S.LOST}),
    S.SCHEDULED: frozenset({S.INTERESTED, S.CONTACTED, S.CONVERTED, S.LOST}),
    S.LOST: frozenset({S.CONTACTED, S.INTERESTED, S.SCHEDULED, S.CONVERTED}),
    S.CONVERTED: frozenset(),
}
#: Stages still open (worked on the kanban board).
OPEN_STAGES = (S.NEW, S.CONTACTED, S.INTERESTED, S.SCHEDULED)


class LeadSource(models.TextChoices):
    INSTAGRAM = "instagram", _("Instagram")
    WHATSAPP = "whatsapp", _("WhatsApp")
    WEBSITE = "website", _("Website")
    GOOGLE_ADS = "google_ads", _("Google Ads")
    FACEBOOK_ADS = "facebook_ads", _("Facebook Ads")
    REFERRAL = "referral", _("Referral")
    SMS = "sms", _("SMS")
    PARTNER = "partner", _("Partner system")
    MANUAL = "manual", _("Entered by staff")
    OTHER = "other", _("Other")


class InterestType(models.TextChoices):
    """What the lead came for (seed 004). Marketing data, not clinical: the lead chose it."""

    DOR_LOMBAR = "dor_lombar", _("Back pain")
    INSONIA = "insonia", _("Insomnia")
    ESTRESSE = "estresse", _("Stress")
    EMAGRECIMENTO = "emagrecimento", _("Weight loss")
    CHECKUP = "checkup", _("Check-up")
    OUTRO = "outro", _("Other")


class Temperature(models.TextChoices):
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")


class LossReason(models.TextChoices):
    PRICE = "price", _("Price")
    NO_ANSWER = "no_answer", _("Never answered")
    COMPETITOR = "competitor", _("Went to another clinic")
    NOT_NOW = "not_now", _("Not now")
    NOT_A_FIT = "not_a_fit", _("Not a fit for the clinic")
    SPAM = "spam", _("Spam or mistake")
    OTHER = "other", _("Other")


class InteractionKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    CALL = "call", _("Call")
    NOTE = "note", _("Note")
    FORM = "form", _("Form sent")
    PORTAL_VISIT = "portal_visit", _("Portal visit")
    BOOKING_PAGE = "booking_page", _("Visit to the booking page")
    BOOKING = "booking", _("Booking")
    ATTENDED = "attended", _("Attended")
    PAYMENT = "payment", _("Payment")
    STAGE = "stage", _("Stage changed")
    CAMPAIGN = "campaign", _("Campaign message")


class InteractionChannel(models.TextChoices):
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone")
    INSTAGRAM = "instagram", _("Instagram")
    PORTAL = "portal", _("Portal")
    WEBSITE = "website", _("Website")
    IN_PERSON = "in_person", _("In person")
    SYSTEM = "system", _("System")


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")
    INTERNAL = "internal", _("Internal")


class CampaignKind(models.TextChoices):
    ACQUISITION = "acquisition", _("Acquisition")
    REACTIVATION = "reactivation", _("Reactivation")
    RETENTION = "retention", _("Retention")
    UPSELL = "upsell", _("Upsell")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")


C = CampaignStatus
CAMPAIGN_TRANSITIONS: dict[str, frozenset[str]] = {
    C.DRAFT: frozenset({C.SCHEDULED, C.RUNNING}),
    C.SCHEDULED: frozenset({C.DRAFT, C.RUNNING, C.PAUSED}),
    C.RUNNING: frozenset({C.PAUSED, C.COMPLETED}),
    C.PAUSED: frozenset({C.RUNNING, C.COMPLETED}),
    C.COMPLETED: frozenset(),
}


class RecipientStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENT = "sent", _("Sent")
    HOLDOUT = "holdout", _("Holdout (not sent, to measure lift)")
    NO_CONSENT = "no_consent", _("Skipped: no marketing consent")
    CAPPED = "capped", _("Skipped: frequency cap")


class SegmentTarget(models.TextChoices):
    PATIENTS = "patients", _("Patients")
    LEADS = "leads", _("Leads")
