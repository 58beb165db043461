"""Messaging's part of the patient's rights (LGPD): the messages in "download my data",
and the addresses in the message log erased when the patient is anonymised.

Registered through core's plug-in points (``clinic.privacy.export_section`` and the
``patient_anonymising`` signal) when the app is ready (``apps.MessagingConfig.ready``):
clinic's core does not import messaging.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from clinic.models import Patient
from clinic.privacy import export_iso, export_section

from .models import OutboundMessage, ReceivedMessage


@export_section("messages_sent", _("Messages the clinic sent you"), order=70)
def _export_messages_sent(patient: Patient) -> list[dict]:
    rows = (
        OutboundMessage.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-created_at", "-pk")
        .only(
            "created_at",
            "sent_at",
            "channel",
            "to_address",
            "purpose",
            "status",
            "subject",
            "body",
        )
    )
    return [
        {
            "created_at": export_iso(m.created_at),
            "sent_at": export_iso(m.sent_at),
            "channel": m.get_channel_display(),
            "to": m.to_address,
            "purpose": m.get_purpose_display(),
            "status": m.get_status_display(),
            "subject": m.subject,
            "text": m.body,
        }
        for m in rows
    ]


@export_section("messages_received", _("Messages you sent the clinic"), order=71)
def _export_messages_received(patient: Patient) -> list[dict]:
    rows = (
        ReceivedMessage.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .order_by("-received_at", "-pk")
        .only("received_at", "channel", "from_address", "text", "action")
    )
    return [
        {
            "received_at": export_iso(m.received_at),
            "channel": m.get_channel_display(),
            "from": m.from_address,
            "text": m.text,
            "action": m.get_action_display(),
        }
        for m in rows
    ]


def erase_message_addresses(sender, *, patient: Patient, **kwargs) -> None:
    """``patient_anonymising`` receiver: the phone numbers and e-mail addresses in the
    patient's message log go; what was said stays (it may be part of the care record)."""
    OutboundMessage.objects.for_clinic(patient.clinic_id).filter(patient=patient).update(
        to_address=""
    )
    ReceivedMessage.objects.for_clinic(patient.clinic_id).filter(patient=patient).update(
        from_address="", sender_name=""
    )
