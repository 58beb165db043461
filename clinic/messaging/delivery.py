"""Delivery of a recorded message: channel by channel, provider by provider, until one takes
it — and what happened, even when a worker dies mid-send.

:func:`message_deliver` picks the channels by the patient's preference and consent
(``channels.channel_plan``), tries each channel's provider chain (``integrations.chains``),
falls back to the next consented channel, and records which channel and provider served —
or why nothing was sent. A send is claimed (``in_flight_at``) in a short committed
transaction before any provider is called, and its outcome saved in another one, so no
transaction is held across a network call and a claim outliving its lease
(``CUIDAR_MESSAGE_SEND_LEASE``) marks a send whose outcome is unknown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.choices import ContactChannel, MessageStatus
from integrations.base import (
    ChainFailed,
    ChainOutcomeUnknown,
    CircuitOpenError,
    MessageRequest,
    OutcomeUnknownError,
    ProviderError,
)
from integrations.chains import Outcome, run_chain

from . import catalogue
from .channels import channel_address, channel_plan
from .models import OutboundMessage

logger = logging.getLogger(__name__)

#: Delivery rounds before a message whose providers keep failing (transiently) is failed.
MAX_ROUNDS = 5
RETRY_BASE_SECONDS = 60
#: Seconds a send may stay in progress before its worker is presumed dead (its outcome is
#: then unknown): well above a chain of provider calls (10 s read timeout each).
SEND_LEASE = 300
#: A provider's clock and ours may differ: a lookup searches from this much earlier.
LOOKUP_CLOCK_SKEW = timedelta(minutes=2)


def _html(message: OutboundMessage) -> str:
    return render_to_string(
        "messaging/email/message.html", {"clinic": message.clinic, "body": message.body}
    )


def _attempt(round_: int, channel: str, outcome: str, **extra) -> dict:
    return {"round": round_, "channel": channel, "outcome": outcome, **extra}


def _account(account) -> dict:
    """Which provider account served or failed, beside the adapter's name: a clinic can
    have two accounts of one provider (two WhatsApp numbers), and support needs to know
    which one. The clinic's default accounts (not saved) have no id."""
    if account is None:
        return {}
    return {"account_id": account.pk, "account": account.label or str(account.provider)}


def send_lease() -> timedelta:
    """How long a send may be in progress before its worker is presumed dead: longer than
    any chain of provider calls can take (``CUIDAR_MESSAGE_SEND_LEASE`` seconds)."""
    return timedelta(seconds=float(getattr(settings, "CUIDAR_MESSAGE_SEND_LEASE", SEND_LEASE)))


@dataclass
class _Claim:
    """A delivery this worker took: ``at`` marks the row as ours (``in_flight_at``);
    ``unknown`` is the earlier send found unfinished, (since, channel, provider)."""

    message: OutboundMessage
    at: datetime
    unknown: tuple[datetime, str, str] | None = None


def _claim(message_id: int, now: datetime) -> tuple[OutboundMessage | None, _Claim | None]:
    """Mark a due, queued message as being sent, in a short committed transaction, so that
    a worker dying after the provider took it leaves a trace. ``None`` as the claim when
    there is nothing to do (sent already, not yet due, another worker is sending it)."""
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update(of=("self",))
            .select_related("patient", "clinic")
            .filter(pk=message_id)
            .first()
        )
        if message is None or message.status != MessageStatus.QUEUED:
            return message, None
        if message.next_attempt_at and message.next_attempt_at > now:
            return message, None
        unknown = None
        if message.in_flight_at is not None:
            if message.in_flight_at > now - send_lease():
                return message, None  # being sent by a live worker
            unknown = (message.in_flight_at, message.in_flight_channel, message.in_flight_provider)
        message.in_flight_at = now
        message.save(update_fields=["in_flight_at"])
    return message, _Claim(message=message, at=now, unknown=unknown)


def _request_for(message: OutboundMessage, channel: str, address: str) -> MessageRequest:
    return MessageRequest(
        to=address,
        text=message.body,
        subject=message.subject,
        html=_html(message) if channel == ContactChannel.EMAIL else "",
        template=message.meta_template_name if channel == ContactChannel.WHATSAPP else "",
        template_language=message.meta_language or "pt_BR",
        template_variables=list(message.template_variables or []),
        idempotency_key=f"{message.idempotency_key}:{channel}",
    )


@dataclass
class _Sent:
    channel: str
    address: str
    provider: str
    provider_message_id: str


