"""Meta's WhatsApp Cloud API (Graph API) as a ``whatsapp`` provider.

Wire format from Meta's Cloud API reference (messages, webhooks, error codes), the official
WhatsApp/WhatsApp-Nodejs-SDK (``src/utils.ts``, ``src/types/webhooks.ts``) and
``PROVIDERS.md`` §2:

- send: ``POST https://graph.facebook.com/{version}/{phone_number_id}/messages`` with
  ``Authorization: Bearer <token>``; a text, or an approved template (the only thing Meta
  delivers more than 24 h after the patient's last message) → ``{"messages": [{"id"}]}``.
- errors: ``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``.
  Throttling comes back as HTTP 400 with codes 130429/131056/131049/…: those are retried
  later, not dropped.
- health: ``GET /{phone_number_id}?fields=display_phone_number,quality_rating,verified_name``.
- webhooks: a GET handshake (``hub.mode=subscribe``, ``hub.verify_token``, ``hub.challenge``)
  and signed POSTs (``X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret, raw body)>``)
  carrying ``entry[].changes[].value.messages[]`` and ``value.statuses[]``.
"""

from __future__ import annotations

import hashlib
import hmac
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
    ProviderError,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookReply,
    WebhookRequest,
    WebhookUnauthorized,
)
from ..choices import ProviderKind
from ..http import response_json

NAME = "meta_cloud"
GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
HEALTH_FIELDS = "display_phone_number,quality_rating,verified_name"

#: Error codes Meta answers with HTTP 400 that mean "not now" rather than "never": API and
#: business-account rate limits (4, 80007), throughput (130429), spam rate (131048),
#: marketing-message limit per user (131049), pair rate limit (131056), and temporary
#: trouble on Meta's side (1, 2, 131000, 131016, 133004).
TRANSIENT_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131049, 131056, 133004}
#: What the codes an operator meets most often mean, for the error message.
EXPLANATIONS = {
    190: "the access token expired or was revoked",
    131026: "message undeliverable (the number may not be on WhatsApp, or cannot receive it)",
    131047: "more than 24 hours since the patient's last message: only an approved template "
    "can be sent",
    131051: "message type not supported",
    132000: "the template's number of parameters does not match",
    132001: "the template does not exist in this language",
    130429: "throughput limit reached: retry later",
    131048: "spam rate limit reached: retry later",
    131049: "Meta held this message to protect user engagement: retry later",
    131056: "too many messages to this number in a short time: retry later",
}
#: Statuses of our messages as Meta reports them (it may skip ``delivered`` and send
#: them out of order; the consumer keeps the furthest one).
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
#: Message types that are not something the patient wrote (reactions, number-change
#: notices, messages WhatsApp could not hand us, the first-open of a chat).
_NOT_A_MESSAGE = {"reaction", "system", "unsupported", "request_welcome", "ephemeral"}


