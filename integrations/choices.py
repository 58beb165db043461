"""Choices of the integrations app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProviderKind(models.TextChoices):
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    PAYMENTS = "payments", _("Payments")
    FISCAL = "fiscal", _("Service invoices (NFS-e)")
    CALENDAR = "calendar", _("Calendar")
    STORAGE = "storage", _("File storage")
    LLM = "llm", _("Language model (assistant)")
    SIGNING = "signing", _("Cloud signing certificates (ICP-Brasil)")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead letter")
    ARCHIVED = "archived", _("Archived")


class InboundWebhookStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")
    IGNORED = "ignored", _("Ignored")


class CircuitState(models.TextChoices):
    CLOSED = "closed", _("Closed (calls go through)")
    OPEN = "open", _("Open (calls skipped)")
    HALF_OPEN = "half-open", _("Half-open (one trial call)")
