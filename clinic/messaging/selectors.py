"""Messaging's shared reads: the counts the admin and its dashboard show."""

from __future__ import annotations

from clinic.choices import MessageStatus
from clinic.models import Clinic

from .models import OutboundMessage, ReceivedMessage


def uncertain_count(*, clinic: Clinic | int) -> int:
    """Messages of the clinic whose send had an unknown outcome and were not resent:
    reception checks with each patient (shown on the messaging admin and the inbox)."""
    return OutboundMessage.objects.for_clinic(clinic).filter(status=MessageStatus.UNCERTAIN).count()


def unanswered_count(*, clinic: Clinic | int) -> int:
    """Messages patients wrote that wait for a person: reception's "unanswered" inbox
    (the admin's dashboard shows how many)."""
    return (
        ReceivedMessage.objects.for_clinic(clinic)
        .filter(needs_reply=True, answered_at__isnull=True)
        .count()
    )
