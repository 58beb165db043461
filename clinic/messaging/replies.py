"""What patients write: :func:`message_receive` stores it, opts the number out on "SAIR",
and asks the reply handlers of higher apps (scheduling confirms, cancels …, registered with
:func:`reply_handler`) what to do with it; what nobody acted on waits in reception's inbox,
where reception answers (:func:`message_reply`)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from clinic.choices import ConsentPurpose, ConsentSource, ContactChannel, ReplyAction
from clinic.models import Clinic, Patient
from clinic.services import consent_revoke
from clinic.validators import phone_variants
from integrations.base import InboundMessage

from .models import OutboundMessage, ReceivedMessage
from .sending import message_send

#: Words that opt a number out of a channel (compared without accents and case).
OPT_OUT_WORDS = frozenset({"SAIR", "PARAR", "STOP", "DESCADASTRAR", "CANCELAR INSCRICAO"})


@dataclass(frozen=True)
class ReplyOutcome:
    """What a reply handler did with a patient's message, and what to answer."""

    action: str
    template: str = ""  # answer with this template ("" = no answer)
    context: dict = field(default_factory=dict)
    needs_reply: bool = False  # a person should look at it
    detail: dict = field(default_factory=dict)  # ids of what was touched


ReplyHandler = Callable[..., "ReplyOutcome | None"]
_reply_handlers: list[ReplyHandler] = []


def reply_handler(func: ReplyHandler) -> ReplyHandler:
    """Register ``func(*, message, patient, channel) -> ReplyOutcome | None``: a higher app
    (scheduling) acts on what patients write without this app importing it. The first
    handler that returns an outcome wins."""
    if func not in _reply_handlers:
        _reply_handlers.append(func)
    return func


def normalize_reply(text: str) -> str:
    """Upper case, no accents, no punctuation, single spaces: "Sím!" → "SIM"."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]", " ", text.upper())
    return " ".join(text.split())


def patient_match(*, clinic: Clinic | int, channel: str, address: str) -> Patient | None:
    """The patient who wrote from ``address``. Several patients may share a number (a
    mother and her children): the one we last wrote to on it is the one answering."""
    patients = Patient.objects.for_clinic(clinic)
    if channel == ContactChannel.EMAIL:
        candidates = list(patients.filter(email__iexact=address.strip())[:20])
    else:
        candidates = list(patients.filter(phone__in=phone_variants(address))[:20])
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    last = (
        OutboundMessage.objects.for_clinic(clinic)
        .filter(patient__in=candidates)
        .order_by("-created_at", "-pk")
        .values_list("patient_id", flat=True)
        .first()
    )
    return next((p for p in candidates if p.pk == last), candidates[0])


_OPT_OUT_SOURCES = {
    ContactChannel.WHATSAPP: ConsentSource.WHATSAPP,
    ContactChannel.SMS: ConsentSource.SMS,
    ContactChannel.EMAIL: ConsentSource.EMAIL,
}


@transaction.atomic
def message_receive(
    *, clinic: Clinic, channel: str, item: InboundMessage, provider: str, source_key: str
) -> ReceivedMessage:
    """Store what a patient (or an unknown number) wrote and act on it, once per
    ``source_key``: opt out on "SAIR"; otherwise the reply handlers decide (confirm, cancel
    …) and the patient gets their answer on the same channel. Anything nobody acted on
    waits in reception's inbox."""
    existing = ReceivedMessage.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing
    patient = patient_match(clinic=clinic, channel=channel, address=item.from_address)
    received = ReceivedMessage.objects.create(
        clinic=clinic,
        patient=patient,
        channel=channel,
        from_address=item.from_address[:255],
        sender_name=item.sender_name[:255],
        text=item.text,
        provider=provider,
        provider_message_id=item.provider_message_id[:255],
        source_key=source_key,
        received_at=item.received_at or timezone.now(),
    )
    if patient is None:
        received.action = ReplyAction.UNKNOWN_SENDER
        received.needs_reply = True
        received.save(update_fields=["action", "needs_reply"])
        return received
    if normalize_reply(item.text) in OPT_OUT_WORDS:
        for purpose in (ConsentPurpose.UTILITY, ConsentPurpose.MARKETING):
            consent_revoke(
                patient=patient,
                channel=channel,
                purpose=purpose,
                source=_OPT_OUT_SOURCES.get(channel, ConsentSource.RECEPTION),
            )
        received.action = ReplyAction.OPTED_OUT
        received.save(update_fields=["action"])
        return received

    outcome = None
    for handler in list(_reply_handlers):
        outcome = handler(message=received, patient=patient, channel=channel)
        if outcome is not None:
            break
    if outcome is None:
        outcome = ReplyOutcome(action=ReplyAction.NONE, needs_reply=True)
    received.action = outcome.action
    received.action_detail = outcome.detail
    received.needs_reply = outcome.needs_reply
    received.save(update_fields=["action", "action_detail", "needs_reply"])
    if outcome.template:
        message_send(
            clinic=clinic,
            patient=patient,
            template=outcome.template,
            context=outcome.context,
            idempotency_key=f"reply:{received.pk}",
            channel=channel,
            in_reply_to=received,
        )
    return received


@transaction.atomic
def received_mark_answered(*, messages, by) -> int:
    """Reception dealt with these messages: they leave the unanswered inbox."""
    return ReceivedMessage.objects.filter(
        pk__in=[m.pk for m in messages], answered_at__isnull=True
    ).update(answered_at=timezone.now(), answered_by=by)


@transaction.atomic
def message_reply(*, patient: Patient, text: str, channel: str = "", by=None) -> OutboundMessage:
    """Reception writes to a patient (from the timeline): sent on ``channel`` or by the
    usual rules, and the patient's unanswered messages count as answered."""
    now = timezone.now()
    unanswered = list(
        ReceivedMessage.objects.for_clinic(patient.clinic_id).filter(
            patient=patient, needs_reply=True, answered_at__isnull=True
        )
    )
    message = message_send(
        clinic=patient.clinic,
        patient=patient,
        template="mensagem_livre",
        context={"text": text},
        idempotency_key=f"manual:{patient.pk}:{now.timestamp()}:{by.pk if by else 0}",
        channel=channel,
        in_reply_to=unanswered[0] if unanswered else None,
        sent_by=by,
    )
    received_mark_answered(messages=unanswered, by=by)
    return message