@registry.register
class MetaCloudWhatsApp(MessagingProvider):
    kind = ProviderKind.WHATSAPP
    name = NAME
    label = _("WhatsApp Cloud API (Meta)")
    credentials_schema = {
        "access_token": _(
            "Permanent access token of the Meta system user (whatsapp_business_messaging)."
        ),
        "app_secret": _("Secret of the Meta app: webhook signatures are checked with it."),
        "verify_token": _("Token of your choice, also typed into Meta's webhook settings."),
    }
    settings_schema = {
        "phone_number_id": _("Phone number ID (not the phone number) from WhatsApp Manager."),
        "api_version": _("Graph API version, e.g. v21.0."),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _missing(self) -> list[str]:
        names = [] if self.settings.get("phone_number_id") else ["phone_number_id"]
        return names + ([] if self.credentials.get("access_token") else ["access_token"])

    def _url(self, path: str = "") -> str:
        version = str(self.settings.get("api_version") or DEFAULT_API_VERSION).strip("/ ")
        if not version.startswith("v"):
            version = f"v{version}"
        number_id = quote(str(self.settings["phone_number_id"]), safe="")
        return f"{GRAPH_URL}/{version}/{number_id}{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['access_token']}"}

    def send(self, message: MessageRequest) -> MessageResult:
        """A template when ``message.template`` is set (body parameters in order), else a
        text; the result carries Meta's ``wamid``."""
        missing = self._missing()
        if missing:
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing {', '.join(missing)})", provider=NAME
            )
        try:
            response = self.request(
                "POST",
                self._url("/messages"),
                operation="send",
                json=_payload(message),
                headers=self._headers(),
                # Meta takes no idempotency key: a timed-out send may have been delivered, so
                # it is not repeated inline (the outbox retries later, or the chain moves on).
                retry=False,
            )
        except PermanentProviderError as exc:
            raise _refusal(exc) from exc
        data = response_json(response)
        messages = data.get("messages") if isinstance(data, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        if not isinstance(first, dict) or not first.get("id"):
            raise TransientProviderError(
                f"{NAME}.send: answer without messages[0].id", provider=NAME, http_status=200
            )
        # Accepted, not yet sent: the "sent" status arrives by webhook.
        return MessageResult(provider_message_id=str(first["id"]), status="queued", raw=data)

    def health(self) -> HealthResult:
        """Reads the phone number's profile: proves the token and the number id together."""
        missing = self._missing()
        return self.health_probe(
            "" if missing else self._url(),
            missing=missing,
            params={"fields": HEALTH_FIELDS},
            headers={} if missing else self._headers(),
            refusal=lambda exc: _refusal(exc, operation="health"),
            judge=_number_profile,
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """GET: the subscription handshake (our verify token). POST: the app secret's
        HMAC-SHA256 of the raw body, exactly as received."""
        if request.method.upper() == "GET":
            token = request.query.get("hub.verify_token", "")
            if not token:
                raise WebhookUnauthorized("missing hub.verify_token", status=401)
            expected = str(self.credentials.get("verify_token") or "")
            if (
                not expected
                or request.query.get("hub.mode") != "subscribe"
                or not hmac.compare_digest(token.encode(), expected.encode())
            ):
                raise WebhookUnauthorized("wrong hub.verify_token or hub.mode", status=403)
            return
        signature = request.header(SIGNATURE_HEADER).strip()
        if not signature:
            raise WebhookUnauthorized(f"missing {SIGNATURE_HEADER}", status=401)
        secret = str(self.credentials.get("app_secret") or "")
        if not secret:
            raise WebhookUnauthorized("no app_secret configured: webhooks are refused", status=403)
        # Over the raw bytes: re-serialised JSON would change escapes (\u00e9 vs é) and spacing
        # and never match what Meta signed.
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            raise WebhookUnauthorized(f"wrong {SIGNATURE_HEADER}", status=403)

    def webhook_reply(self, request: WebhookRequest) -> WebhookReply:
        if request.method.upper() == "GET":
            # Meta expects the challenge back, as is (it only gets here with our token).
            return WebhookReply(
                status=200, body=request.query.get("hub.challenge", ""), content_type="text/plain"
            )
        return super().webhook_reply(request)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """Every message and status of every entry and change, in order.

        Changes of another phone number (the same Meta app may serve several) are left out.
        Dedupe key: the sorted message ids and ``id:status`` pairs the POST carries; a POST
        with neither (template or account updates) falls back to the hash of the body."""
        envelope = _json_object(request)
        entries = envelope.get("entry", [])
        if not isinstance(entries, list):
            raise WebhookMalformed("'entry' is not a list")
        our_number_id = str(self.settings.get("phone_number_id") or "")
        items: list[InboundMessage | MessageStatusUpdate] = []
        keys: list[str] = []
        for entry in entries:
            changes = entry.get("changes", []) if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise WebhookMalformed("'entry[].changes' is not a list")
            for change in changes:
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict) or change.get("field") != "messages":
                    continue  # account_update, message_template_status_update, …
                metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
                number_id = str(metadata.get("phone_number_id") or "")
                if our_number_id and number_id and number_id != our_number_id:
                    continue
                to_address = _e164(metadata.get("display_phone_number"))
                names = _contact_names(value.get("contacts"))
                for message in _list(value.get("messages"), "messages"):
                    item = _inbound(message, to_address, names)  # raises if malformed
                    keys.append(f"message:{message['id']}")
                    if item is not None:
                        items.append(item)
                for status in _list(value.get("statuses"), "statuses"):
                    item = _status(status)  # raises if malformed
                    keys.append(f"status:{status['id']}:{status['status']}")
                    if item is not None:
                        items.append(item)
        return WebhookEvent(dedupe_key="|".join(sorted(keys)), items=items)


# --- Helpers ----------------------------------------------------------------------------------
def _payload(message: MessageRequest) -> dict:
    to = re.sub(r"\D", "", message.to or "")
    if not to:
        raise PermanentProviderError(f"{NAME}.send: no phone number to send to", provider=NAME)
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if not message.template:
        return {**base, "type": "text", "text": {"preview_url": False, "body": message.text}}
    template: dict[str, Any] = {
        "name": message.template,
        "language": {"code": message.template_language},
    }
    if message.template_variables:
        template["components"] = [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": str(v)} for v in message.template_variables
                ],
            }
        ]
    return {**base, "type": "template", "template": template}


