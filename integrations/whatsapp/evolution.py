"""Evolution API v2 (self-hosted WhatsApp gateway on Baileys) as a ``whatsapp`` provider.

Wire format from EvolutionAPI/evolution-api (``src/api/guards/auth.guard.ts``,
``routes/sendMessage.router.ts``, ``integrations/event/webhook/webhook.controller.ts``,
``integrations/channel/whatsapp/whatsapp.baileys.service.ts``), its issue tracker, and
``PROVIDERS.md`` §1:

- send: ``POST {base_url}/message/sendText/{instance}`` with header ``apikey`` and
  ``{"number": "5511999999999", "text": "…"}`` → 201 with the stored message
  (``key.id``, ``status: "PENDING"``). A number without WhatsApp is a 400 whose
  ``response.message`` is ``[{"jid", "exists": false, "number"}]``.
- health: ``GET {base_url}/instance/connectionState/{instance}`` →
  ``{"instance": {"instanceName", "state": "open|connecting|close"}}``.
- webhooks: ``{"event": "messages.upsert", "instance", "data", "date_time", "sender", …}``.
  Evolution signs nothing. The clinic configures, in the webhook's ``headers``, either
  ``"jwt_key": "<secret>"`` (Evolution then sends ``Authorization: Bearer <JWT HS256>`` with
  ``{iat, exp = iat + 600, app: "evolution", action: "webhook"}``) or a secret header of its
  own; this adapter verifies one of the two and refuses everything else.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
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

NAME = "evolution"
DEFAULT_WEBHOOK_HEADER = "x-cuidar-webhook-secret"
#: Clock skew tolerated between the clinic's Evolution server and us when checking the JWT.
JWT_LEEWAY_SECONDS = 30

#: ``messages.update`` statuses (Baileys' ack levels) → ours. ``DELETED`` and anything else
#: are not delivery news and are ignored. Some versions send the numeric ack instead.
STATUSES = {
    "PENDING": "queued",
    "SERVER_ACK": "sent",
    "DELIVERY_ACK": "delivered",
    "READ": "read",
    "PLAYED": "read",  # a voice note was listened to: it was read
    "ERROR": "failed",
}
_ACKS = {0: "ERROR", 1: "PENDING", 2: "SERVER_ACK", 3: "DELIVERY_ACK", 4: "READ", 5: "PLAYED"}

#: Message types that are not something the patient said: reactions, edits, deletions, poll
#: votes, key exchanges.
_NOT_A_MESSAGE = {
    "reactionMessage",
    "protocolMessage",
    "editedMessage",
    "pollUpdateMessage",
    "senderKeyDistributionMessage",
    "messageContextInfo",
}
#: JID servers of one person's chat (``c.us`` is the older spelling). Groups (``g.us``),
#: broadcast lists and status (``broadcast``) and channels (``newsletter``) are not.
_PERSON_SERVERS = {"s.whatsapp.net", "c.us"}


@registry.register
class EvolutionWhatsApp(MessagingProvider):
    kind = ProviderKind.WHATSAPP
    name = NAME
    label = _("WhatsApp via Evolution API (self-hosted)")
    credentials_schema = {
        "apikey": _("API key of the Evolution server or token of the instance (apikey header)."),
        "webhook_secret": _(
            "Secret that Evolution sends in the webhook header named in the settings."
        ),
        "jwt_key": _(
            "Key Evolution signs its webhook JWT with (jwt_key in the webhook headers). "
            "When set, it is required instead of the secret header."
        ),
    }
    settings_schema = {
        "base_url": _(
            "Address of the clinic's Evolution server, e.g. https://evolution.example.com"
        ),
        "instance": _("Name of the Evolution instance connected to the clinic's WhatsApp."),
        "webhook_header": _(
            "Name of the header carrying the webhook secret (default x-cuidar-webhook-secret)."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _missing(self) -> list[str]:
        names = [n for n in ("base_url", "instance") if not self.settings.get(n)]
        return names + ([] if self.credentials.get("apikey") else ["apikey"])

    def _url(self, template: str) -> str:
        base_url = str(self.settings["base_url"]).rstrip("/")
        return base_url + template.format(instance=quote(str(self.settings["instance"]), safe=""))

    def _headers(self) -> dict[str, str]:
        return {"apikey": str(self.credentials["apikey"])}

    def send(self, message: MessageRequest) -> MessageResult:
        """Send a text; the result carries Evolution's WhatsApp message id (``key.id``)."""
        missing = self._missing()
        if missing:
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing {', '.join(missing)})", provider=NAME
            )
        try:
            response = self.request(
                "POST",
                self._url("/message/sendText/{instance}"),
                operation="send",
                json={"number": _digits(message.to), "text": message.text},
                headers=self._headers(),
                # Evolution takes no idempotency key: a timed-out send may have gone out, so
                # it is not repeated here (the outbox retries later, or the chain moves on).
                retry=False,
            )
        except PermanentProviderError as exc:
            raise _refusal(exc) from exc
        data = response_json(response)
        key = data.get("key") if isinstance(data, dict) else None
        message_id = key.get("id") if isinstance(key, dict) else None
        if not message_id:
            raise TransientProviderError(
                f"{NAME}.send: answer without key.id", provider=NAME, http_status=200
            )
        # 201 means stored and handed to WhatsApp ("PENDING"); the webhook reports the rest.
        status = "queued" if data.get("status", "PENDING") == "PENDING" else "sent"
        return MessageResult(provider_message_id=str(message_id), status=status, raw=data)

    def health(self) -> HealthResult:
        """``connectionState`` of the instance: healthy only when the phone is connected."""
        missing = self._missing()
        return self.health_probe(
            "" if missing else self._url("/instance/connectionState/{instance}"),
            missing=missing,
            headers={} if missing else self._headers(),
            judge=_connection_state,
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """The JWT when the account has a ``jwt_key``, else the secret header; an account with
        neither accepts nothing (Evolution itself never authenticates its calls)."""
        jwt_key = str(self.credentials.get("jwt_key") or "")
        secret = str(self.credentials.get("webhook_secret") or "")
        if jwt_key:
            self._verify_jwt(request, jwt_key)
        elif secret:
            self._verify_secret_header(request, secret)
        else:
            raise WebhookUnauthorized(
                "no jwt_key or webhook_secret configured: webhooks are refused", status=403
            )
        self._verify_instance(request)

    def _verify_jwt(self, request: WebhookRequest, key: str) -> None:
        scheme, _sep, token = request.header("authorization").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise WebhookUnauthorized("missing Authorization: Bearer <JWT>", status=401)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],  # never what the token's header says (alg=none, …)
                options={"require": ["exp", "iat"]},
                leeway=JWT_LEEWAY_SECONDS,
            )
        except jwt.InvalidTokenError as exc:
            raise WebhookUnauthorized(f"bad JWT: {exc.__class__.__name__}", status=403) from None
        if claims.get("app") != "evolution" or claims.get("action") != "webhook":
            raise WebhookUnauthorized("JWT claims are not Evolution's webhook claims", status=403)

    def _verify_secret_header(self, request: WebhookRequest, secret: str) -> None:
        header = str(self.settings.get("webhook_header") or DEFAULT_WEBHOOK_HEADER)
        provided = request.header(header.strip())
        if not provided:
            raise WebhookUnauthorized(f"missing {header} header", status=401)
        if not hmac.compare_digest(provided.encode(), secret.encode()):
            raise WebhookUnauthorized(f"wrong {header} header", status=403)

    def _verify_instance(self, request: WebhookRequest) -> None:
        # A server's global webhook posts every instance's events to one URL: events of
        # another instance (another clinic, maybe) must not be stored under this account.
        expected = str(self.settings.get("instance") or "")
        try:
            data = json.loads(request.body.decode("utf-8")) if request.body else None
        except (UnicodeDecodeError, ValueError):
            return  # authentic but unreadable: stored and marked failed by the parser
        instance = data.get("instance") if isinstance(data, dict) else None
        if expected and isinstance(instance, str) and instance != expected:
            raise WebhookUnauthorized("webhook of another Evolution instance", status=403)

    def webhook_body_to_store(self, request: WebhookRequest) -> bytes:
        """Evolution may echo the instance apikey in the body (``"apikey"``): never store
        a credential with the raw webhook."""
        try:
            data = json.loads(request.body)
        except ValueError:
            return request.body
        if isinstance(data, dict) and data.get("apikey"):
            data["apikey"] = None
            return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return request.body

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """``messages.upsert`` → inbound messages (not our own echoes, not groups);
        ``messages.update`` → statuses of our messages; other events → nothing to do.

        Dedupe key: the event and the WhatsApp message ids (and statuses) it carries; events
        without one (``connection.update`` …) fall back to the hash of the body."""
        envelope = _json_object(request)
        event = envelope.get("event")
        if not isinstance(event, str) or not event:
            raise WebhookMalformed("missing 'event'")
        # v2 sends "messages.upsert"; global webhooks and older servers "MESSAGES_UPSERT".
        event = event.strip().lower().replace("_", ".")
        if event == "messages.upsert":
            return self._upserts(event, envelope)
        if event == "messages.update":
            return self._updates(event, envelope)
        # connection.update, qrcode.updated, send.message (the echo of our own sends), …
        return WebhookEvent(dedupe_key="", items=[])

    def _upserts(self, event: str, envelope: dict) -> WebhookEvent:
        items: list[InboundMessage | MessageStatusUpdate] = []
        ids = []
        for data in _records(envelope.get("data")):
            key = data.get("key")
            if not isinstance(key, dict) or not key.get("id"):
                raise WebhookMalformed("messages.upsert without data.key.id")
            ids.append(str(key["id"]))
            if key.get("fromMe") is True:
                continue  # our own message (sent by us or typed on the clinic's phone)
            sender = _phone_of(key)
            if sender is None:
                continue  # a group, broadcast or channel: not a patient talking to the clinic
            text = _text_of(data.get("message"), data.get("messageType"))
            if text is None:
                continue
            items.append(
                InboundMessage(
                    provider_message_id=str(key["id"]),
                    from_address=sender,
                    to_address=_phone_of({"remoteJid": envelope.get("sender") or ""}) or "",
                    text=text,
                    received_at=_epoch(data.get("messageTimestamp")) or _when(envelope),
                    sender_name=str(data.get("pushName") or ""),
                    raw=data,
                )
            )
        return WebhookEvent(dedupe_key=f"{event}:{','.join(sorted(ids))}", items=items)

    def _updates(self, event: str, envelope: dict) -> WebhookEvent:
        items: list[InboundMessage | MessageStatusUpdate] = []
        keys = []
        for data in _records(envelope.get("data")):
            # v2: {keyId, remoteJid, fromMe, status, messageId (Evolution's row id)};
            # v1 spread the key: {id, remoteJid, fromMe, status}.
            key = data.get("key") if isinstance(data.get("key"), dict) else {}
            message_id = data.get("keyId") or key.get("id") or data.get("id")
            raw_status = data.get("status")
            if raw_status is None and isinstance(data.get("update"), dict):
                raw_status = data["update"].get("status")
            if not message_id or raw_status is None:
                raise WebhookMalformed("messages.update without keyId and status")
            if isinstance(raw_status, int) and not isinstance(raw_status, bool):
                raw_status = _ACKS.get(raw_status, str(raw_status))
            keys.append(f"{message_id}:{raw_status}")
            from_me = data.get("fromMe", key.get("fromMe"))
            if from_me is False:
                continue  # the patient's message was read on the clinic's phone: not news
            jid = str(data.get("remoteJid") or key.get("remoteJid") or "")
            if jid and _phone_of({"remoteJid": jid}) is None:
                continue  # group chats: we never send there
            status = STATUSES.get(str(raw_status).upper())
            if status is None:
                continue  # DELETED, or a status we do not know
            items.append(
                MessageStatusUpdate(
                    provider_message_id=str(message_id),
                    status=status,
                    at=_when(envelope, data.get("datetime")),
                    error="Evolution reported ERROR" if status == "failed" else "",
                )
            )
        return WebhookEvent(dedupe_key=f"{event}:{','.join(sorted(keys))}", items=items)