def _find_sent(
    message: OutboundMessage, *, channel: str, provider: str, since: datetime
) -> _Sent | bool | None:
    """Ask the provider whether a send whose answer was lost went out: a ``_Sent`` when it
    did, ``None`` when it holds no such message, ``False`` when it cannot tell (no lookup,
    or the lookup failed)."""
    if not channel or not provider:
        return False
    from integrations import registry
    from integrations.chains import chain_for

    account = next(
        (a for a in chain_for(message.clinic_id, channel) if a.provider == provider), None
    )
    if account is None:
        return False
    try:
        adapter = registry.get(channel, provider)(account)
    except registry.UnknownProvider:
        return False
    if not getattr(adapter, "can_find_sent", False):
        return False
    address = channel_address(message.patient, channel)
    try:
        found = adapter.find_sent(
            _request_for(message, channel, address), since=since - LOOKUP_CLOCK_SKEW
        )
    except ProviderError as exc:
        logger.warning("message %s: %s lookup failed: %s", message.pk, provider, exc)
        return False
    if found is None:
        return None
    return _Sent(channel, address, provider, found.provider_message_id)


def message_deliver(*, message_id: int, now: datetime | None = None) -> OutboundMessage | None:
    """Deliver a queued message: channel by channel, provider by provider, until one takes
    it. Safe twice, and after a crash:

    1. the send is claimed in a short committed transaction (``in_flight_at``);
    2. the providers are called with no transaction open and no row locked;
    3. the outcome is saved in another short transaction.

    A claim found older than its lease is a send whose worker died. If it had not called a
    provider yet (``in_flight_provider`` is written, committed, before each call), nothing
    went out and the message is delivered as usual. Otherwise the outcome is unknown: the
    provider is asked where it can tell (``find_sent``), otherwise the template's policy
    applies — at most once: "uncertain", never resent; at least once:
    sent again. A provider that took the request and never answered (a read timeout) stops
    the chain the same way."""
    now = now or timezone.now()
    message, claim = _claim(message_id, now)
    if claim is None:
        return message
    round_ = message.attempt_count + 1
    attempts: list[dict] = []
    at_least_once = catalogue.delivery_policy(message.template) == catalogue.AT_LEAST_ONCE

    if claim.unknown is not None and not claim.unknown[2]:
        # The worker died before calling any provider (each call is recorded first):
        # nothing went out, so this is an ordinary delivery.
        attempts.append(_attempt(round_, "", "not_called"))
    elif claim.unknown is not None:
        since, channel, provider = claim.unknown
        found = _find_sent(message, channel=channel, provider=provider, since=since)
        if isinstance(found, _Sent):
            attempts.append(_attempt(round_, channel, "found_sent", provider=provider))
            return _save_outcome(message, claim, attempts, now, sent=found)
        if found is None:
            attempts.append(_attempt(round_, channel, "found_not_sent", provider=provider))
        elif not at_least_once:
            attempts.append(_attempt(round_, channel or "", Outcome.UNKNOWN, provider=provider))
            return _save_outcome(
                message, claim, attempts, now, uncertain=(channel, provider, _WORKER_LOST)
            )
        else:
            attempts.append(
                _attempt(round_, channel or "", Outcome.UNKNOWN, provider=provider, resent=True)
            )

    plan = channel_plan(
        patient=message.patient, purpose=message.purpose, only_channel=message.only_channel
    )
    attempts += [_attempt(round_, ch, "skipped", reason=why) for ch, why in plan.skipped]
    transient = False
    for channel, address in plan.usable:

        def in_flight_at(account, channel=channel):
            # Committed at once (no transaction is open here): a crash during the call
            # leaves which provider may have the message.
            OutboundMessage.objects.filter(pk=message.pk, in_flight_at=claim.at).update(
                in_flight_channel=channel, in_flight_provider=account.provider
            )

        try:
            result = run_chain(
                message.clinic_id,
                channel,
                "send",
                _request_for(message, channel, address),
                before_call=in_flight_at,
            )
        except ChainOutcomeUnknown as exc:
            attempts += _failed_attempts(round_, channel, exc.errors)
            if at_least_once:
                transient = True
                continue  # a sign-in code: better twice than never
            provider_cls = _adapter_class(channel, exc.provider)
            if getattr(provider_cls, "can_find_sent", False):
                # Leave the claim: once its lease runs out the sweep asks the provider.
                return _save_outcome(message, claim, attempts, now, keep_claim=True)
            return _save_outcome(
                message, claim, attempts, now, uncertain=(channel, exc.provider, _NO_ANSWER)
            )
        except ChainFailed as exc:
            transient = transient or not exc.permanent
            attempts += _failed_attempts(round_, channel, exc.errors)
            continue
        attempts += [
            _attempt(round_, channel, outcome, provider=name, **_account(account))
            for (name, outcome), account in zip(
                result.tried, result.accounts or [None] * len(result.tried), strict=True
            )
        ]
        sent = _Sent(channel, address, result.provider, result.value.provider_message_id)
        return _save_outcome(message, claim, attempts, now, sent=sent)

    return _save_outcome(message, claim, attempts, now, unsent=(plan, transient, round_))


