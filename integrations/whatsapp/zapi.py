"""Z-API (hosted WhatsApp gateway) as a ``whatsapp`` provider.

Wire format from developer.z-api.io (send-message-text, instance status, client-token, and
the on-message-received, on-message-send and on-whatsapp-message-status-changes webhook
pages) and ``PROVIDERS.md`` §3:

- every call: ``https://api.z-api.io/instances/{instance_id}/token/{instance_token}/…`` with
  header ``Client-Token: <account security token>``. The instance token travels in the URL
  path, so it is a credential like the others (redacted from logs and the call log).
- send: ``POST …/send-text`` ``{"phone": "5511999999999", "message": "…"}`` →
  ``{"zaapId", "messageId", "id"}``.
- health: ``GET …/status`` → ``{"connected", "error", "smartphoneConnected"}``.
- webhooks: ``ReceivedCallback`` (messages, including our own with ``fromMe``),
  ``MessageStatusCallback`` (``status`` SENT|RECEIVED|READ|READ_BY_ME|PLAYED for ``ids``),
  ``DeliveryCallback`` (our send reached WhatsApp, or ``error``), and connection callbacks.
  Z-API signs nothing: the unguessable token of our webhook URL is the authentication.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import (
    HealthResult,
    InboundMessage,
    MessageRequest,
    MessageResult,
    MessageStatusUpdate,
    MessagingProvider,
    PermanentProviderError,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from ..choices import ProviderKind
from ..http import response_json

NAME = "zapi"
API_URL = "https://api.z-api.io"

#: ``MessageStatusCallback`` statuses → ours. ``READ_BY_ME`` (the clinic read the patient's
#: message) and ``READ-SELF`` (the recipient turned read receipts off) say nothing new about
#: our message and are ignored, as is anything unknown.
STATUSES = {
    "PENDING": "queued",
    "SENT": "sent",
    "RECEIVED": "delivered",
    "READ": "read",
    "PLAYED": "read",  # a voice note was listened to: it was read
}


@registry.register
class ZapiWhatsApp(MessagingProvider):
    kind = ProviderKind.WHATSAPP
    name = NAME
    label = _("WhatsApp via Z-API")
    credentials_schema = {
        "instance_token": _("Token of the Z-API instance (part of every API address)."),
        "client_token": _("Account security token of Z-API (Client-Token header)."),
    }
    settings_schema = {
        "instance_id": _("ID of the Z-API instance connected to the clinic's WhatsApp."),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _missing(self) -> list[str]:
        names = [] if self.settings.get("instance_id") else ["instance_id"]
        return names + [
            n for n in ("instance_token", "client_token") if not self.credentials.get(n)
        ]

    def _url(self, operation: str) -> str:
        instance = quote(str(self.settings["instance_id"]), safe="")
        token = quote(str(self.credentials["instance_token"]), safe="")
        return f"{API_URL}/instances/{instance}/token/{token}/{operation}"

    def _headers(self) -> dict[str, str]:
        return {"Client-Token": str(self.credentials["client_token"])}

    def send(self, message: MessageRequest) -> MessageResult:
        """Send a text; the result carries the WhatsApp message id (``messageId``)."""
        missing = self._missing()
        if missing:
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing {', '.join(missing)})", provider=NAME
            )
        phone = re.sub(r"\D", "", message.to or "")
        if not phone:
            raise PermanentProviderError(f"{NAME}.send: no phone number to send to", provider=NAME)
        try:
            response = self.request(
                "POST",
                self._url("send-text"),
                operation="send",
                json={"phone": phone, "message": message.text},
                headers=self._headers(),
                # Z-API takes no idempotency key: a timed-out send may be in its queue, so it
                # is not repeated inline (the outbox retries later, or the chain moves on).
                retry=False,
            )
        except PermanentProviderError as exc:
            raise _refusal(exc) from exc
        data = response_json(response)
        message_id = (data.get("messageId") or data.get("id")) if isinstance(data, dict) else None
        if not message_id:
            raise TransientProviderError(
                f"{NAME}.send: answer without messageId", provider=NAME, http_status=200
            )
        # Z-API queues it; DeliveryCallback and MessageStatusCallback tell the rest.
        return MessageResult(provider_message_id=str(message_id), status="queued", raw=data)

    def health(self) -> HealthResult:
        """``/status`` of the instance: healthy only when the number is connected."""
        missing = self._missing()
        return self.health_probe(
            "" if missing else self._url("status"),
            missing=missing,
            headers={} if missing else self._headers(),
            refusal=lambda exc: _refusal(exc, operation="health"),
            judge=_instance_status,
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """Z-API has no signature: the webhook URL's unguessable token (checked by the
        endpoint) authenticates. A body of another instance is refused all the same: it was
        configured with the wrong URL and must not be stored under this clinic."""
        expected = str(self.settings.get("instance_id") or "")
        if not expected:
            raise WebhookUnauthorized("no instance_id configured: webhooks are refused", status=403)
        try:
            data = json.loads(request.body.decode("utf-8")) if request.body else None
        except (UnicodeDecodeError, ValueError):
            return  # authentic (URL token) but unreadable: stored and marked failed
        instance = data.get("instanceId") if isinstance(data, dict) else None
        if instance is not None and str(instance) != expected:
            raise WebhookUnauthorized("webhook of another Z-API instance", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """``ReceivedCallback`` → an inbound message (not our own, not groups);
        ``MessageStatusCallback`` and ``DeliveryCallback`` → statuses of our messages; other
        callbacks → nothing to do.

        Dedupe key: callback type, message id(s) and status; other callbacks fall back to the
        hash of the body."""
        data = _json_object(request)
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise WebhookMalformed("missing 'type'")
        if kind.lower() == "receivedcallback":  # the docs spell it ReceivedCallBack too
            return _received(data)
        if kind == "MessageStatusCallback":
            return _status_callback(data)
        if kind == "DeliveryCallback":
            return _delivery(data)
        # DisconnectedCallback, ConnectedCallback, PresenceChatCallback, …
        return WebhookEvent(dedupe_key="", items=[])


# --- Callbacks --------------------------------------------------------------------------------
def _received(data: dict) -> WebhookEvent:
    message_id = data.get("messageId")
    if not message_id:
        raise WebhookMalformed("ReceivedCallback without messageId")
    event = WebhookEvent(dedupe_key=f"ReceivedCallback:{message_id}", items=[])
    if data.get("fromMe") is True:
        return event  # our own message (sent through the API or typed on the clinic's phone)
    if any(data.get(flag) is True for flag in ("isGroup", "isNewsletter", "broadcast")):
        return event  # not a patient talking to the clinic
    if data.get("notification") or isinstance(data.get("reaction"), dict):
        return event  # call notices, group events, reactions: nothing was written
    sender = _phone(data.get("phone"))
    return WebhookEvent(
        dedupe_key=event.dedupe_key,
        items=[
            InboundMessage(
                provider_message_id=str(message_id),
                from_address=sender,
                to_address=_phone(data.get("connectedPhone")),
                text=_text_of(data),
                received_at=_epoch(data.get("momment")) or timezone.now(),
                sender_name=str(data.get("senderName") or data.get("chatName") or ""),
                raw=data,
            )
        ],
    )


def _status_callback(data: dict) -> WebhookEvent:
    ids = data.get("ids")
    if ids is None and data.get("id"):
        ids = [data["id"]]  # older payloads: one "id"
    raw_status = data.get("status")
    if not isinstance(ids, list) or not ids or not isinstance(raw_status, str):
        raise WebhookMalformed("MessageStatusCallback without ids and status")
    ids = [str(i) for i in ids if i]
    event_key = f"MessageStatusCallback:{','.join(sorted(ids))}:{raw_status}"
    status = STATUSES.get(raw_status.upper())
    if status is None or data.get("isGroup") is True:
        return WebhookEvent(dedupe_key=event_key, items=[])
    at = _epoch(data.get("momment")) or timezone.now()
    return WebhookEvent(
        dedupe_key=event_key,
        items=[MessageStatusUpdate(provider_message_id=i, status=status, at=at) for i in ids],
    )


def _delivery(data: dict) -> WebhookEvent:
    message_id = data.get("messageId") or data.get("zaapId")
    if not message_id:
        raise WebhookMalformed("DeliveryCallback without messageId")
    error = str(data.get("error") or "")
    status = "failed" if error else "sent"
    return WebhookEvent(
        dedupe_key=f"DeliveryCallback:{message_id}:{status}",
        items=[
            MessageStatusUpdate(
                provider_message_id=str(message_id),
                status=status,
                at=_epoch(data.get("momment")) or timezone.now(),
                error=error[:500],
            )
        ],
    )


# --- Helpers ----------------------------------------------------------------------------------
def _refusal(exc: PermanentProviderError, *, operation: str = "send") -> PermanentProviderError:
    """Z-API's 4xx, with its ``error`` text (``{"error": "null not allowed"}`` is a missing
    Client-Token)."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    reason = str(detail.get("error") or detail.get("message") or "request refused")[:200]
    if reason == "null not allowed":
        reason = "Client-Token missing or not accepted"
    return PermanentProviderError(
        f"{NAME}.{operation}: {reason} (HTTP {exc.http_status})",
        provider=NAME,
        http_status=exc.http_status,
        detail=exc.detail,
    )


