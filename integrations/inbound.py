"""Inbound webhooks: storing what providers send us, and acting on it later.

The view (``webhooks.py``) authenticates a request and calls :func:`inbound_webhook_receive`,
which stores the raw request (deduplicated by the provider's event id) and enqueues
:func:`inbound_webhook_process` after commit. Processing re-parses the *stored* body — the
stored request is the source of truth, so a webhook that failed can be processed again after
a fix — and hands each item to whoever acts on it:

- ``InboundMessage`` and ``MessageStatusUpdate`` become the domain events ``message.inbound``
  and ``message.status`` (payloads with ids only: no message text, no phone numbers);
- any item type can have in-process handlers, registered with :func:`inbound_handler`, so a
  higher layer (billing, for ``PaymentUpdate``/``InvoiceUpdate``) acts on it without this
  app importing that layer::

      @inbound_handler(PaymentUpdate)
      def settle_payment(item: PaymentUpdate, *, webhook: InboundWebhook, index: int) -> None:
          ...  # runs in the processing transaction; idempotent on (webhook.pk, index)

No lock and no transaction is held while a provider is waited on: what a notification only
names (a Mercado Pago payment, ``fetch_required``) is looked up first, outside any
transaction, and the handlers then apply the result in one short transaction that locks the
webhook's row.

Statuses: ``received → processed | ignored | failed``; ``failed → received`` when someone
asks to process it again (admin action) or the provider delivers the event again. A
transient error (a provider's 5xx/429 or timeout, a lost database connection, a deadlock)
keeps the webhook ``received`` and retries it with exponential backoff (``attempts``,
``next_attempt_at``); it is ``failed`` — the admin's list of webhooks to look at — only after
``CUIDAR_INBOUND_MAX_ATTEMPTS``. Any other error fails it at once, with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from . import registry
from .base import (
    InboundMessage,
    MessageStatusUpdate,
    PaymentUpdate,
    Provider,
    ProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
)
from .choices import InboundWebhookStatus
from .events import publish
from .models import InboundWebhook, ProviderAccount

logger = logging.getLogger(__name__)

#: The queue of work a patient or a payment is waiting on (settings.CUIDAR_QUEUES).
PROCESS_QUEUE = "integrations-high"

TRANSITIONS: dict[str, set[str]] = {
    InboundWebhookStatus.RECEIVED: {
        InboundWebhookStatus.PROCESSED,
        InboundWebhookStatus.IGNORED,
        InboundWebhookStatus.FAILED,
    },
    InboundWebhookStatus.FAILED: {InboundWebhookStatus.RECEIVED},
    InboundWebhookStatus.PROCESSED: set(),
    InboundWebhookStatus.IGNORED: set(),
}

_DEDUPE_MAX = InboundWebhook._meta.get_field("dedupe_key").max_length
_CONTENT_TYPE_MAX = InboundWebhook._meta.get_field("content_type").max_length
_PATH_MAX = InboundWebhook._meta.get_field("path").max_length

# Headers worth keeping for support and replays: what the request was and how it was
# signed. Never credentials: a header is dropped if its name looks like one, even when it
# also looks like an id (e.g. "asaas-access-token", "x-api-key").
_KEEP_HEADERS = {"content-type", "user-agent", "content-length"}
_KEEP_PATTERN = re.compile(r"signature|event|delivery|request-id|webhook|hook|timestamp|-id$")
_SECRET_PATTERN = re.compile(r"auth|cookie|token|secret|passw|key|session|credential")
_HEADER_VALUE_MAX = 500
#: Query parameters are kept (minus secret-looking ones) under this pseudo-header, since
#: some providers put the event in the query string (Mercado Pago's ``data.id``/``type``).
#: HTTP header names cannot start with ":", so it never collides with a real header.
QUERY_KEY = ":query"


#: Longest wait between two attempts of a webhook failing transiently.
BACKOFF_CAP_SECONDS = 60 * 60
#: A retry task arriving this much early (clock skew between workers) still runs.
DUE_TOLERANCE = timedelta(seconds=2)


def max_attempts() -> int:
    return getattr(settings, "CUIDAR_INBOUND_MAX_ATTEMPTS", 8)


def backoff_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: exponential (30 s, 60 s, 2 min …
    with the defaults, up to an hour) with jitter between half and the whole step."""
    base = getattr(settings, "CUIDAR_INBOUND_BACKOFF_SECONDS", 30)
    step = min(base * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)
    return random.uniform(step / 2, step)  # noqa: S311 - jitter, not security


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later can help: a provider's 5xx, 429, timeout or refused
    connection (``ProviderError(permanent=False)``, an open circuit), a database that went
    away, a deadlock or a serialization failure (``OperationalError`` on PostgreSQL, a
    locked database on SQLite). Anything else — a refusal, a bug — fails at once."""
    if isinstance(exc, ProviderError):
        return not exc.permanent
    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | requests.Timeout
        | requests.ConnectionError
        | TimeoutError
        | ConnectionError,
    )


class InvalidTransition(Exception):
    """A webhook was asked to move to a status its pipeline does not allow."""


# --- Handlers registry ----------------------------------------------------------------------
InboundHandler = Callable[..., None]
_handlers: dict[type, list[InboundHandler]] = {}


def inbound_handler(item_type: type):
    """Register a function called with every parsed item of ``item_type``:
    ``func(item, *, webhook, index)``. It runs inside the processing transaction (a failure
    undoes every item's effect and marks the webhook failed) and must be idempotent."""

    def decorator(func: InboundHandler) -> InboundHandler:
        funcs = _handlers.setdefault(item_type, [])
        if func not in funcs:
            funcs.append(func)
        return func

    return decorator


def inbound_handler_remove(item_type: type, func: InboundHandler) -> None:
    """Forget a handler (tests)."""
    funcs = _handlers.get(item_type, [])
    if func in funcs:
        funcs.remove(func)


def handlers_of(item_type: type) -> list[InboundHandler]:
    return list(_handlers.get(item_type, []))


# --- Building requests ----------------------------------------------------------------------
def headers_of_interest(headers: dict[str, str]) -> dict[str, str]:
    """The subset of (lower-cased) request headers that is safe and useful to store."""
    kept = {}
    for name, value in headers.items():
        name = name.lower()
        if _SECRET_PATTERN.search(name):
            continue
        if name in _KEEP_HEADERS or (name.startswith("x-") and _KEEP_PATTERN.search(name)):
            kept[name] = str(value)[:_HEADER_VALUE_MAX]
    return kept


def query_of_interest(query: dict[str, str]) -> dict[str, str]:
    """Query parameters minus anything that looks like a credential (``?token=``)."""
    return {
        k: str(v)[:_HEADER_VALUE_MAX]
        for k, v in query.items()
        if not _SECRET_PATTERN.search(k.lower()) and "signature" not in k.lower()
    }


def stored_request(webhook: InboundWebhook) -> WebhookRequest:
    """Rebuild the request a provider parses from what was stored.

    The public URL and the credential-looking headers were not stored: processing only
    parses, it does not verify again (that happened when the request arrived)."""
    headers = dict(webhook.headers or {})
    query = headers.pop(QUERY_KEY, None) or {}
    return WebhookRequest(
        method="POST",
        url="",
        subpath=webhook.path,
        headers=headers,
        query=query,
        body=bytes(webhook.body),
        content_type=webhook.content_type,
    )


def provider_for(account: ProviderAccount) -> Provider:
    """The adapter instance serving ``account`` (raises ``registry.UnknownProvider``)."""
    return registry.get(account.kind, account.provider)(account)


def _dedupe_key(provider: str, account_id: int, key: str) -> str:
    full = f"{provider}:{account_id}:{key}"
    if len(full) <= _DEDUPE_MAX:
        return full
    # A provider id too long for the column: its hash still dedupes exactly.
    return f"{provider}:{account_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --- Receiving ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    webhook: InboundWebhook
    created: bool  # False: a replay of a webhook stored before


def inbound_webhook_receive(
    *, account: ProviderAccount, provider: Provider, request: WebhookRequest
) -> Received:
    """Store an authenticated webhook once, and enqueue its processing after commit.

    The caller has verified the request. It is parsed here only for its dedupe key: a body
    that cannot be parsed is stored anyway, ``failed`` with the reason and deduplicated by
    the hash of its body, so that the provider gets its 2xx (and stops retrying) and an
    operator can see it. A replay of a stored event is not stored or processed again.
    """
    error = ""
    try:
        event: WebhookEvent = provider.parse_webhook(request)
        key = event.dedupe_key or _body_key(request.body)
    except WebhookMalformed as exc:
        error = str(exc) or exc.__class__.__name__
        key = _body_key(request.body)
    except Exception as exc:
        # A bug in a parser must not turn into an endless retry loop by the provider: keep
        # the request, mark it failed, and let an operator process it again after the fix.
        logger.exception(
            "webhook parser crashed: provider=%s account=%s", provider.name, account.pk
        )
        error = f"{exc.__class__.__name__}: {exc}"
        key = _body_key(request.body)

    # A provider may send its shared secret in a header named as the clinic chose (Focus
    # NFe): whatever its name, a header carrying a credential of the account is not kept.
    secrets = [value for value in provider.secrets() if len(value) >= 4]
    headers = {
        name: value
        for name, value in headers_of_interest(request.headers).items()
        if not any(secret in value for secret in secrets)
    }
    query = query_of_interest(request.query)
    if query:
        headers[QUERY_KEY] = query
    dedupe_key = _dedupe_key(provider.name, account.pk, key)

    with transaction.atomic():
        try:
            # Savepoint: a concurrent delivery of the same event may win the unique key.
            with transaction.atomic():
                webhook = InboundWebhook.objects.create(
                    clinic_id=account.clinic_id,
                    account=account,
                    provider=provider.name,
                    path=request.subpath[:_PATH_MAX],
                    headers=headers,
                    body=provider.webhook_body_to_store(request),
                    content_type=request.content_type[:_CONTENT_TYPE_MAX],
                    dedupe_key=dedupe_key,
                    status=InboundWebhookStatus.FAILED if error else InboundWebhookStatus.RECEIVED,
                    error=error,
                )
        except IntegrityError:
            webhook = InboundWebhook.objects.filter(dedupe_key=dedupe_key).first()
            if webhook is None:
                raise  # not our unique key: a real error
            if webhook.status == InboundWebhookStatus.RECEIVED:
                # Stored but not processed yet (the broker was down after commit, or it is
                # waiting for a retry after a transient error): the provider's retry is our
                # cue to try now. Processing locks the row, so this cannot process it twice.
                InboundWebhook.objects.filter(pk=webhook.pk, next_attempt_at__isnull=False).update(
                    next_attempt_at=timezone.now()
                )
                _enqueue_on_commit(webhook.pk)
            elif webhook.status == InboundWebhookStatus.FAILED and not error:
                # Never processed successfully: the provider delivering it again must not be
                # lost as a duplicate (failed → received, with a fresh round of attempts).
                # A body that does not parse is not retried: it would fail the same way.
                moved = InboundWebhook.objects.filter(
                    pk=webhook.pk, status=InboundWebhookStatus.FAILED
                ).update(status=InboundWebhookStatus.RECEIVED, attempts=0, next_attempt_at=None)
                if moved:
                    webhook.status = InboundWebhookStatus.RECEIVED
                    _enqueue_on_commit(webhook.pk)
            return Received(webhook, created=False)
        if not error:
            _enqueue_on_commit(webhook.pk)
    return Received(webhook, created=True)


def _enqueue_on_commit(webhook_id: int, *, countdown: float | None = None) -> None:
    def enqueue():
        from .tasks_inbound import inbound_webhook_process_task

        options = {"countdown": countdown} if countdown else {}
        inbound_webhook_process_task.apply_async(args=[webhook_id], queue=PROCESS_QUEUE, **options)

    # robust: the webhook is stored and the provider must get its 2xx even if the broker is
    # down; the sweeper (inbound_webhook_requeue_stale) or the provider's retry re-enqueues.
    transaction.on_commit(enqueue, robust=True)


# --- Processing -----------------------------------------------------------------------------
def _transition(webhook: InboundWebhook, status: str, *, error: str = "") -> None:
    if status not in TRANSITIONS[webhook.status]:
        raise InvalidTransition(f"inbound webhook {webhook.pk}: {webhook.status} → {status}")
    webhook.status = status
    webhook.error = error
    webhook.next_attempt_at = None
    fields = ["status", "error", "attempts", "next_attempt_at"]
    if status != InboundWebhookStatus.RECEIVED:
        webhook.processed_at = timezone.now()
        fields.append("processed_at")
    else:
        webhook.attempts = 0  # processed again by hand: a fresh round of attempts
    webhook.save(update_fields=fields)


def _event_payload(webhook: InboundWebhook, index: int, item) -> dict:
    # Ids only (DESIGN.md: payloads carry no personal data): a subscriber that needs the
    # text or the sender reads the stored webhook, under its own access rules.
    payload = {
        "inbound_webhook_id": webhook.pk,
        "item": index,
        "provider": webhook.provider,
        "account_id": webhook.account_id,
        "provider_message_id": item.provider_message_id,
    }
    if isinstance(item, MessageStatusUpdate):
        payload["status"] = item.status  # a status code, not personal data
    return payload


def _resolve(provider: Provider, items: list) -> list:
    """The items as the provider stands by them: a notification that only names a payment
    (``fetch_required``) is replaced by the payment read from the gateway. Called outside
    any transaction: nothing is locked while the gateway answers (or hangs until its
    timeout)."""
    resolved = []
    for item in items:
        if isinstance(item, PaymentUpdate) and item.fetch_required:
            item = provider.get_charge(item.gateway_payment_id)
        resolved.append(item)
    return resolved


def _act_on(webhook: InboundWebhook, items: list) -> bool:
    """Hand every item to whoever acts on it; whether anyone did."""
    acted = False
    for index, item in enumerate(items):
        for handler in handlers_of(type(item)):
            handler(item, webhook=webhook, index=index)
            acted = True
        if isinstance(item, InboundMessage):
            publish(
                "message.inbound",
                clinic=webhook.clinic_id,
                payload=_event_payload(webhook, index, item),
            )
            acted = True
        elif isinstance(item, MessageStatusUpdate):
            publish(
                "message.status",
                clinic=webhook.clinic_id,
                payload=_event_payload(webhook, index, item),
            )
            acted = True
    return acted


def inbound_webhook_process(*, webhook_id: int) -> InboundWebhook | None:
    """Act on a stored webhook, once.

    Idempotent: a webhook that is not ``received`` (already processed, ignored or failed),
    or whose retry is not due yet, is left alone. The stored body is parsed and what it only
    names is looked up at the provider first, with no transaction open; then the row is
    locked (so two workers cannot both act on it) and the items' effects (handlers,
    published events) and the new status commit together in one short transaction. If a
    handler fails, no item's effect stays: a transient error schedules another attempt
    (:func:`is_transient`), any other fails the webhook with the reason.
    """
    webhook = InboundWebhook.objects.select_related("account").filter(pk=webhook_id).first()
    if webhook is None or webhook.status != InboundWebhookStatus.RECEIVED:
        return webhook
    if webhook.next_attempt_at and webhook.next_attempt_at > timezone.now() + DUE_TOLERANCE:
        return webhook  # a retry that came early: its own task (or the sweeper) runs it
    seen = webhook.attempts
    if webhook.clinic_id is None or webhook.account is None:
        return _fail(webhook_id, seen, "the provider account was deleted")
    try:
        provider = provider_for(webhook.account)
        items = _resolve(provider, provider.parse_webhook(stored_request(webhook)).items)
    except WebhookMalformed as exc:
        return _fail(webhook_id, seen, str(exc) or "malformed")
    except Exception as exc:
        return _failed_attempt(webhook_id, seen, exc)
    try:
        with transaction.atomic():
            webhook = (
                # of=self: PostgreSQL cannot lock the nullable side of the account join.
                InboundWebhook.objects.select_for_update(of=("self",))
                .select_related("account")
                .filter(pk=webhook_id, status=InboundWebhookStatus.RECEIVED)
                .first()
            )
            if webhook is None:
                return InboundWebhook.objects.filter(pk=webhook_id).first()  # another won
            acted = _act_on(webhook, items)
            _transition(
                webhook, InboundWebhookStatus.PROCESSED if acted else InboundWebhookStatus.IGNORED
            )
    except Exception as exc:
        # Out of the transaction (rolled back whole: a deadlock aborts it on PostgreSQL);
        # the attempt is recorded in a new one.
        return _failed_attempt(webhook_id, seen, exc)
    return webhook


def _fail(
    webhook_id: int, seen: int, error: str, *, attempts: int | None = None
) -> InboundWebhook | None:
    """Fail a ``received`` webhook for good, with the reason (unless another worker moved
    it meanwhile: its outcome stands)."""
    with transaction.atomic():
        webhook = (
            InboundWebhook.objects.select_for_update()
            .filter(pk=webhook_id, status=InboundWebhookStatus.RECEIVED, attempts=seen)
            .first()
        )
        if webhook is None:
            return InboundWebhook.objects.filter(pk=webhook_id).first()
        if attempts is not None:
            webhook.attempts = attempts
        _transition(webhook, InboundWebhookStatus.FAILED, error=error)
    return webhook


def _failed_attempt(webhook_id: int, seen: int, exc: Exception) -> InboundWebhook | None:
    """Record an attempt that raised ``exc``: retried later with backoff when the error is
    transient and attempts are left, failed for good (with the reason) otherwise."""
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if not is_transient(exc):
        logger.exception("inbound webhook %s failed", webhook_id)
        return _fail(webhook_id, seen, error)
    number = seen + 1
    if number >= max_attempts():
        logger.error("inbound webhook %s gave up after %s attempts: %s", webhook_id, number, error)
        return _fail(webhook_id, seen, f"gave up after {number} attempts: {error}", attempts=number)
    delay = backoff_delay(number)
    logger.warning(
        "inbound webhook %s attempt %s failed (%s); next in %.0f s",
        webhook_id,
        number,
        exc.__class__.__name__,
        delay,
    )
    with transaction.atomic():
        webhook = (
            InboundWebhook.objects.select_for_update()
            .filter(pk=webhook_id, status=InboundWebhookStatus.RECEIVED, attempts=seen)
            .first()
        )
        if webhook is None:
            return InboundWebhook.objects.filter(pk=webhook_id).first()
        webhook.attempts = number
        webhook.error = error
        webhook.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        webhook.save(update_fields=["attempts", "error", "next_attempt_at"])
        _enqueue_on_commit(webhook_id, countdown=delay)
    return webhook


def webhook_item(webhook_id: int, index: int):
    """``(webhook, item)``: item ``index`` of a stored webhook, parsed again from its stored
    body (subscribers of ``message.inbound``/``message.status`` read the text and sender
    here). ``None`` when the webhook or its account is gone."""
    webhook = InboundWebhook.objects.select_related("account").filter(pk=webhook_id).first()
    if webhook is None or webhook.account is None:
        return None
    event = provider_for(webhook.account).parse_webhook(stored_request(webhook))
    if index >= len(event.items):
        return None
    return webhook, event.items[index]


def inbound_webhook_retry(*, webhook_id: int) -> InboundWebhook | None:
    """Process a failed webhook again from its stored request (admin "process again").
    Webhooks in any other status are left alone."""
    with transaction.atomic():
        webhook = InboundWebhook.objects.select_for_update().filter(pk=webhook_id).first()
        if webhook is None or webhook.status != InboundWebhookStatus.FAILED:
            return webhook
        _transition(webhook, InboundWebhookStatus.RECEIVED)
    return inbound_webhook_process(webhook_id=webhook_id)


def inbound_webhook_requeue_stale(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Enqueue again the webhooks still ``received`` ``older_than`` after they arrived or
    after their retry was due (their task was lost: broker down at commit, worker killed).
    Returns how many were enqueued."""
    cutoff = timezone.now() - older_than
    ids = list(
        InboundWebhook.objects.filter(
            Q(next_attempt_at__isnull=True, received_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff),
            status=InboundWebhookStatus.RECEIVED,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    )
    from .tasks_inbound import inbound_webhook_process_task

    for webhook_id in ids:
        inbound_webhook_process_task.apply_async(args=[webhook_id], queue=PROCESS_QUEUE)
    return len(ids)
