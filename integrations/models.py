"""The integrations framework's data: domain events and their deliveries (transactional
outbox and dead letters), provider accounts, the log of outbound calls, inbound webhooks,
partner webhook subscriptions, and what console providers "sent".

This app is the lowest layer: it points at clinics only by string foreign key and imports
no domain app (DESIGN.md "Layers").
"""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicQuerySet

from .choices import (
    DeliveryStatus,
    InboundWebhookStatus,
    ProviderKind,
)
from .crypto import EncryptedJSONField


class Event(models.Model):
    """A domain event, written in the same transaction as the change it announces.

    Its id is stable and unique: subscribers use it (or their delivery id) to make their
    effect idempotent, and partners receive it as ``X-Cuidar-Event-Id``. Payloads carry ids,
    never personal or clinical data.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("clinic"),
    )
    event_type = models.CharField(_("event type"), max_length=64, db_index=True)
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class Delivery(models.Model):
    """One (event, subscriber) pair: an in-process handler or a partner webhook.

    ``pending`` waits for its first attempt; ``failed`` had a failed attempt and waits for
    ``next_attempt_at``; after the last allowed attempt it is ``dead`` (a dead letter) until
    someone retries or archives it.
    """

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic")
    )
    # Denormalised from the event, for the dead-letter filters.
    event_type = models.CharField(_("event type"), max_length=64)
    subscriber = models.CharField(_("subscriber"), max_length=200)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)
    dead_at = models.DateTimeField(_("dead since"), null=True, blank=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscriber"], name="delivery_unique_event_subscriber"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["clinic", "status"], name="delivery_clinic_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscriber}"


class DeadLetter(Delivery):
    """Dead deliveries, as the dead-letter list shows them."""

    class Meta:
        proxy = True
        verbose_name = _("dead letter")
        verbose_name_plural = _("dead letters")


class DeliveryAttempt(models.Model):
    """One try of a delivery, kept so the dead-letter detail shows every error."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveSmallIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"#{self.number}"


