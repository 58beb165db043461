"""The CRM's tables: leads and their funnel, the interactions timeline, the clinic's
marketing settings, segments, campaigns and their recipients, marketing spend, hot-lead
alerts (seed 004 §3.5).

No clinical data lives here or is read from here (LGPD art. 11 §4: health data may not be
used for marketing advantage): a lead's "interest" is what they ticked on a form.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clinic.choices import ContactChannel
from clinic.fields import PhoneField
from clinic.kernel.tenancy import ClinicOwned

from .choices import (
    CampaignKind,
    CampaignStatus,
    Direction,
    InteractionChannel,
    InteractionKind,
    InterestType,
    LeadSource,
    LeadStatus,
    LossReason,
    RecipientStatus,
    SegmentTarget,
    Temperature,
)

__all__ = ["Campaign", "Interaction", "Lead", "LeadStatus", "MarketingSettings", "Segment"]


def new_form_key() -> str:
    return secrets.token_urlsafe(12)


class Lead(ClinicOwned):
    """Someone who showed interest and is not a patient yet (or is, once converted), with
    where they came from: the first touch (UTM, click ids, referrer) stays as it was, the
    last touch moves with every new capture.

    One lead per person and clinic: ``phone_key`` (the phone with the 9th digit, so both
    WhatsApp forms match) and ``email`` are unique per clinic; a second capture of the same
    person updates the lead (``services.lead_capture``)."""

    name = models.CharField(_("name"), max_length=255)
    phone = PhoneField(_("phone"), blank=True)
    phone_key = models.CharField(max_length=20, blank=True, editable=False)
    email = models.EmailField(_("e-mail"), blank=True)
    message = models.TextField(_("message"), blank=True)
    source = models.CharField(
        _("source"), max_length=50, choices=LeadSource.choices, default=LeadSource.OTHER
    )
    last_source = models.CharField(
        _("last-touch source"), max_length=50, choices=LeadSource.choices, blank=True
    )
    interest_type = models.CharField(
        _("interest"), max_length=20, choices=InterestType.choices, blank=True
    )
    utm_source = models.CharField("utm_source", max_length=255, blank=True)
    utm_medium = models.CharField("utm_medium", max_length=255, blank=True)
    utm_campaign = models.CharField("utm_campaign", max_length=255, blank=True)
    utm_term = models.CharField("utm_term", max_length=255, blank=True)
    utm_content = models.CharField("utm_content", max_length=255, blank=True)
    gclid = models.CharField("gclid", max_length=255, blank=True)
    fbclid = models.CharField("fbclid", max_length=255, blank=True)
    referrer = models.URLField(_("referrer"), max_length=2000, blank=True)
    landing_page = models.URLField(_("landing page"), max_length=2000, blank=True)
    #: The last touch: source, UTM, click ids and when (the first touch is the fields above).
    last_touch = models.JSONField(_("last touch"), default=dict, blank=True)
    referral_code = models.CharField(_("referral code"), max_length=32, blank=True)
    campaign = models.ForeignKey(
        "Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("campaign"),
    )
    marketing_consent = models.BooleanField(_("agreed to marketing messages"), default=False)
    marketing_consent_at = models.DateTimeField(_("marketing consent at"), null=True, blank=True)
    status = models.CharField(
        _("stage"), max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    stage_changed_at = models.DateTimeField(_("stage changed at"), null=True, blank=True)
    loss_reason = models.CharField(
        _("loss reason"), max_length=20, choices=LossReason.choices, blank=True
    )
    score = models.PositiveSmallIntegerField(_("score"), default=0)
    temperature = models.CharField(
        _("temperature"), max_length=10, choices=Temperature.choices, default=Temperature.COLD
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("patient"),
    )
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    last_interaction_at = models.DateTimeField(_("last interaction"), null=True, blank=True)
    interaction_count = models.PositiveIntegerField(_("interactions"), default=0)
    anonymised_at = models.DateTimeField(_("anonymised at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "-created_at"], name="lead_clinic_recent_idx"),
            models.Index(fields=["clinic", "status"], name="lead_clinic_stage_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "phone_key"],
                condition=~Q(phone_key=""),
                name="lead_unique_phone_per_clinic",
            ),
            models.UniqueConstraint(
                fields=["clinic", "email"],
                condition=~Q(email=""),
                name="lead_unique_email_per_clinic",
            ),
            models.CheckConstraint(condition=Q(score__lte=100), name="lead_score_at_most_100"),
        ]

    def __str__(self) -> str:
        return self.name


class Interaction(ClinicOwned):
    """One entry of a lead's or a patient's timeline: a message in or out, a call or a
    note logged by staff, a form, a portal visit, a booking, a payment. ``summary`` is a
    short description, never clinical content. ``external_key`` makes recording from an
    event idempotent (``inbound:<webhook>:<item>``, ``appointment.booked:<id>`` …)."""

    class Handler(models.TextChoices):
        HUMAN = "human", _("Staff")
        ASSISTANT = "assistant", _("Assistant")
        SYSTEM = "system", _("System")
        CONTACT = "contact", _("The person")

    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="interactions",
        verbose_name=_("lead"),
    )
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="crm_interactions",
        verbose_name=_("patient"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=InteractionKind.choices)
    channel = models.CharField(
        _("channel"), max_length=20, choices=InteractionChannel.choices, blank=True
    )
    direction = models.CharField(
        _("direction"), max_length=10, choices=Direction.choices, default=Direction.INTERNAL
    )
    handler = models.CharField(
        _("handled by"), max_length=10, choices=Handler.choices, default=Handler.SYSTEM
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    summary = models.CharField(_("summary"), max_length=500, blank=True)
    #: Ids of what it is about ({"appointment_id": 3}); no personal data.
    detail = models.JSONField(default=dict, blank=True)
    external_key = models.CharField(max_length=120, null=True, blank=True, editable=False)  # noqa: DJ001 - NULL: unique only where given
    at = models.DateTimeField(_("when"), db_index=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "lead", "-at"], name="interaction_lead_idx"),
            models.Index(fields=["clinic", "patient", "-at"], name="interaction_patient_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "external_key"], name="interaction_unique_external_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.at:%Y-%m-%d %H:%M}"


class MarketingSettings(ClinicOwned):
    """A clinic's marketing rules: its public form's key, the technical director every
    advertisement names (CFM Resolução 2.336/2023), quiet hours, the frequency cap, the
    holdout, the throughput, reactivation and scoring thresholds."""

    form_key = models.CharField(
        _("form key"), max_length=32, unique=True, default=new_form_key, editable=False
    )
    technical_director_name = models.CharField(_("technical director"), max_length=255, blank=True)
    technical_director_crm = models.CharField(
        _("technical director's CRM"),
        max_length=30,
        blank=True,
        help_text=_("E.g. CRM/SP 123456. Medical advertising must show it (CFM 2.336/2023)."),
    )
    quiet_from = models.PositiveSmallIntegerField(_("no marketing from (hour)"), default=20)
    quiet_until = models.PositiveSmallIntegerField(_("no marketing until (hour)"), default=8)
    frequency_cap_days = models.PositiveSmallIntegerField(
        _("one marketing message per person every (days)"), default=7
    )
    holdout_percent = models.PositiveSmallIntegerField(_("holdout (%)"), default=10)
    throughput_per_minute = models.PositiveIntegerField(
        _("marketing messages per minute"), default=600
    )
    reactivation_enabled = models.BooleanField(_("weekly reactivation"), default=False)
    reactivation_days = models.PositiveIntegerField(
        _("reactivate after (days without a visit)"), default=180
    )
    reactivation_text = models.TextField(_("reactivation text"), blank=True)
    warm_from = models.PositiveSmallIntegerField(_("warm from score"), default=40)
    hot_from = models.PositiveSmallIntegerField(_("hot from score"), default=70)
    #: Scoring weights by rule name overriding ``scoring.DEFAULT_RULES``.
    scoring_rules = models.JSONField(_("scoring rules"), default=dict, blank=True)
    last_assigned_user_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("marketing settings")
        verbose_name_plural = _("marketing settings")
        constraints = [
            models.UniqueConstraint(fields=["clinic"], name="marketing_settings_one_per_clinic")
        ]

    def __str__(self) -> str:
        return str(_("Marketing settings"))

    @property
    def director_line(self) -> str:
        """The line every advertisement carries (CFM 2.336/2023, art. 9)."""
        if not (self.technical_director_name and self.technical_director_crm):
            return ""
        return (
            f"Responsável técnico: {self.technical_director_name} — {self.technical_director_crm}"
        )


class Segment(ClinicOwned):
    """A saved filter over patients or leads (``selectors.segment_queryset``). Marketing
    consent on ``channel`` is always applied: it is not a filter one can remove."""

    name = models.CharField(_("name"), max_length=150)
    target = models.CharField(
        _("who"), max_length=10, choices=SegmentTarget.choices, default=SegmentTarget.PATIENTS
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=ContactChannel.choices, default="whatsapp"
    )
    #: {"inactive_days": 180, "service_ids": [...], "professional_ids": [...], "age_min":,
    #: "age_max":, "birthday_month":, "min_no_shows":, "package_ending_days":, "sources": [...]}
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(ClinicOwned):
    """A marketing campaign to a segment: draft → scheduled → running ⇄ paused → completed
    (``choices.CAMPAIGN_TRANSITIONS``). Sent through messaging's marketing template
    (``template``, WhatsApp through its approved Meta template) with ``text``, in batches
    that respect quiet hours, the throughput, the frequency cap, consent and the holdout."""

    name = models.CharField(_("name"), max_length=255)
    kind = models.CharField(_("type"), max_length=20, choices=CampaignKind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment")
    )
    template = models.CharField(_("message template"), max_length=40, default="promocao")
    text = models.TextField(_("text"), blank=True, help_text=_("Fills {{ text }} of the template."))
    holdout_percent = models.PositiveSmallIntegerField(_("holdout (%)"), default=10)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=50), name="campaign_holdout_at_most_half"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRecipient(ClinicOwned):
    """One person a campaign was for, and what became of it: sent (with its message),
    held out (the control group), or skipped (no consent, frequency cap). Unique per
    campaign and patient, so a campaign reaches each person at most once."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", verbose_name=_("campaign")
    )
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.CASCADE, related_name="+", verbose_name=_("patient")
    )
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=RecipientStatus.choices,
        default=RecipientStatus.PENDING,
    )
    message_id = models.BigIntegerField(_("message"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "patient"], name="campaign_recipient_once")
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "id"], name="campaign_recipient_todo_idx")
        ]


class MarketingSpend(ClinicOwned):
    """What the clinic spent on one source in one month (entered by the manager): the
    denominator of the customer acquisition cost (``selectors.attribution``)."""

    source = models.CharField(_("source"), max_length=50, choices=LeadSource.choices)
    month = models.DateField(_("month"), help_text=_("Any day of the month."))
    amount = models.DecimalField(_("amount (R$)"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("marketing spend")
        verbose_name_plural = _("marketing spend")
        ordering = ["-month", "source"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "source", "month"], name="marketing_spend_once_per_month"
            )
        ]

    def save(self, *args, **kwargs):
        if self.month:
            self.month = self.month.replace(day=1)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.month:%m/%Y}"


class LeadAlert(ClinicOwned):
    """A hot lead shown to its owner in the admin (and sent to them by e-mail/WhatsApp)."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("lead")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("for"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("hot-lead alert")
        verbose_name_plural = _("hot-lead alerts")
        ordering = ["-created_at", "-pk"]
