"""Delivering the conversation's answers: to the phone that wrote, on the channel it wrote
on, through the clinic's provider chain (``integrations.chains.run_chain``).

A reply answers a message the contact sent (it may be an unknown number, with no patient
and no consent record yet), so it goes to that address and channel only, not by the
patient's channel preferences. Safe twice: the answer is claimed (``queued → sending``) in
a short committed transaction, the providers are called with no transaction open, and the
outcome saved after; a provider that may have taken it without answering leaves it
``failed`` (never sent twice), a transient failure of the whole chain queues it again."""

from __future__ import annotations

import logging

from django.utils import timezone

from integrations.base import ChainFailed, ChainOutcomeUnknown, MessageRequest

from .models import ConversationMessage, OutStatus

logger = logging.getLogger(__name__)


def conversation_message_deliver(*, message_id: int) -> str | None:
    """Send one queued answer; returns its new status (``None``: nothing to do)."""
    from integrations.chains import run_chain

    claimed = ConversationMessage.objects.filter(pk=message_id, status=OutStatus.QUEUED).update(
        status=OutStatus.SENDING
    )
    if not claimed:
        return None
    message = ConversationMessage.objects.select_related("conversation").get(pk=message_id)
    conversation = message.conversation
    request = MessageRequest(
        to=conversation.phone, text=message.text, idempotency_key=message.idempotency_key or ""
    )
    try:
        result = run_chain(message.clinic_id, conversation.channel, "send", request)
    except ChainOutcomeUnknown as exc:
        _save(message, OutStatus.FAILED, error=f"outcome unknown: {exc}")
        return OutStatus.FAILED
    except ChainFailed as exc:
        # Transient: back in the queue for the caller (the task) to retry; permanent: failed.
        status = OutStatus.FAILED if exc.permanent else OutStatus.QUEUED
        _save(message, status, error=str(exc)[:1000])
        return status
    _save(
        message,
        OutStatus.SENT,
        provider=result.provider,
        provider_message_id=result.value.provider_message_id[:255],
    )
    return OutStatus.SENT


def _save(message: ConversationMessage, status: str, **fields) -> None:
    fields["status"] = status
    if status == OutStatus.SENT:
        fields["sent_at"] = timezone.now()
        fields["error"] = ""
    ConversationMessage.objects.filter(pk=message.pk).update(**fields)
