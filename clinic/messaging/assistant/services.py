"""Conversations: every inbound WhatsApp/SMS message lands in one, and the assistant answers
when the clinic has it on and nobody has taken the conversation over.

- :func:`conversation_for` finds or opens the phone's conversation and locks its row for
  the rest of the transaction: one message of a phone is handled at a time (a second
  webhook for the same phone waits for the first to commit);
- :func:`conversation_record_in` puts the message on the timeline and applies the
  timeouts (a taken-over conversation returns to the assistant after the clinic's
  ``human_timeout_hours``; an idle dialogue starts afresh);
- :func:`conversation_answer` runs the assistant (``engine``) unless the conversation is
  with a person, over its rate limits, or the clinic switched the assistant off, and queues
  the reply (:func:`conversation_say`), delivered after commit (``tasks``);
- :func:`conversation_take_over`, :func:`conversation_hand_back`,
  :func:`conversation_close`, :func:`conversation_staff_reply`: reception's buttons.

``replies.message_receive`` calls these in its transaction; answers to a reminder ("1",
"2", "3", "SAIR") are still decided there, exactly as before, unless the assistant is in
the middle of asking something (then "1" is an answer to the assistant's question).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic.models import Clinic
from clinic.validators import phone_variants

from .engine import MODEL_PENDING, Answer, assistant_answer, title
from .models import (
    AssistantSettings,
    Conversation,
    ConversationMessage,
    ConversationState,
    MessageAuthor,
    MessageDirection,
    OutStatus,
)

#: Messages of one conversation per minute, and of one number per hour, the assistant
#: answers; past them it stays silent (a person sees them in the admin).
RATE_PER_CONVERSATION_MINUTE = 8
RATE_PER_NUMBER_HOUR = 60
#: A dialogue idle this long starts again from the beginning.
DIALOGUE_IDLE = timedelta(hours=2)
#: The queue the assistant's answers leave on (a patient is waiting).
REPLY_QUEUE = "notifications"
#: The queue of a message left to the language model (a patient is waiting; up to ~30 s).
MODEL_QUEUE = "integrations"


def assistant_settings(clinic: Clinic | int) -> AssistantSettings | None:
    """The clinic's assistant settings, or ``None`` (the assistant is then off)."""
    return AssistantSettings.objects.for_clinic(clinic).first()


def _settings_of(conversation: Conversation) -> AssistantSettings | None:
    """The settings, read once per message handled (kept on the locked conversation)."""
    if not hasattr(conversation, "_assistant_settings"):
        conversation._assistant_settings = assistant_settings(conversation.clinic_id)
    return conversation._assistant_settings