_WORKER_LOST = "worker_lost"
_NO_ANSWER = "no_answer"


def _uncertain_reason(why: str) -> str:
    if why == _WORKER_LOST:
        return _(
            "The worker sending it stopped before the outcome was known: not sent again. "
            "Check with the patient whether it arrived."
        )
    return _(
        "The provider took the message but never answered: not sent again. Check with the "
        "patient whether it arrived."
    )


def _adapter_class(kind: str, name: str):
    from integrations import registry

    try:
        return registry.get(kind, name)
    except registry.UnknownProvider:
        return None


def _failed_attempts(round_: int, channel: str, errors) -> list[dict]:
    return [
        _attempt(
            round_,
            channel,
            Outcome.CIRCUIT_OPEN
            if isinstance(error, CircuitOpenError)
            else Outcome.UNKNOWN
            if isinstance(error, OutcomeUnknownError)
            else Outcome.FAILED,
            provider=name,
            **_account(getattr(error, "account", None)),
            error=str(error)[:300],
            permanent=error.permanent,
        )
        for name, error in errors
    ]


def _save_outcome(
    claimed: OutboundMessage,
    claim: _Claim,
    attempts: list[dict],
    now: datetime,
    *,
    sent: _Sent | None = None,
    uncertain: tuple[str, str, str] | None = None,
    unsent: tuple | None = None,
    keep_claim: bool = False,
) -> OutboundMessage:
    """Record what this delivery did, in a short transaction. When the claim is no longer
    ours (its lease ran out while the providers were slow and another worker took over),
    what we learned is added but never overwrites a later outcome; a send we know went
    out still turns a queued or "uncertain" message into sent."""
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update(of=("self",))
            .select_related("patient", "clinic")
            .get(pk=claimed.pk)
        )
        message.attempts = [*message.attempts, *attempts]
        fields = ["attempts"]
        ours = message.in_flight_at == claim.at
        if not ours:
            logger.warning("message %s: claim lost while sending; outcome merged", message.pk)
            if sent is None or message.status not in (
                MessageStatus.QUEUED,
                MessageStatus.UNCERTAIN,
            ):
                message.save(update_fields=fields)
                return message
        round_ = claimed.attempt_count + 1
        if ours:
            message.attempt_count = round_
            fields.append("attempt_count")
        if not keep_claim:
            message.in_flight_at = None
            message.in_flight_channel = message.in_flight_provider = ""
            fields += ["in_flight_at", "in_flight_channel", "in_flight_provider"]
        if sent is not None:
            message.status = MessageStatus.SENT
            message.channel = sent.channel
            message.to_address = sent.address[:255]
            message.provider = sent.provider
            message.provider_message_id = (sent.provider_message_id or "")[:255]
            message.sent_at = now
            message.error = ""
            fields += ["status", "channel", "to_address", "provider", "provider_message_id"]
            fields += ["sent_at", "error"]
        elif uncertain is not None:
            channel, provider, why = uncertain
            message.status = MessageStatus.UNCERTAIN
            message.channel = channel or ""
            message.to_address = channel_address(message.patient, channel)[:255] if channel else ""
            message.provider = provider or ""
            message.error = _uncertain_reason(why)
            fields += ["status", "channel", "to_address", "provider", "error"]
        elif unsent is not None:
            plan, transient, round_ = unsent
            if not plan.usable:
                message.status = MessageStatus.NOT_SENT
                message.error = "; ".join(
                    f"{ContactChannel(ch).label}: {why}" for ch, why in plan.skipped
                )
            elif transient and round_ < MAX_ROUNDS:
                # Providers down: try again later, with growing pauses.
                message.next_attempt_at = now + timedelta(
                    seconds=RETRY_BASE_SECONDS * 2 ** (round_ - 1)
                )
                message.error = _("Every provider failed; trying again later.")
            else:
                message.status = MessageStatus.FAILED
                message.failed_at = now
                message.error = _("Every channel failed: %(errors)s") % {
                    "errors": "; ".join(
                        f"{a['channel']}/{a.get('provider', '')}: {a.get('error', '')}"
                        for a in message.attempts
                        if a["round"] == round_ and a["outcome"] != "skipped"
                    )[:1000]
                }
            fields += ["status", "error", "next_attempt_at", "failed_at"]
        message.save(update_fields=list(dict.fromkeys(fields)))
    return message