# --- Helpers ----------------------------------------------------------------------------------
def _refusal(exc: PermanentProviderError) -> PermanentProviderError:
    """Evolution's 4xx, explained: ``{"status", "error", "response": {"message": [...]}}``."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    response = detail.get("response") if isinstance(detail.get("response"), dict) else {}
    messages = response.get("message")
    messages = messages if isinstance(messages, list) else [messages] if messages else []
    if any(isinstance(m, dict) and m.get("exists") is False for m in messages):
        reason = "the number is not on WhatsApp"
    elif exc.http_status in (401, 403):
        reason = "Evolution refused the apikey"
    else:
        # Strings only: the dicts echo the recipient's number, which stays out of logs.
        texts = [m for m in messages if isinstance(m, str)]
        reason = (texts[0] if texts else str(detail.get("error") or "request refused"))[:200]
    return PermanentProviderError(
        f"{NAME}.send: {reason} (HTTP {exc.http_status})",
        provider=NAME,
        http_status=exc.http_status,
        detail=exc.detail,
    )


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data


def _records(data: Any) -> list[dict]:
    """``data`` is one record; a few versions send a list of them."""
    records = data if isinstance(data, list) else [data]
    if not records or not all(isinstance(r, dict) for r in records):
        raise WebhookMalformed("'data' is not an object")
    return records


def _digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone or "")
    if not digits:
        raise PermanentProviderError(f"{NAME}.send: no phone number to send to", provider=NAME)
    return digits


def _phone_of(key: dict) -> str | None:
    """The E.164 number of a one-person chat; ``""`` when WhatsApp hides it; ``None`` for
    groups, broadcasts and channels."""
    jid = str(key.get("remoteJid") or "")
    if jid.endswith("@lid"):
        # WhatsApp's privacy ids hide the number. Evolution ≥ 2.3 adds the phone JID as
        # remoteJidAlt (senderPn before); when neither came, the sender stays unknown.
        jid = str(key.get("remoteJidAlt") or key.get("senderPn") or "")
        if not jid or jid.endswith("@lid"):
            return ""
    user, _sep, server = jid.partition("@")
    if server and server not in _PERSON_SERVERS:
        return None
    digits = re.sub(r"\D", "", user.partition(":")[0])  # "5511…:12@…" names a device
    return f"+{digits}" if digits else ""


def _text_of(message: Any, message_type: Any = None) -> str | None:
    """What the patient wrote or chose; ``""`` for media without caption; ``None`` for
    things that are not messages (reactions, edits, deletions)."""
    if not isinstance(message, dict):
        return ""
    if message_type in _NOT_A_MESSAGE or (message and set(message) <= _NOT_A_MESSAGE):
        return None
    if isinstance(message.get("conversation"), str) and message["conversation"]:
        return message["conversation"]
    candidates = [
        ("extendedTextMessage", "text"),
        ("buttonsResponseMessage", "selectedDisplayText"),
        ("templateButtonReplyMessage", "selectedDisplayText"),
        ("listResponseMessage", "title"),
        ("imageMessage", "caption"),
        ("videoMessage", "caption"),
        ("documentMessage", "caption"),
    ]
    for container, field in candidates:
        value = message.get(container)
        if isinstance(value, dict) and isinstance(value.get(field), str) and value[field]:
            return value[field]
    interactive = message.get("interactiveResponseMessage")
    if isinstance(interactive, dict) and isinstance(interactive.get("body"), dict):
        return str(interactive["body"].get("text") or "")
    # Disappearing, view-once and captioned documents wrap the real message one level down.
    for wrapper in (
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "documentWithCaptionMessage",
    ):
        inner = message.get(wrapper)
        if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
            return _text_of(inner["message"])
    return ""


def _epoch(value: Any) -> datetime | None:
    """A Unix time in seconds (or milliseconds) as an aware datetime. Old Baileys versions
    serialise it as a protobuf Long: ``{"low", "high", "unsigned"}``."""
    if isinstance(value, dict):
        value = value.get("low")
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        seconds = float(value)
        if seconds > 1e11:
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _when(envelope: dict, fallback: Any = None) -> datetime:
    """When Evolution emitted the event: ``date_time`` (ISO 8601), else ``fallback`` (epoch),
    else now."""
    value = envelope.get("date_time")
    if isinstance(value, str) and value:
        try:
            at = datetime.fromisoformat(value)
            return at if at.tzinfo else at.replace(tzinfo=UTC)
        except ValueError:
            pass
    return _epoch(fallback) or timezone.now()


def _connection_state(data) -> tuple[bool, str]:
    instance = data.get("instance") if isinstance(data, dict) else None
    state = str((instance or {}).get("state") or "unknown")
    if state == "open":
        return True, gettext("WhatsApp connected.")
    return False, gettext("WhatsApp not connected (state: %(state)s).") % {"state": state}
