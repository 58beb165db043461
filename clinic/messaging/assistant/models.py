"""The assistant's tables: a clinic's switch and texts (``AssistantSettings``), the
conversations (``Conversation``) and their timeline (``ConversationMessage``).

Imported by ``clinic/messaging/models.py``: they belong to the messaging app (label
``messaging``) and its migrations."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.choices import ContactChannel
from clinic.kernel.tenancy import ClinicOwned
from clinic.models import Patient

DEFAULT_CONSENT_TEXT = (
    "Para agendar, preciso do seu nome completo e CPF. Usamos esses dados só para o seu "
    "cadastro e atendimento na clínica, conforme a LGPD; você pode pedir acesso, correção "
    "ou exclusão a qualquer momento."
)


class ConversationState(models.TextChoices):
    ASSISTANT = "assistant", _("Assistant")
    WAITING = "waiting", _("Waiting for a person")
    HUMAN = "human", _("With a person")
    CLOSED = "closed", _("Closed")


class MessageDirection(models.TextChoices):
    IN = "in", _("Received")
    OUT = "out", _("Sent")


class MessageAuthor(models.TextChoices):
    CONTACT = "contact", _("Patient or contact")
    ASSISTANT = "assistant", _("Assistant")
    STAFF = "staff", _("Staff")


class OutStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class AssistantSettings(ClinicOwned):
    """A clinic's assistant: on or off, its name and the texts it says.

    Without a row the assistant is off: a clinic switches it on here (the demo clinic has
    it on). The rules need no provider; an LLM, where the clinic turned it on, only reads
    messages (docs/assistant.md)."""

    enabled = models.BooleanField(
        _("assistant on"),
        default=False,
        help_text=_("Answer WhatsApp and SMS messages automatically (rules, no AI model)."),
    )
    name = models.CharField(_("assistant's name"), max_length=40, default="Sofia")
    consent_text = models.TextField(
        _("consent text"),
        default=DEFAULT_CONSENT_TEXT,
        help_text=_("Shown to a new number before it is asked for name and CPF (LGPD)."),
    )
    hours_text = models.CharField(
        _("opening hours"),
        max_length=255,
        blank=True,
        help_text=_("As told to patients, e.g. “seg a sex, 8h às 19h; sáb, 8h às 12h”."),
    )
    human_timeout_hours = models.PositiveSmallIntegerField(
        _("hand back to the assistant after (hours)"),
        default=12,
        help_text=_(
            "A conversation taken over by a person returns to the assistant after "
            "this long without a message from staff."
        ),
    )
    quiet_start = models.TimeField(_("quiet hours from"), default="21:00")
    quiet_end = models.TimeField(_("quiet hours until"), default="08:00")

    class Meta:
        verbose_name = _("assistant settings")
        verbose_name_plural = _("assistant settings")
        constraints = [
            models.UniqueConstraint(fields=["clinic"], name="assistant_settings_one_per_clinic")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({'on' if self.enabled else 'off'})"


class Conversation(ClinicOwned):
    """One phone's conversation with the clinic on a channel: who (the patient, once known),
    who answers (``state``), where the dialogue is (``dialogue``) and, through its messages,
    the whole timeline.

    At most one open conversation per (clinic, channel, phone); a closed one stays as
    history and the next message opens a new one."""

    channel = models.CharField(_("channel"), max_length=20, choices=ContactChannel.choices)
    phone = models.CharField(_("phone"), max_length=255)
    patient = models.ForeignKey(
        Patient,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("patient"),
    )
    state = models.CharField(
        _("state"),
        max_length=12,
        choices=ConversationState.choices,
        default=ConversationState.ASSISTANT,
        db_index=True,
    )
    #: The slot-filling dialogue: step, intent, service, professional, days, offered slots…
    #: (ids and dates only, never free text the patient wrote).
    dialogue = models.JSONField(_("dialogue"), default=dict, blank=True)
    handover_reason = models.CharField(_("why a person is needed"), max_length=40, blank=True)
    alert = models.BooleanField(
        _("alert"), default=False, help_text=_("An emergency was written: call the patient.")
    )
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("taken over by"),
    )
    taken_over_at = models.DateTimeField(_("taken over at"), null=True, blank=True)
    greeted = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(_("started at"), default=timezone.now)
    last_message_at = models.DateTimeField(_("last message"), default=timezone.now)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "channel", "phone"],
                condition=~Q(state="closed"),
                name="conversation_one_open_per_phone",
            )
        ]
        indexes = [
            models.Index(
                fields=["clinic", "state", "-last_message_at"], name="conversation_state_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phone} ({self.get_state_display()})"


class ConversationMessage(ClinicOwned):
    """One line of a conversation's timeline: what the contact wrote, what the assistant or
    staff answered. Answers are delivered after commit (``tasks.conversation_reply_task``),
    once per ``idempotency_key``."""

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    direction = models.CharField(_("direction"), max_length=3, choices=MessageDirection.choices)
    author = models.CharField(_("author"), max_length=10, choices=MessageAuthor.choices)
    text = models.TextField(_("text"))
    #: Options offered with the answer (numbered in the text; titles ≤ 24 characters).
    options = models.JSONField(default=list, blank=True, editable=False)
    received = models.OneToOneField(
        "messaging.ReceivedMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversation_message",
    )
    intent = models.CharField(_("intent"), max_length=30, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=OutStatus.choices, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation message")
        verbose_name_plural = _("conversation messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="conv_message_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.direction}: {self.text[:40]}"
