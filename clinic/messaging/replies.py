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


#: Channels whose messages belong to a conversation (issue 24).
CONVERSATION_CHANNELS = (ContactChannel.WHATSAPP, ContactChannel.SMS)

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
    from .assistant import services as conversations

    conversation = None
    if channel in CONVERSATION_CHANNELS:
        # The phone's conversation, its row locked until commit: one message of a phone is
        # handled at a time.
        conversation = conversations.conversation_for(
            clinic=clinic, channel=channel, phone=item.from_address
        )
    patient = None
    if conversation is not None and conversation.patient_id:
        patient = conversation.patient  # who the conversation established (one of several)
    patient = patient or patient_match(clinic=clinic, channel=channel, address=item.from_address)
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
    inbound = None
    if conversation is not None:
        inbound = conversations.conversation_record_in(conversation=conversation, received=received)

    def assistant() -> bool:
        """The assistant answers, if the clinic has it on and nobody took over."""
        if conversation is None:
            return False
        answer = conversations.conversation_answer(
            conversation=conversation, received=received, inbound=inbound
        )
        if answer is None:
            return False
        received.patient = conversation.patient
        received.action = ReplyAction.ASSISTANT
        received.action_detail = {"intent": answer.intent, "conversation_id": conversation.pk}
        # Handed over (asked for a person, safety, a loop): reception's inbox shows it.
        received.needs_reply = conversation.state != "assistant"
        received.save(update_fields=["patient", "action", "action_detail", "needs_reply"])
        return True

    if patient is None:
        if assistant():
            return received
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
    # The assistant asked a question ("which time? 1, 2, 3"): the answer is for it, not a
    # reply to a reminder.
    asking = conversation is not None and conversations.assistant_is_asking(conversation)
    if asking and assistant():
        return received

    outcome = None
    for handler in list(_reply_handlers):
        outcome = handler(message=received, patient=patient, channel=channel)
        if outcome is not None:
            break
    if outcome is None and assistant():
        return received
    if outcome is None:
        outcome = ReplyOutcome(action=ReplyAction.NONE, needs_reply=True)
    received.action = outcome.action
    received.action_detail = outcome.detail
    received.needs_reply = outcome.needs_reply
    received.save(update_fields=["action", "action_detail", "needs_reply"])
    if outcome.template:
        answer = message_send(
            clinic=clinic,
            patient=patient,
            template=outcome.template,
            context=outcome.context,
            idempotency_key=f"reply:{received.pk}",
            channel=channel,
            in_reply_to=received,
        )
        if conversation is not None:
            conversations.conversation_note_reply(conversation=conversation, message=answer)
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