def conversation_for(*, clinic: Clinic, channel: str, phone: str, patient=None) -> Conversation:
    """The phone's open conversation on ``channel``, opened if there is none, its row locked
    until the caller's transaction ends (the per-phone lock)."""
    variants = phone_variants(phone) or [phone]
    for _attempt in range(2):
        found = (
            Conversation.objects.for_clinic(clinic)
            .select_for_update(of=("self",))
            .select_related("clinic", "patient")
            .filter(channel=channel, phone__in=variants)
            .exclude(state=ConversationState.CLOSED)
            .order_by("-pk")
            .first()
        )
        if found is not None:
            return found
        try:
            # Savepoint: two first messages of a phone at once → one conversation.
            with transaction.atomic():
                return Conversation.objects.create(
                    clinic=clinic, channel=channel, phone=phone[:255], patient=patient
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not open a conversation")  # pragma: no cover


def conversation_record_in(
    *, conversation: Conversation, received, now=None
) -> ConversationMessage:
    """Put a received message on the timeline; apply the timeouts."""
    now = now or timezone.now()
    settings = _settings_of(conversation)
    fields = ["last_message_at"]
    if (
        conversation.state in (ConversationState.HUMAN, ConversationState.WAITING)
        and settings is not None
    ):
        since = _last_staff_activity(conversation) or conversation.taken_over_at
        since = since or conversation.last_message_at
        if since and now - since > timedelta(hours=settings.human_timeout_hours):
            conversation.state = ConversationState.ASSISTANT
            conversation.handover_reason = ""
            conversation.dialogue = {}
            fields += ["state", "handover_reason", "dialogue"]
    if conversation.dialogue and now - conversation.last_message_at > DIALOGUE_IDLE:
        conversation.dialogue = {}
        fields.append("dialogue")
    conversation.last_message_at = now
    conversation.save(update_fields=sorted(set(fields)))
    return ConversationMessage.objects.create(
        clinic_id=conversation.clinic_id,
        conversation=conversation,
        direction=MessageDirection.IN,
        author=MessageAuthor.CONTACT,
        text=received.text,
        received=received,
        created_at=received.received_at or now,
    )


def _last_staff_activity(conversation: Conversation):
    return (
        ConversationMessage.objects.filter(conversation=conversation, author=MessageAuthor.STAFF)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def assistant_is_on(clinic: Clinic | int) -> bool:
    settings = assistant_settings(clinic)
    return bool(settings and settings.enabled)


def assistant_is_asking(conversation: Conversation) -> bool:
    """The assistant asked something and waits for the answer (then "1" answers it, not a
    reminder)."""
    return (
        conversation.state == ConversationState.ASSISTANT
        and bool((conversation.dialogue or {}).get("step"))
        and bool(_settings_of(conversation) and _settings_of(conversation).enabled)
    )


def _over_rate(conversation: Conversation, now) -> bool:
    recent = ConversationMessage.objects.filter(
        conversation=conversation,
        direction=MessageDirection.IN,
        created_at__gte=now - timedelta(minutes=1),
    ).count()
    if recent > RATE_PER_CONVERSATION_MINUTE:
        return True
    per_number = ConversationMessage.objects.filter(
        clinic_id=conversation.clinic_id,
        conversation__phone=conversation.phone,
        direction=MessageDirection.IN,
        created_at__gte=now - timedelta(hours=1),
    ).count()
    return per_number > RATE_PER_NUMBER_HOUR


def conversation_answer(
    *, conversation: Conversation, received, inbound: ConversationMessage, now=None
) -> Answer | None:
    """Let the assistant answer ``received``; ``None`` when it stays silent (off, a person
    has the conversation, rate limit). The answer is queued on the timeline."""
    now = now or timezone.now()
    settings = _settings_of(conversation)
    if settings is None or not settings.enabled:
        return None
    if conversation.state != ConversationState.ASSISTANT:
        return None
    if _over_rate(conversation, now):
        inbound.intent = "rate_limited"
        inbound.save(update_fields=["intent"])
        return None
    from integrations.llm import llm_enabled

    answer = assistant_answer(
        conversation=conversation,
        settings=settings,
        text=received.text,
        now=now,
        channel=conversation.channel,
        defer_to_model=llm_enabled(conversation.clinic_id),
    )
    if answer.intent == MODEL_PENDING:
        # The rules do not understand it and the clinic has a model: asked after commit,
        # with no transaction open (a model may take seconds).
        inbound.intent = MODEL_PENDING
        inbound.save(update_fields=["intent"])
        _ask_model_on_commit(received.pk)
        return answer
    conversation.save(
        update_fields=["dialogue", "state", "handover_reason", "alert", "patient", "greeted"]
    )
    inbound.intent = answer.intent[:30]
    inbound.save(update_fields=["intent"])
    conversation_say(
        conversation=conversation,
        text=answer.text,
        options=answer.options,
        intent=answer.intent,
        key=f"assistant:{received.pk}",
        now=now,
    )
    return answer


def _ask_model_on_commit(received_id: int) -> None:
    def enqueue():
        from .tasks import conversation_model_turn_task

        conversation_model_turn_task.apply_async(args=[received_id], queue=MODEL_QUEUE)

    transaction.on_commit(enqueue, robust=True)


def conversation_model_turn(*, received_id: int, now=None) -> Answer | None:
    """Answer a message the rules did not understand, with the clinic's language model.

    The model is asked with no transaction open and no lock held: the intent and entities
    of the message (``integrations.llm.extract``, validated against its schema) and, for a
    question, the knowledge base (``knowledge_reply``: a model's answer citing its entries,
    refused if it names a time or price nobody offered). Then, in one short transaction
    with the conversation locked, the dialogue runs as for any message, the model's reading
    filling only what the rules could not read: times, prices and bookings still come from
    the services. Whatever fails (no model, every provider down, a refused answer), the
    rules answer — the message is never left unanswered. A newer message of the phone
    answered meanwhile makes this one's answer moot (nothing is sent)."""
    from integrations.llm import extract

    from ..knowledge import knowledge_reply
    from ..models import ReceivedMessage
    from .dates import describe_day, today_in
    from .tools import has_tool, tool

    received = ReceivedMessage.objects.filter(pk=received_id).select_related("clinic").first()
    inbound = (
        ConversationMessage.objects.filter(received_id=received_id)
        .select_related("conversation")
        .first()
    )
    if received is None or inbound is None:
        return None
    conversation = inbound.conversation
    clinic = received.clinic
    if conversation.state != ConversationState.ASSISTANT:
        return None
    from clinic.kernel.timezones import clinic_zone

    today = today_in(clinic_zone(clinic))
    offered = tool("services")(clinic=clinic) if has_tool("services") else []
    dialogue = conversation.dialogue or {}
    context = {
        "today": f"{today.isoformat()} ({describe_day(today)})",
        "clinic_name": clinic.name,
        "services": [s.name for s in offered],
        "expecting": dialogue.get("step", ""),
        "offered_slots": [o.get("start", "") for o in dialogue.get("offered", [])],
    }
    hint = extract(clinic, received.text, context=context)
    kb = None
    if hint is None or hint.intent == "faq":
        kb = knowledge_reply(
            clinic=clinic,
            question=received.text,
            known_prices=[s.price for s in offered if s.price is not None],
            offered_times=[o.get("start", "")[11:16] for o in dialogue.get("offered", [])],
        )
    now = now or timezone.now()
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("clinic", "patient")
            .get(pk=conversation.pk)
        )
        latest = (
            ConversationMessage.objects.filter(
                conversation=conversation, direction=MessageDirection.IN
            )
            .order_by("-created_at", "-pk")
            .values_list("received_id", flat=True)
            .first()
        )
        settings = _settings_of(conversation)
        answered = ConversationMessage.objects.filter(
            idempotency_key=f"assistant:{received_id}"
        ).exists()
        if (
            answered  # a task delivered twice acts once
            or latest != received_id
            or conversation.state != ConversationState.ASSISTANT
            or settings is None
            or not settings.enabled
        ):
            return None
        answer = assistant_answer(
            conversation=conversation,
            settings=settings,
            text=received.text,
            now=now,
            channel=conversation.channel,
            hint=hint,
            kb=kb,
        )
        conversation.save(
            update_fields=["dialogue", "state", "handover_reason", "alert", "patient", "greeted"]
        )
        by = f"llm:{hint.provider}" if hint is not None else ("kb" if kb is not None else "")
        inbound.intent = f"{answer.intent} {by}".strip()[:30]
        inbound.save(update_fields=["intent"])
        if conversation.state != ConversationState.ASSISTANT:
            ReceivedMessage.objects.filter(pk=received_id).update(needs_reply=True)
        conversation_say(
            conversation=conversation,
            text=answer.text,
            options=answer.options,
            intent=answer.intent,
            key=f"assistant:{received_id}",
            now=now,
        )
    return answer


def conversation_say(
    *,
    conversation: Conversation,
    text: str,
    key: str,
    options=(),
    intent: str = "",
    author: str = MessageAuthor.ASSISTANT,
    by=None,
    now=None,
) -> ConversationMessage:
    """Queue an answer on the conversation's timeline; it is delivered after commit, once
    per ``key``."""
    existing = ConversationMessage.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    message = ConversationMessage.objects.create(
        clinic_id=conversation.clinic_id,
        conversation=conversation,
        direction=MessageDirection.OUT,
        author=author,
        text=text,
        options=[title(o) for o in options],
        intent=intent[:30],
        status=OutStatus.QUEUED,
        idempotency_key=key,
        sent_by=by,
        created_at=now or timezone.now(),
    )

    def enqueue():
        from .tasks import conversation_reply_task

        conversation_reply_task.apply_async(args=[message.pk], queue=REPLY_QUEUE)

    # robust: the answer is recorded; if the broker is down the sweep sends it.
    transaction.on_commit(enqueue, robust=True)
    return message


def conversation_note_reply(*, conversation: Conversation, message) -> ConversationMessage:
    """A reply messaging sent on its own (a reminder's "1" → "confirmada") goes on the
    timeline too; it is delivered by messaging (``OutboundMessage``), not from here."""
    return ConversationMessage.objects.create(
        clinic_id=conversation.clinic_id,
        conversation=conversation,
        direction=MessageDirection.OUT,
        author=MessageAuthor.ASSISTANT,
        text=message.body,
        intent=message.template[:30],
    )


@transaction.atomic
def conversation_take_over(*, conversation: Conversation, by) -> Conversation:
    """A receptionist takes the conversation: the assistant stays silent until it is handed
    back or the clinic's timeout passes."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    conversation.state = ConversationState.HUMAN
    conversation.taken_over_by = by
    conversation.taken_over_at = timezone.now()
    conversation.dialogue = {}
    conversation.save(update_fields=["state", "taken_over_by", "taken_over_at", "dialogue"])
    return conversation


@transaction.atomic
def conversation_hand_back(*, conversation: Conversation, by=None) -> Conversation:
    """The assistant answers this conversation again."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    conversation.state = ConversationState.ASSISTANT
    conversation.handover_reason = ""
    conversation.alert = False
    conversation.dialogue = {}
    conversation.save(update_fields=["state", "handover_reason", "alert", "dialogue"])
    return conversation


@transaction.atomic
def conversation_close(*, conversation: Conversation, by=None) -> Conversation:
    """Done: the next message of the phone opens a new conversation."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    conversation.state = ConversationState.CLOSED
    conversation.alert = False
    conversation.dialogue = {}
    conversation.save(update_fields=["state", "alert", "dialogue"])
    return conversation


@transaction.atomic
def conversation_staff_reply(*, conversation: Conversation, text: str, by) -> ConversationMessage:
    """Reception writes in the conversation (taking it over if the assistant had it)."""
    if conversation.state != ConversationState.HUMAN:
        conversation = conversation_take_over(conversation=conversation, by=by)
    now = timezone.now()
    return conversation_say(
        conversation=conversation,
        text=text,
        key=f"staff:{conversation.pk}:{now.timestamp()}:{by.pk if by else 0}",
        author=MessageAuthor.STAFF,
        by=by,
        now=now,
    )