class ProviderAccount(models.Model):
    """A clinic's account at one provider: a link of that clinic's chain for a kind.

    ``credentials`` are encrypted at rest (Fernet; see ``crypto.py``) and never shown back in
    full; ``settings`` holds non-secret options (base URL, instance name, sender id …).
    """

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="provider_accounts",
        verbose_name=_("clinic"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ProviderKind.choices)
    provider = models.CharField(_("provider"), max_length=40)
    label = models.CharField(_("label"), max_length=100, blank=True)
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=10, help_text=_("Lower goes first in the chain.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    credentials = EncryptedJSONField(_("credentials"), default=dict, blank=True)
    # Unguessable part of this account's inbound webhook URL, for providers without
    # signatures (e.g. Z-API) and as a second factor for the rest.
    webhook_token = models.CharField(
        _("webhook token"), max_length=64, unique=True, default=uuid.uuid4, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")
        ordering = ["clinic", "kind", "priority", "pk"]
        indexes = [models.Index(fields=["clinic", "kind", "enabled", "priority"])]

    def __str__(self) -> str:
        return self.label or f"{self.get_kind_display()}: {self.provider}"


class ExternalCall(models.Model):
    """One attempt of one outbound call to a provider. Never holds secrets or bodies."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("clinic"),
    )
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("provider account"),
    )
    provider = models.CharField(_("provider"), max_length=40)
    operation = models.CharField(_("operation"), max_length=60)
    method = models.CharField(_("method"), max_length=8)
    host = models.CharField(_("host"), max_length=255)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    error_class = models.CharField(_("error class"), max_length=100, blank=True)
    error_message = models.CharField(_("error message"), max_length=500, blank=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    correlation_id = models.CharField(_("correlation id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("external call")
        verbose_name_plural = _("external calls")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["clinic", "provider", "created_at"], name="externalcall_recent_idx"
            ),
            models.Index(fields=["account", "created_at"], name="externalcall_account_idx"),
            models.Index(fields=["created_at"], name="externalcall_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} {self.status_code or self.error_class}"


class ProviderUsage(models.Model):
    """What one successful provider call used and cost: a language model's tokens in and
    out, or one WhatsApp/SMS message; its latency and its cost in R$ at the price the
    account (or ``CUIDAR_PROVIDER_PRICES``) named at the time. ``integrations.usage``
    writes it; the admin's monthly report sums it per clinic and provider. No bodies, no
    personal data."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("clinic"),
    )
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage",
        verbose_name=_("provider account"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ProviderKind.choices)
    provider = models.CharField(_("provider"), max_length=40)
    model_name = models.CharField(_("model"), max_length=100, blank=True)
    operation = models.CharField(_("operation"), max_length=60)
    tokens_in = models.PositiveIntegerField(_("tokens in"), default=0)
    tokens_out = models.PositiveIntegerField(_("tokens out"), default=0)
    messages = models.PositiveIntegerField(_("messages"), default=0)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    cost = models.DecimalField(_("cost (R$)"), max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(_("called at"), default=timezone.now)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("provider usage and cost")
        verbose_name_plural = _("provider usage and costs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["clinic", "created_at"], name="providerusage_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} R$ {self.cost}"


class InboundWebhook(models.Model):
    """A request a provider made to us, stored raw before anything acts on it."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("clinic"),
    )
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_webhooks",
        verbose_name=_("provider account"),
    )
    provider = models.CharField(_("provider"), max_length=40)
    path = models.CharField(_("sub-path"), max_length=100, blank=True)
    headers = models.JSONField(_("headers of interest"), default=dict, blank=True)
    body = models.BinaryField(_("raw body"))
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=InboundWebhookStatus.choices,
        default=InboundWebhookStatus.RECEIVED,
    )
    error = models.TextField(_("error"), blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    #: Failed processing attempts (transient errors: a provider 5xx, a lost connection …);
    #: while ``received``, the next one is due at ``next_attempt_at``.
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbound webhook")
        verbose_name_plural = _("inbound webhooks")
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="inbound_retry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.dedupe_key}"


class WebhookSubscription(models.Model):
    """A partner system's URL that receives the clinic's events, signed with its secret."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
        verbose_name=_("clinic"),
    )
    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    secret = EncryptedJSONField(_("secret"), default=dict, blank=True)
    event_types = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        help_text=_("Events sent to this URL; empty means every event."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The last test ping, sent by a worker (``integrations.webhook_ping``), never by the web
    # request that asked for it: a slow partner must not hold a web worker.
    ping_requested_at = models.DateTimeField(_("ping requested at"), null=True, blank=True)
    ping_answered_at = models.DateTimeField(_("ping answered at"), null=True, blank=True)
    ping_ok = models.BooleanField(_("ping succeeded"), null=True, blank=True)
    ping_detail = models.CharField(_("ping answer"), max_length=300, blank=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["clinic", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def signing_secret(self) -> str:
        return (self.secret or {}).get("value", "")

    def wants(self, event_type: str) -> bool:
        return self.covers(self.event_types, event_type)

    @staticmethod
    def covers(event_types: list[str], event_type: str) -> bool:
        """Whether a subscription to ``event_types`` (empty: every event) gets this one."""
        return not event_types or event_type in event_types


class ConsoleRecord(models.Model):
    """What a console (sandbox) provider would have sent: development and demos only."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("clinic"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ProviderKind.choices)
    provider = models.CharField(_("provider"), max_length=40)
    operation = models.CharField(_("operation"), max_length=60)
    recipient = models.CharField(_("recipient"), max_length=255, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    response = models.JSONField(_("response"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("console record")
        verbose_name_plural = _("console records")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} → {self.recipient}"


# --- Backups and restore drills (issue 27, integrations/backups/) --------------------------
from .backups.choices import BackupMethod, BackupRunKind, BackupRunStatus  # noqa: E402


class BackupRun(models.Model):
    """One backup, verification, restore or restore drill of this installation's database.

    Not a tenant row: a backup holds every clinic's data (each clinic's audit trail gets
    its own entry through the ``backup.*`` events). A drill keeps what it measured: the
    time from the start of the restore to a writable database (``rto_seconds``) and how old
    the newest restored data were against the time restored to (``rpo_seconds``).
    """

    kind = models.CharField(_("kind"), max_length=10, choices=BackupRunKind.choices)
    method = models.CharField(_("method"), max_length=12, choices=BackupMethod.choices)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=BackupRunStatus.choices,
        default=BackupRunStatus.RUNNING,
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # "beat", "manage.py (user)", "admin: <username>": who asked for it
    triggered_by = models.CharField(_("triggered by"), max_length=150, blank=True)
    # pgBackRest's backup label (20261206-020000F) or the SQLite copy's file name
    label = models.CharField(_("backup"), max_length=200, blank=True)
    size_bytes = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)
    checksum = models.CharField(_("SHA-256"), max_length=64, blank=True)
    target = models.DateTimeField(_("restored to (target)"), null=True, blank=True)
    restored_until = models.DateTimeField(_("newest restored data"), null=True, blank=True)
    rto_seconds = models.FloatField(_("RTO (s)"), null=True, blank=True)
    rpo_seconds = models.FloatField(_("RPO (s)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("backup run")
        verbose_name_plural = _("backups and drills")
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["kind", "status", "-started_at"], name="backuprun_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
