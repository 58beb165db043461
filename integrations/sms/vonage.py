"""Vonage (formerly Nexmo) SMS API.

- Send: ``POST https://rest.nexmo.com/sms/json``, form ``api_key, api_secret, from, to
  (digits only), text`` (+ ``type=unicode`` when the text leaves the GSM-7 alphabet, e.g.
  Portuguese "ã", "õ", "ç", "á"). Vonage answers HTTP 200 even when it refuses: each of
  ``messages[]`` has ``status`` "0" (accepted) or an error code with ``error-text``.
- Health: ``GET https://rest.nexmo.com/account/get-balance``.
- Webhooks (``/webhooks/vonage/<token>/``; receipts at ``…/status``, the ``callback`` each
  send asks for): inbound SMS ``msisdn, to, messageId, text, type, keyword,
  message-timestamp`` and delivery receipts ``msisdn, to, messageId, status, err-code,
  message-timestamp``, as a GET query, a POST form or POST JSON (the dashboard's "HTTP
  method"). Signed webhooks (which Vonage support enables per account) add ``timestamp``
  and ``sig``; see :func:`signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

from django.conf import settings
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
    WebhookRequest,
    WebhookUnauthorized,
)
from ..choices import ProviderKind
from ..http import response_json

NAME = "vonage"
SEND_URL = "https://rest.nexmo.com/sms/json"
BALANCE_URL = "https://rest.nexmo.com/account/get-balance"
STATUS_SUBPATH = "status"
#: How far a signed webhook's ``timestamp`` may be from our clock (replays, clock skew).
SIGNATURE_TOLERANCE_SECONDS = 300
#: Vonage's dashboard default is "MD5 hash" (md5 of the parameters and the secret).
DEFAULT_SIGNATURE_METHOD = "md5hash"
SIGNATURE_METHODS = {"md5hash", "md5", "sha1", "sha256", "sha512"}
#: ``client-ref`` holds our idempotency key so receipts can be matched to it; the SMS API
#: takes up to 100 characters there, and a ``callback`` URL of up to 100 characters.
CLIENT_REF_MAX = 100
CALLBACK_MAX = 100

#: SMS API status codes that mean "try again later" (Vonage's table: 1 Throttled,
#: 5 Internal Error, 10 Too Many Existing Binds). Every other non-zero code (2 missing
#: parameters, 3 invalid parameters, 4 invalid credentials, 6 invalid message, 7 number
#: barred, 8 account barred, 9 quota, 15 invalid sender …) will not pass by retrying.
TRANSIENT_STATUSES = {"1", "5", "10"}

#: Delivery receipt statuses → ours. "unknown" gives no item.
RECEIPT_STATUS_MAP = {
    "delivered": "delivered",
    "accepted": "sent",
    "buffered": "sent",
    "expired": "failed",
    "failed": "failed",
    "rejected": "failed",
}

# GSM 03.38: the basic alphabet and its extension table (the latter costs two septets
# but needs no unicode). Anything else makes Vonage send UCS-2 only with type=unicode.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` has a GSM-7 encoding."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def signature(params: dict[str, str], secret: str, method: str = DEFAULT_SIGNATURE_METHOD) -> str:
    """Vonage's request signature (lower-case hex) of ``params`` (without ``sig``).

    The parameters are sorted by name and joined as ``&name=value``, with any ``&`` or
    ``=`` inside a value replaced by ``_``. ``md5hash`` is the MD5 of that string followed
    by the secret; the others are an HMAC of the string keyed by the secret. (Vonage's
    SDKs: vonage-python ``Client.signature``, @vonage/sms ``verifySignature``; developer
    docs "Signing Messages".)
    """
    payload = "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )
    if method == "md5hash":
        # Vonage's default scheme, not our choice: the account's dashboard picks it.
        return hashlib.md5((payload + secret).encode("utf-8")).hexdigest()  # noqa: S324
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), method).hexdigest()


def _msisdn(value: str) -> str:
    """``+5511…`` → ``5511…``: Vonage wants international numbers without ``+`` or 00."""
    digits = "".join(ch for ch in (value or "") if ch.isdigit())
    return digits


def _e164(value: str) -> str:
    value = (value or "").strip()
    return f"+{value.lstrip('+')}" if value.lstrip("+").isdigit() else value


def _timestamp(value: str) -> datetime | None:
    """``message-timestamp`` is UTC, ``YYYY-MM-DD HH:MM:SS``."""
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@registry.register
class VonageSms(MessagingProvider):
    kind = ProviderKind.SMS
    name = NAME
    label = _("Vonage (SMS API)")
    # The Dashboard lets an account send inbound SMS and receipts by GET.
    webhook_get_delivers_events = True
    credentials_schema = {
        "api_key": _("API key, from the Vonage API Dashboard."),
        "api_secret": _("API secret, from the Vonage API Dashboard."),
        "signature_secret": _(
            "Signature secret (Dashboard → Settings): checks the signature of Vonage's "
            "webhooks. Signed webhooks are enabled by Vonage support."
        ),
    }
    settings_schema = {
        "from": _("Sender: a Vonage virtual number (digits, with country code) or an id."),
        "signature_method": _(
            "Signature method chosen in the Vonage Dashboard: md5hash (Vonage's default), "
            "md5, sha1, sha256 or sha512."
        ),
    }

    def _callback_url(self) -> str:
        base = settings.CUIDAR_PUBLIC_URL.rstrip("/")
        return f"{base}/webhooks/{NAME}/{self.account.webhook_token}/{STATUS_SUBPATH}"

    # --- Outbound -------------------------------------------------------------------------
    def send(self, message: MessageRequest) -> MessageResult:
        sender = str(self.settings.get("from", "")).strip()
        if not sender:
            raise PermanentProviderError(
                "vonage.send: set the sender ('from') in the account settings", provider=NAME
            )
        form = {
            "api_key": self.credentials.get("api_key", ""),
            "api_secret": self.credentials.get("api_secret", ""),
            "from": sender.lstrip("+"),
            "to": _msisdn(message.to),
            "text": message.text,
        }
        callback = self._callback_url()
        if len(callback) <= CALLBACK_MAX:
            form["callback"] = callback
        # (A longer public URL cannot go per message: receipts then go to the URL set in
        # the Vonage Dashboard, which should be this same one.)
        if not is_gsm7(message.text):
            form["type"] = "unicode"
        if message.idempotency_key:
            form["client-ref"] = message.idempotency_key[:CLIENT_REF_MAX]
        # Vonage takes no idempotency key: one attempt, so a timeout never sends twice.
        response = self.request("POST", SEND_URL, operation="send", data=form, retry=False)
        data = response_json(response)
        parts = data.get("messages") if isinstance(data, dict) else None
        if not parts:
            raise TransientProviderError(
                "vonage.send: answer without messages", provider=NAME, detail=data
            )
        # A long text goes as several parts; one refused part is a failed SMS.
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                error_text = part.get("error-text", "")
                cls = (
                    TransientProviderError
                    if status in TRANSIENT_STATUSES
                    else PermanentProviderError
                )
                raise cls(
                    f"vonage.send: status {status}: {error_text}".rstrip(": "),
                    provider=NAME,
                    detail={"status": status, "error-text": error_text},
                )
        first = parts[0]
        return MessageResult(
            provider_message_id=str(first.get("message-id", "")),
            status="queued",
            raw={
                "message-count": data.get("message-count"),
                "message-ids": [p.get("message-id") for p in parts],
            },
        )

    def health(self) -> HealthResult:
        """The account balance: credentials valid and the API reachable."""
        started = time.perf_counter()
        try:
            response = self.request(
                "GET",
                BALANCE_URL,
                operation="health",
                params={
                    "api_key": self.credentials.get("api_key", ""),
                    "api_secret": self.credentials.get("api_secret", ""),
                },
            )
            data = response_json(response)
        except ProviderError as exc:
            return HealthResult(ok=False, detail=str(exc))
        latency_ms = int((time.perf_counter() - started) * 1000)
        value = data.get("value") if isinstance(data, dict) else None
        return HealthResult(
            ok=True,
            detail=str(_("Vonage balance: %(value)s")) % {"value": value},
            latency_ms=latency_ms,
        )

    # --- Webhooks -------------------------------------------------------------------------
    def _params(self, request: WebhookRequest) -> dict[str, str]:
        """The webhook's parameters, wherever the account's HTTP method puts them."""
        params = dict(request.query)
        if request.method.upper() == "POST" and request.body:
            content_type = (request.content_type or request.header("content-type")).lower()
            if "json" in content_type:
                try:
                    data = json.loads(request.body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise WebhookMalformed("body is not JSON") from None
                if not isinstance(data, dict):
                    raise WebhookMalformed("body is not a JSON object")
                params.update({str(k): _text(v) for k, v in data.items()})
            else:
                try:
                    params.update(request.form())
                except UnicodeDecodeError:
                    raise WebhookMalformed("body is not UTF-8 form data") from None
        return params

    def verify_webhook(self, request: WebhookRequest) -> None:
        try:
            params = self._params(request)
        except WebhookMalformed as exc:
            raise WebhookUnauthorized(f"unreadable request: {exc}", status=403) from None
        sig = params.get("sig", "")
        if not sig:
            raise WebhookUnauthorized("missing sig", status=401)
        secret = self.credentials.get("signature_secret", "")
        if not secret:
            raise WebhookUnauthorized("no signature_secret configured", status=403)
        method = str(self.settings.get("signature_method") or DEFAULT_SIGNATURE_METHOD).lower()
        if method not in SIGNATURE_METHODS:
            raise WebhookUnauthorized(f"unknown signature_method {method!r}", status=403)
        expected = signature(params, secret, method)
        # md5hash gives lower-case hex, Vonage's HMACs upper-case: compare either.
        if not hmac.compare_digest(expected.encode(), sig.strip().lower().encode()):
            raise WebhookUnauthorized("sig does not match", status=403)
        try:
            sent_at = int(params.get("timestamp", ""))
        except ValueError:
            raise WebhookUnauthorized("signed webhook without a timestamp", status=403) from None
        if abs(time.time() - sent_at) > SIGNATURE_TOLERANCE_SECONDS:
            raise WebhookUnauthorized("timestamp outside the tolerance (replay?)", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """A delivery receipt (``status``) or an inbound SMS (``text``)."""
        params = self._params(request)
        message_id = params.get("messageId", "")
        if not message_id:
            raise WebhookMalformed("missing messageId")
        at = _timestamp(params.get("message-timestamp", ""))
        if "status" in params and "text" not in params:
            status = params["status"]
            ours = RECEIPT_STATUS_MAP.get(status.lower())
            items = []
            if ours:
                error_code = params.get("err-code", "")
                items.append(
                    MessageStatusUpdate(
                        provider_message_id=message_id,
                        status=ours,
                        at=at,
                        error=error_code if ours == "failed" else "",
                    )
                )
            return WebhookEvent(dedupe_key=f"{message_id}:{status}", items=items)
        if "text" in params and params.get("msisdn"):
            return WebhookEvent(
                dedupe_key=message_id,
                items=[
                    InboundMessage(
                        provider_message_id=message_id,
                        from_address=_e164(params["msisdn"]),
                        to_address=_e164(params.get("to", "")),
                        text=params["text"],
                        received_at=at,
                        raw={k: v for k, v in params.items() if k not in ("sig", "api-key")},
                    )
                ],
            )
        raise WebhookMalformed("neither an inbound message nor a delivery receipt")


def _text(value) -> str:
    """A JSON value as the string Vonage signed (it sends strings; be lenient)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