def _text_of(data: dict) -> str:
    """The text, the chosen button or list row, or a caption; ``""`` for media without one
    (and for "waiting for this message" placeholders, which carry no content yet)."""
    for container, field in (
        ("text", "message"),
        ("buttonsResponseMessage", "message"),
        ("buttonReply", "message"),
        ("listResponseMessage", "title"),
        ("listResponseMessage", "message"),
        ("hydratedTemplate", "message"),
        ("image", "caption"),
        ("video", "caption"),
        ("document", "title"),
    ):
        value = data.get(container)
        if isinstance(value, dict) and isinstance(value.get(field), str) and value[field]:
            return value[field]
    return ""


def _phone(value: Any) -> str:
    """E.164 of a Z-API phone field; ``""`` when it is a WhatsApp privacy id (``…@lid``)."""
    value = str(value or "")
    if "@" in value and not value.endswith(("@s.whatsapp.net", "@c.us")):
        return ""
    digits = re.sub(r"\D", "", value.partition("@")[0])
    return f"+{digits}" if digits else ""


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data


def _epoch(value: Any) -> datetime | None:
    """Z-API's ``momment``: Unix time in milliseconds (seconds in a few older callbacks)."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        seconds = float(value)
        if seconds > 1e11:
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _instance_status(data) -> tuple[bool, str]:
    data = data if isinstance(data, dict) else {}
    if data.get("connected") is True:
        return True, gettext("WhatsApp connected.")
    return False, gettext("WhatsApp not connected (state: %(state)s).") % {
        "state": str(data.get("error") or "disconnected")[:200]
    }
