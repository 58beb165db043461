"""Twilio Programmable Messaging (SMS), through the official ``twilio`` SDK.

The SDK builds every request (``Client.messages.create``, ``accounts(sid).fetch``) and
validates every webhook (``RequestValidator``); the bytes go out through
``integrations.http`` all the same, by giving the SDK an ``HttpClient`` that calls
``Provider.request`` (timeouts, call log, redaction, the one place tests stub).

- Send: ``POST https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json`` (Basic
  auth, form ``To, From | MessagingServiceSid, Body, StatusCallback``) → 201 ``{"sid": …}``.
  Twilio takes no idempotency key, so a send is tried once: a retried timeout could send
  the SMS twice.
- Lookup of a send whose answer was lost (a read timeout, a worker killed mid-send):
  ``GET …/Messages.json?To=…&PageSize=20``, newest first, matched by text and creation time.
- Errors: ``{"code": 21211, "message": …, "more_info": …, "status": 400}``; 4xx other than
  429 are permanent (20003 is bad credentials), 429/20429 and 5xx transient.
- Webhooks: ``/webhooks/twilio/<token>/`` (inbound SMS, answered with empty TwiML) and
  ``…/status`` (the status callback each send registers), signed with
  ``X-Twilio-Signature`` over the public URL Twilio called and the form parameters.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from twilio import request_validator as twilio_validation
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .. import registry
from ..base import (
    HealthResult,
    InboundMessage,
    MessageRequest,
    MessageResult,
    MessageStatusUpdate,
    MessagingProvider,
    OutcomeUnknownError,
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

logger = logging.getLogger(__name__)

NAME = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
STATUS_SUBPATH = "status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: Twilio's message statuses → ours. "receiving"/"received" belong to inbound messages.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
#: Messages to one number read back when looking for a send whose answer was lost.
LOOKUP_PAGE = 20
#: Twilio error codes that mean "later", whatever the HTTP status says.
TRANSIENT_CODES = {20429}


def e164(value: str) -> str:
    """``+`` and digits for a phone number; anything else (an alphanumeric sender id, a
    ``whatsapp:`` address) as it came."""
    value = (value or "").strip()
    digits = value.lstrip("+")
    if digits.isdigit():
        return f"+{digits}"
    return value


class _ProviderHttpClient(HttpClient):
    """The SDK's HTTP client, routed through ``integrations.http`` on behalf of one
    provider account. ``http.request`` raises ``ProviderError`` for 4xx/5xx before the
    SDK sees them, so the SDK only ever parses successful answers."""

    def __init__(self, provider: TwilioSms, *, operation: str, retry: bool):
        super().__init__(logger, False, None)
        self.provider = provider
        self.operation = operation
        self.retry = retry

    def request(
        self,
        method,
        uri,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> TwilioResponse:
        kwargs = {"params": params, "headers": headers, "auth": auth}
        content_type = (headers or {}).get("Content-Type", "")
        if content_type in ("application/json", "application/scim+json"):
            kwargs["json"] = data
        else:
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = (timeout, timeout)
        response = self.provider.request(
            method,
            uri,
            operation=self.operation,
            retry=self.retry,
            allow_redirects=allow_redirects,
            **kwargs,
        )
        return TwilioResponse(int(response.status_code), response.text, response.headers)


@registry.register
class TwilioSms(MessagingProvider):
    kind = ProviderKind.SMS
    name = NAME
    label = _("Twilio (SMS)")
    credentials_schema = {
        "account_sid": _("Account SID (starts with AC), from the Twilio Console."),
        "auth_token": _(
            "Auth Token of the account: authenticates sends and checks the signature of "
            "Twilio's webhooks."
        ),
    }
    settings_schema = {
        "from_number": _("Sender phone number in E.164 format, e.g. +5511999999999."),
        "messaging_service_sid": _(
            "Messaging Service SID (starts with MG); used instead of the sender number when set."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _client(self, *, operation: str, retry: bool) -> Client:
        return Client(
            self.credentials.get("account_sid", ""),
            self.credentials.get("auth_token", ""),
            http_client=_ProviderHttpClient(self, operation=operation, retry=retry),
            # Credentials come from the account only, never from TWILIO_* variables.
            environment={},
        )

    def status_callback_url(self) -> str:
        base = settings.CUIDAR_PUBLIC_URL.rstrip("/")
        return f"{base}/webhooks/{NAME}/{self.account.webhook_token}/{STATUS_SUBPATH}"

    def send(self, message: MessageRequest) -> MessageResult:
        """Create the message; Twilio answers at once with its sid, status ``queued``
        (or ``accepted`` through a Messaging Service)."""
        params = {
            "to": e164(message.to),
            "body": message.text,
            "status_callback": self.status_callback_url(),
        }
        service = self.settings.get("messaging_service_sid", "")
        sender = self.settings.get("from_number", "")
        if service:
            params["messaging_service_sid"] = service
        elif sender:
            params["from_"] = sender
        else:
            raise PermanentProviderError(
                "twilio.send: set from_number or messaging_service_sid in the account settings",
                provider=NAME,
            )
        # No idempotency key at Twilio: one attempt, so a timeout never sends twice.
        client = self._client(operation="send", retry=False)
        try:
            created = client.messages.create(**params)
        except ProviderError as exc:
            raise _twilio_error(exc, "send") from None
        except TwilioRestException as exc:
            raise _rest_error(exc, "send") from None
        except TwilioException as exc:
            raise TransientProviderError(
                f"twilio.send: unexpected answer: {exc}", provider=NAME
            ) from None
        status = STATUS_MAP.get(created.status or "", "queued")
        return MessageResult(
            provider_message_id=created.sid,
            status="sent" if status in ("sent", "delivered", "read") else "queued",
            raw={
                "sid": created.sid,
                "status": created.status,
                "num_segments": created.num_segments,
                "error_code": created.error_code,
            },
        )

    can_find_sent = True

    def find_sent(self, message: MessageRequest, *, since) -> MessageResult | None:
        """The message Twilio created for ``message`` (same recipient and text, created at
        or after ``since``) when its send's answer was lost: Twilio creates the Message
        resource when it accepts the POST, so the list of messages to that number, newest
        first, shows it. ``GET …/Messages.json?To=…&PageSize=…``; ``None`` when absent."""
        to = e164(message.to)
        client = self._client(operation="find_sent", retry=True)
        try:
            found = client.messages.list(to=to, limit=LOOKUP_PAGE)
        except ProviderError as exc:
            raise _twilio_error(exc, "find_sent") from None
        except TwilioException as exc:
            raise TransientProviderError(
                f"twilio.find_sent: unexpected answer: {exc}", provider=NAME
            ) from None
        for item in found:
            if (
                (item.direction or "").startswith("outbound")
                and (item.body or "").strip() == message.text.strip()
                and item.date_created is not None
                and item.date_created >= since
            ):
                status = STATUS_MAP.get(item.status or "", "queued")
                return MessageResult(
                    provider_message_id=item.sid,
                    status="sent" if status in ("sent", "delivered", "read") else "queued",
                    raw={"sid": item.sid, "status": item.status},
                )
        return None

    def health(self) -> HealthResult:
        """Fetch the account: reachable, credentials valid, and ``active``."""
        sid = self.credentials.get("account_sid", "")
        if not sid or not self.credentials.get("auth_token"):
            return HealthResult(ok=False, detail=str(_("Account SID or Auth Token missing.")))
        try:
            account = self._client(operation="health", retry=True).api.v2010.accounts(sid).fetch()
        except ProviderError as exc:
            return HealthResult(ok=False, detail=str(_twilio_error(exc, "health")))
        except TwilioException as exc:
            return HealthResult(ok=False, detail=f"twilio.health: {exc.__class__.__name__}")
        if account.status != "active":
            return HealthResult(
                ok=False,
                detail=str(_("Twilio account status: %(status)s")) % {"status": account.status},
            )
        return HealthResult(ok=True, detail=str(_("Twilio account is active.")))

    # --- Webhooks -------------------------------------------------------------------------
    def _signed_params(self, request: WebhookRequest):
        """What Twilio signed besides the URL: the POST form parameters (all values of
        repeated names), or the raw body when the URL carries ``bodySHA256`` (JSON)."""
        if request.method.upper() != "POST":
            return {}
        if "bodySHA256" in request.query:
            return request.body.decode("utf-8", errors="replace")
        return QueryDict(request.body, encoding="utf-8")

    def _candidate_urls(self, request: WebhookRequest) -> list[str]:
        """The URL Twilio signed: the one Django saw, or (behind a proxy that hides the
        public host or scheme) the same path and query under ``CUIDAR_PUBLIC_URL``."""
        urls = [request.url] if request.url else []
        parts = urlsplit(request.url)
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        base = settings.CUIDAR_PUBLIC_URL.rstrip("/")
        public = urlsplit(base)
        # The base may carry the script prefix the path already has (".../cuidar").
        for candidate in (
            base + path_and_query,
            f"{public.scheme}://{public.netloc}{path_and_query}",
        ):
            if candidate not in urls:
                urls.append(candidate)
        return urls

    def verify_webhook(self, request: WebhookRequest) -> None:
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise WebhookUnauthorized("missing X-Twilio-Signature", status=401)
        token = self.credentials.get("auth_token", "")
        if not token:
            raise WebhookUnauthorized("no auth_token configured to check signatures", status=403)
        # SDKs that know Twilio's SHA-256 signatures read the algorithm from this header;
        # without it (or with an older SDK) the signature is HMAC-SHA1.
        algorithm_of = getattr(twilio_validation, "get_signature_algorithm", None)
        settings_header = request.header("X-Twilio-Webhooks-Signature-Settings")
        extra = {"algorithm": algorithm_of(settings_header)} if algorithm_of else {}
        validator = RequestValidator(token)
        params = self._signed_params(request)
        for url in self._candidate_urls(request):
            if validator.validate(url, params, signature, **extra):
                return
        raise WebhookUnauthorized("X-Twilio-Signature does not match", status=403)

    def _params(self, request: WebhookRequest) -> dict[str, str]:
        if request.method.upper() == "POST" and request.body:
            return request.form()
        return dict(request.query)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """An inbound SMS (``Body``) or a status callback (``MessageStatus``)."""
        try:
            data = self._params(request)
        except UnicodeDecodeError:
            raise WebhookMalformed("body is not UTF-8 form data") from None
        sid = data.get("MessageSid") or data.get("SmsSid") or ""
        if not sid:
            raise WebhookMalformed("missing MessageSid")
        status = data.get("MessageStatus", "")
        if status and (request.subpath.strip("/") == STATUS_SUBPATH or "Body" not in data):
            our_status = STATUS_MAP.get(status)
            items = []
            if our_status:
                items.append(
                    MessageStatusUpdate(
                        provider_message_id=sid,
                        status=our_status,
                        error=data.get("ErrorCode", "") if our_status == "failed" else "",
                    )
                )
            return WebhookEvent(dedupe_key=f"{sid}:{status}", items=items)
        if "Body" not in data or not data.get("From"):
            raise WebhookMalformed("neither an inbound message nor a status callback")
        return WebhookEvent(
            dedupe_key=sid,
            items=[
                InboundMessage(
                    provider_message_id=sid,
                    from_address=e164(data["From"]),
                    to_address=e164(data.get("To", "")),
                    text=data["Body"],
                    raw=data,
                )
            ],
        )

    def webhook_reply(self, request: WebhookRequest) -> WebhookReply:
        # Twilio reads the answer to an inbound message as TwiML: an empty <Response/>
        # says "no automatic reply". Status callbacks only need the 2xx.
        if request.subpath.strip("/") == STATUS_SUBPATH:
            return WebhookReply(status=200, body="", content_type="text/plain")
        return WebhookReply(status=200, body=EMPTY_TWIML, content_type="text/xml")


def _detail_code(detail) -> tuple[int | None, str]:
    """Twilio's error code and message from a parsed error body (legacy
    ``{"code","message"}`` or RFC 9457 ``{"code","title","detail"}``)."""
    if not isinstance(detail, dict):
        return None, str(detail or "")[:300]
    code = detail.get("code")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    message = detail.get("message") or detail.get("detail") or detail.get("title") or ""
    return code, str(message)


def _twilio_error(exc: ProviderError, operation: str) -> ProviderError:
    """``integrations.http``'s error, reworded with Twilio's own code and message. An
    unknown outcome (no answer to a sent request) stays one."""
    if isinstance(exc, OutcomeUnknownError):
        return exc
    code, message = _detail_code(exc.detail)
    text = f"twilio.{operation}: HTTP {exc.http_status}"
    if code is not None:
        text += f", Twilio error {code}"
    if message:
        text += f": {message}"
    if code is None and not message:
        text = str(exc)
    cls = (
        TransientProviderError
        if not exc.permanent or code in TRANSIENT_CODES
        else PermanentProviderError
    )
    return cls(
        text,
        provider=NAME,
        http_status=exc.http_status,
        retry_after=exc.retry_after,
        detail=exc.detail,
    )


def _rest_error(exc: TwilioRestException, operation: str) -> ProviderError:
    """A status the SDK refused that ``integrations.http`` let through (a 3xx)."""
    status = exc.status or 0
    cls = TransientProviderError if status >= 500 or status == 429 else PermanentProviderError
    return cls(
        f"twilio.{operation}: HTTP {status}, Twilio error {exc.code}: {exc.msg}",
        provider=NAME,
        http_status=status or None,
        detail={"code": exc.code, "message": exc.msg},
    )
