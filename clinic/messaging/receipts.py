"""Receipts: a provider's delivery or read receipt moves a message forward, never back."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.choices import MessageStatus
from clinic.models import Clinic

from .models import OutboundMessage

#: Receipts move a message forward only. "failed" is accepted until it was delivered.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}
_STATUS_TIMESTAMP = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


@transaction.atomic
def message_status_apply(
    *,
    clinic: Clinic | int,
    provider: str,
    provider_message_id: str,
    status: str,
    at: datetime | None = None,
    error: str = "",
) -> OutboundMessage | None:
    """A provider's receipt for a message we sent: move it forward (queued → sent →
    delivered → read), never back, whatever order receipts arrive in. "failed" counts only
    before the message was delivered. Unknown messages are ignored."""
    if not provider_message_id or status not in _STATUS_TIMESTAMP:
        return None
    message = (
        OutboundMessage.objects.for_clinic(clinic)
        .select_for_update()
        .filter(provider=provider, provider_message_id=provider_message_id)
        .first()
    )
    if message is None:
        return None
    at = at or timezone.now()
    fields = []
    if status == MessageStatus.FAILED:
        if message.status not in (MessageStatus.QUEUED, MessageStatus.SENT):
            return message
        message.error = (error or _("The provider reported the message as failed."))[:1000]
        fields.append("error")
    elif message.status not in STATUS_RANK or STATUS_RANK[status] <= STATUS_RANK[message.status]:
        # A late "delivered" after "read", or a repeat: keep what we know, fill the time.
        stamp = _STATUS_TIMESTAMP[status]
        if message.status in STATUS_RANK and getattr(message, stamp) is None:
            setattr(message, stamp, at)
            message.save(update_fields=[stamp])
        return message
    message.status = status
    stamp = _STATUS_TIMESTAMP[status]
    if getattr(message, stamp) is None:
        setattr(message, stamp, at)
    message.save(update_fields=["status", stamp, *fields])
    return message