def _refusal(exc: PermanentProviderError, *, operation: str = "send") -> ProviderError:
    """A 4xx from Meta: transient when its code is a throttle (Meta answers those with HTTP
    400), permanent otherwise; either way with Meta's code in the message."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    error = detail.get("error") if isinstance(detail.get("error"), dict) else {}
    code = error.get("code")
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = None
    reason = EXPLANATIONS.get(code) or str(error.get("message") or "request refused")[:200]
    text = f"{NAME}.{operation}: Meta error {code if code is not None else '?'}: {reason} "
    text += f"(HTTP {exc.http_status})"
    kwargs = {"provider": NAME, "http_status": exc.http_status, "detail": exc.detail}
    if code in TRANSIENT_CODES:
        return TransientProviderError(text, **kwargs)
    return PermanentProviderError(text, **kwargs)


def _inbound(message: Any, to_address: str, names: dict[str, str]) -> InboundMessage | None:
    if not isinstance(message, dict) or not message.get("id") or not message.get("from"):
        raise WebhookMalformed("a message without id or from")
    kind = message.get("type")
    if kind in _NOT_A_MESSAGE:
        return None
    sender = str(message["from"])
    return InboundMessage(
        provider_message_id=str(message["id"]),
        # Brazilian numbers may come without the mobile "9" (Meta's wa_id); kept as Meta
        # sends it: matching it to a patient's number is the consumer's job.
        from_address=_e164(sender),
        to_address=to_address,
        text=_text_of(message),
        received_at=_epoch(message.get("timestamp")) or timezone.now(),
        sender_name=names.get(sender, ""),
        raw=message,
    )


def _text_of(message: dict) -> str:
    kind = message.get("type")
    body = message.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        return str(body.get("body") or "")
    if kind == "button":  # quick-reply button of a template
        return str(body.get("text") or body.get("payload") or "")
    if kind == "interactive":  # reply button or list row of an interactive message
        for reply in ("button_reply", "list_reply"):
            if isinstance(body.get(reply), dict):
                return str(body[reply].get("title") or "")
        return ""
    return str(body.get("caption") or "")  # image, video, document; "" for audio, sticker …


def _status(status: Any) -> MessageStatusUpdate | None:
    if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
        raise WebhookMalformed("a status without id or status")
    ours = STATUSES.get(str(status["status"]))
    if ours is None:
        return None  # "deleted", "warning", …: nothing to record
    error = ""
    errors = status.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        error = f"{first.get('title') or first.get('message') or 'error'} ({first.get('code')})"
    return MessageStatusUpdate(
        provider_message_id=str(status["id"]),
        status=ours,
        at=_epoch(status.get("timestamp")) or timezone.now(),
        error=error,
    )


def _contact_names(contacts: Any) -> dict[str, str]:
    names = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if isinstance(contact, dict) and contact.get("wa_id"):
            profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
            names[str(contact["wa_id"])] = str(profile.get("name") or "")
    return names


def _list(value: Any, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookMalformed(f"'{name}' is not a list")
    return value


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data


def _e164(number: Any) -> str:
    digits = re.sub(r"\D", "", str(number or ""))
    return f"+{digits}" if digits else ""


def _epoch(value: Any) -> datetime | None:
    """Meta's timestamps: Unix seconds, as a string."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _number_profile(data) -> tuple[bool, str]:
    data = data if isinstance(data, dict) else {}
    return True, gettext("%(name)s %(number)s, quality rating %(quality)s.") % {
        "name": data.get("verified_name") or "",
        "number": data.get("display_phone_number") or "",
        "quality": data.get("quality_rating") or "?",
    }
