"""Messaging's tables: the clinic's own message texts, every message sent (or not) and
every message received.

They were clinic's until issue 18 and keep their tables (``clinic_<model>``): the move to
this app changed Django's state only (``migrations/0001_initial.py``).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.choices import ConsentPurpose, ContactChannel, MessageStatus, ReplyAction
from clinic.kernel.tenancy import ClinicOwned
from clinic.models import Patient


class MessageTemplate(ClinicOwned):
    """A clinic's own text for one of the named templates of ``catalogue.CATALOGUE``.

    Without an override a template says its default (pt-BR) text. The purpose and the
    variables are the catalogue's; the Meta (WhatsApp) template name can be changed here
    when the clinic registered its own at Meta.
    """

    name = models.CharField(_("template"), max_length=40)
    body = models.TextField(
        _("text"), help_text=_("Plain text; variables like {{ first_name }} are filled in.")
    )
    subject = models.CharField(
        _("e-mail subject"), max_length=200, blank=True, help_text=_("Used for e-mail only.")
    )
    meta_template_name = models.CharField(
        _("WhatsApp (Meta) template name"),
        max_length=100,
        blank=True,
        help_text=_("The approved template this message maps to at Meta; empty keeps the default."),
    )
    meta_language = models.CharField(
        _("WhatsApp (Meta) template language"), max_length=10, default="pt_BR"
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive: the default text is used.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "clinic_messagetemplate"  # the table from before the split (issue 18)
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "name"],
                name="message_template_unique_per_clinic",
                violation_error_message=_(
                    "This clinic already has its own text for this template."
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name


class OutboundMessage(ClinicOwned):
    """One message to a patient, on whatever channel served it.

    The idempotency key (``reminder-48h:<appointment id>`` …) is unique: a job that runs
    twice finds the row and sends nothing more. ``attempts`` keeps, in order, every channel
    and provider tried and what happened, so reception can see why a message went by SMS
    or was not sent at all.
    """

    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        related_name="outbound_messages",
        verbose_name=_("patient"),
    )
    template = models.CharField(_("template"), max_length=40)
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=MessageStatus.choices,
        default=MessageStatus.QUEUED,
        db_index=True,
    )
    #: Channel to use and only that one (a reply goes back where the patient wrote).
    only_channel = models.CharField(
        _("only on channel"), max_length=20, choices=ContactChannel.choices, blank=True
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=ContactChannel.choices, blank=True
    )
    to_address = models.CharField(_("to"), max_length=255, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body = models.TextField(_("text"))
    #: Variables in the order of the Meta template's parameters.
    template_variables = models.JSONField(default=list, blank=True, editable=False)
    meta_template_name = models.CharField(max_length=100, blank=True, editable=False)
    meta_language = models.CharField(max_length=10, blank=True, editable=False)
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    attempts = models.JSONField(_("attempts"), default=list, blank=True)
    attempt_count = models.PositiveSmallIntegerField(_("delivery rounds"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    #: A send in progress, committed before any provider is called and cleared with its
    #: outcome: found set after its lease (``CUIDAR_MESSAGE_SEND_LEASE``) the worker died
    #: mid-send and the outcome is unknown.
    in_flight_at = models.DateTimeField(_("sending since"), null=True, blank=True)
    in_flight_channel = models.CharField(max_length=20, blank=True, editable=False)
    in_flight_provider = models.CharField(max_length=40, blank=True, editable=False)
    error = models.TextField(_("why not sent / failed"), blank=True)
    in_reply_to = models.ForeignKey(
        "ReceivedMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("in reply to"),
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        db_table = "clinic_outboundmessage"  # the table from before the split (issue 18)
        verbose_name = _("message sent")
        verbose_name_plural = _("messages sent")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "patient", "-created_at"], name="outbound_patient_idx"),
            models.Index(fields=["provider", "provider_message_id"], name="outbound_provider_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="outbound_retry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.patient_id} ({self.status})"


class ReceivedMessage(ClinicOwned):
    """A message a patient (or an unknown number) sent the clinic, and what was done with
    it. One row per item of an inbound webhook (``source_key``), so a redelivered event
    changes nothing. Rows that need a person form reception's "unanswered" inbox."""

    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="received_messages",
        verbose_name=_("patient"),
    )
    channel = models.CharField(_("channel"), max_length=20, choices=ContactChannel.choices)
    from_address = models.CharField(_("from"), max_length=255)
    sender_name = models.CharField(_("sender name"), max_length=255, blank=True)
    text = models.TextField(_("text"), blank=True)
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    source_key = models.CharField(max_length=100, unique=True, editable=False)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    action = models.CharField(
        _("what was done"), max_length=20, choices=ReplyAction.choices, default=ReplyAction.NONE
    )
    #: Ids of what the action touched (e.g. {"appointment_id": 12}); no personal data.
    action_detail = models.JSONField(default=dict, blank=True, editable=False)
    needs_reply = models.BooleanField(_("needs a person"), default=False)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )

    class Meta:
        db_table = "clinic_receivedmessage"  # the table from before the split (issue 18)
        verbose_name = _("message received")
        verbose_name_plural = _("messages received")
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "patient", "-received_at"], name="received_patient_idx"),
            models.Index(
                fields=["clinic", "-received_at"],
                condition=Q(needs_reply=True, answered_at__isnull=True),
                name="received_unanswered_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.text[:40]}"

    @property
    def is_unanswered(self) -> bool:
        return self.needs_reply and self.answered_at is None


# The assistant's tables (issue 24) live in their own modules and belong to this app: the
# conversations (assistant/models.py) and the knowledge base, beside its retrieval.
from .assistant.models import (  # noqa: E402
    AssistantSettings,
    Conversation,
    ConversationMessage,
)
from .knowledge import KnowledgeEntry  # noqa: E402

__all__ = [
    "AssistantSettings",
    "Conversation",
    "ConversationMessage",
    "KnowledgeEntry",
    "MessageTemplate",
    "OutboundMessage",
    "ReceivedMessage",
]
