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

Statuses: ``received → processed | ignored | failed``; ``failed → received`` when someone
asks to process it again (admin action). Nothing else moves a webhook.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import registry
from .base import (
    InboundMessage,
    MessageStatusUpdate,
    Provider,
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
                # Stored but never processed (e.g. the broker was down after commit): the
                # provider's retry is our cue. Processing locks the row, so this cannot
                # process it twice.
                _enqueue_on_commit(webhook.pk)
            return Received(webhook, created=False)
        if not error:
            _enqueue_on_commit(webhook.pk)
    return Received(webhook, created=True)


def _enqueue_on_commit(webhook_id: int) -> None:
    def enqueue():
        from .tasks_inbound import inbound_webhook_process_task

        inbound_webhook_process_task.apply_async(args=[webhook_id], queue=PROCESS_QUEUE)

    # robust: the webhook is stored and the provider must get its 2xx even if the broker is
    # down; the sweeper (inbound_webhook_requeue_stale) or the provider's retry re-enqueues.
    transaction.on_commit(enqueue, robust=True)


# --- Processing -----------------------------------------------------------------------------
def _transition(webhook: InboundWebhook, status: str, *, error: str = "") -> None:
    if status not in TRANSITIONS[webhook.status]:
        raise InvalidTransition(f"inbound webhook {webhook.pk}: {webhook.status} → {status}")
    webhook.status = status
    webhook.error = error
    fields = ["status", "error"]
    if status != InboundWebhookStatus.RECEIVED:
        webhook.processed_at = timezone.now()
        fields.append("processed_at")
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


def _act_on(webhook: InboundWebhook, event: WebhookEvent) -> bool:
    """Hand every item to whoever acts on it; whether anyone did."""
    acted = False
    for index, item in enumerate(event.items):
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

    Idempotent: a webhook that is not ``received`` (already processed, ignored or failed) is
    left alone, and the row is locked so two workers cannot both process it. The effects of
    its items (handlers, published events) and its new status commit together; if parsing
    or a handler fails, no item's effect stays and the webhook is ``failed`` with the reason.
    """
    with transaction.atomic():
        webhook = (
            # of=self: PostgreSQL cannot lock the nullable side of the account join.
            InboundWebhook.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk=webhook_id)
            .first()
        )
        if webhook is None or webhook.status != InboundWebhookStatus.RECEIVED:
            return webhook
        if webhook.clinic_id is None or webhook.account is None:
            _transition(
                webhook, InboundWebhookStatus.FAILED, error="the provider account was deleted"
            )
            return webhook
        try:
            provider = provider_for(webhook.account)
            event = provider.parse_webhook(stored_request(webhook))
            # Savepoint: a failing item undoes the effects of the ones before it.
            with transaction.atomic():
                acted = _act_on(webhook, event)
        except WebhookMalformed as exc:
            _transition(webhook, InboundWebhookStatus.FAILED, error=str(exc) or "malformed")
            return webhook
        except Exception as exc:
            logger.exception("inbound webhook %s failed", webhook.pk)
            _transition(
                webhook, InboundWebhookStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}"
            )
            return webhook
        _transition(
            webhook, InboundWebhookStatus.PROCESSED if acted else InboundWebhookStatus.IGNORED
        )
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
    """Enqueue again the webhooks still ``received`` after ``older_than`` (their task was
    lost: broker down at commit, worker killed). Returns how many were enqueued."""
    cutoff = timezone.now() - older_than
    ids = list(
        InboundWebhook.objects.filter(
            status=InboundWebhookStatus.RECEIVED, received_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
    from .tasks_inbound import inbound_webhook_process_task

    for webhook_id in ids:
        inbound_webhook_process_task.apply_async(args=[webhook_id], queue=PROCESS_QUEUE)
    return len(ids)
