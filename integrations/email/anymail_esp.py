"""E-mail through django-anymail: one provider account per ESP.

The account's ``esp`` setting picks ``anymail.backends.<esp>.EmailBackend``; its
credentials (and any setting other than ``esp``, ``from_email`` and ``reply_to``) are that
backend's options, e.g. ``{"server_token": …}`` for Postmark, ``{"api_key": …}`` plus the
setting ``sender_domain`` for Mailgun. A chain of ESPs is several accounts, tried in order
by ``chains.run_chain``.

anymail makes the HTTP call with its own ``requests`` session, so ``integrations.http``
does not see it; this adapter writes the ``ExternalCall`` row itself
(``http.record_external_call``) and gives anymail the same timeouts. Tracking webhooks
stay anymail's (its tracking views and the ``anymail.signals.tracking`` signal);
:func:`status_update_from_tracking` turns one of its events into our status update.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.html import strip_tags
from django.utils.translation import gettext_lazy as _

from .. import http, registry
from ..base import (
    HealthResult,
    MessageRequest,
    MessageResult,
    MessageStatusUpdate,
    MessagingProvider,
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from ..choices import ProviderKind

if TYPE_CHECKING:
    from anymail.signals import AnymailTrackingEvent

NAME = "anymail"

#: anymail backend module → display name. Amazon SES needs boto3 (``anymail[amazon-ses]``).
ESPS = {
    "amazon_ses": "Amazon SES",
    "brevo": "Brevo",
    "mailersend": "MailerSend",
    "mailgun": "Mailgun",
    "mailjet": "Mailjet",
    "mailtrap": "Mailtrap",
    "mandrill": "Mandrill",
    "postal": "Postal",
    "postmark": "Postmark",
    "resend": "Resend",
    "scaleway": "Scaleway",
    "sendgrid": "SendGrid",
    "sparkpost": "SparkPost",
    "unisender_go": "Unisender Go",
}
#: ESPs whose anymail backend cannot send metadata (it would refuse the message).
ESPS_WITHOUT_METADATA = {"postal"}
#: Settings of ours; every other setting is passed to the backend as an option.
OWN_SETTINGS = {"esp", "from_email", "reply_to"}

#: How anymail names a missing option: "You must set ANYMAIL = {'POSTMARK_SERVER_TOKEN': ...}".
_MISSING_SETTING = re.compile(r"ANYMAIL = \{'([A-Z0-9_]+)'")

#: anymail's normalised tracking event types → our message statuses.
TRACKING_STATUS_MAP = {
    "queued": "queued",
    "deferred": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "opened": "read",
    "clicked": "read",
    "bounced": "failed",
    "rejected": "failed",
    "failed": "failed",
    "complained": "failed",
}


def backend_path(esp: str) -> str:
    return f"anymail.backends.{esp}.EmailBackend"


def status_update_from_tracking(event: AnymailTrackingEvent) -> MessageStatusUpdate | None:
    """Our status update for an anymail tracking event, or ``None`` for events that say
    nothing about delivery (unsubscribed, subscribed, autoresponded, unknown) or that do
    not name the message."""
    status = TRACKING_STATUS_MAP.get(getattr(event, "event_type", "") or "")
    message_id = getattr(event, "message_id", None)
    if status is None or not message_id:
        return None
    error = ""
    if status == "failed":
        error = str(event.description or event.reject_reason or event.mta_response or "")
    return MessageStatusUpdate(
        provider_message_id=str(message_id),
        status=status,
        at=event.timestamp,
        error=error[:500],
    )


@registry.register
class AnymailEmail(MessagingProvider):
    kind = ProviderKind.EMAIL
    name = NAME
    label = _("E-mail service provider (Amazon SES, SendGrid, Mailgun, Postmark… via anymail)")
    credentials_schema = {
        "api_key": _(
            "API key (SendGrid, Mailgun, Brevo, Resend, SparkPost, Mailjet, Mandrill, "
            "Postal, Unisender Go)."
        ),
        "server_token": _("Server API token (Postmark)."),
        "api_token": _("API token (MailerSend, Mailtrap)."),
        "secret_key": _("Secret key (Mailjet, Scaleway)."),
        "aws_access_key_id": _("Access key id (Amazon SES)."),
        "aws_secret_access_key": _("Secret access key (Amazon SES)."),
    }
    settings_schema = {
        "esp": _(
            "E-mail service provider: amazon_ses, brevo, mailersend, mailgun, mailjet, "
            "mailtrap, mandrill, postal, postmark, resend, scaleway, sendgrid, sparkpost "
            "or unisender_go."
        ),
        "from_email": _(
            'Sender, e.g. "Clinic <contact@clinic.example>"; the ESP must have it '
            "verified. Empty: DEFAULT_FROM_EMAIL."
        ),
        "reply_to": _("Reply-to address (optional)."),
        "sender_domain": _("Mailgun: sending domain, if not the sender's own domain."),
        "message_stream": _("Postmark: message stream (optional)."),
        "api_url": _("Optional API base URL of the ESP (e.g. Mailgun's EU region)."),
        "region_name": _("Amazon SES: AWS region, e.g. sa-east-1."),
        "project_id": _("Scaleway: project id."),
    }

    # --- Backend --------------------------------------------------------------------------
    @property
    def esp(self) -> str:
        return str(self.settings.get("esp", "")).strip().lower()

    def _backend_kwargs(self) -> dict:
        kwargs = {k: v for k, v in self.settings.items() if k not in OWN_SETTINGS}
        kwargs.update(self.credentials)
        if self.esp == "amazon_ses":
            # boto3 takes its credentials and region as client parameters.
            client_params = dict(kwargs.pop("client_params", None) or {})
            for key in ("aws_access_key_id", "aws_secret_access_key", "region_name"):
                if kwargs.get(key):
                    client_params[key] = kwargs.pop(key)
            kwargs["client_params"] = client_params
        else:
            kwargs.setdefault("timeout", http._default_timeout())
        return kwargs

    def _connection(self):
        """The ESP's anymail backend with this account's options, or a permanent error
        that says what is wrong with the configuration."""
        if self.esp not in ESPS:
            raise PermanentProviderError(
                f"anymail: unknown esp {self.esp!r}; choose one of {', '.join(sorted(ESPS))}",
                provider=NAME,
            )
        try:
            return get_connection(
                backend_path(self.esp), fail_silently=False, **self._backend_kwargs()
            )
        except (AnymailConfigurationError, ImproperlyConfigured, ImportError) as exc:
            raise PermanentProviderError(
                f"anymail/{self.esp}: misconfigured: {self._explain(exc)}", provider=NAME
            ) from None

    def _explain(self, exc: Exception) -> str:
        """anymail's configuration error, in terms of this account. Its "You must set
        ANYMAIL = {'POSTMARK_SERVER_TOKEN': ...} … in your Django settings" means an
        option missing from the account here."""
        text = http.redact(exc, self.secrets()).strip().splitlines()[0]
        match = _MISSING_SETTING.search(text)
        prefix = ESPS[self.esp].upper().replace(" ", "_") + "_"
        if match and match.group(1).startswith(prefix):
            option = match.group(1)[len(prefix) :].lower()
            return f"the account has no {option!r} (credentials or settings)"
        return text

    def _host(self, connection) -> str:
        api_url = getattr(connection, "api_url", "") or ""
        if api_url:
            return http._host(api_url)
        if self.esp == "amazon_ses":
            region = (getattr(connection, "client_params", {}) or {}).get("region_name", "")
            return f"email.{region}.amazonaws.com" if region else "email.amazonaws.com"
        return self.esp

    # --- Outbound -------------------------------------------------------------------------
    def send(self, message: MessageRequest) -> MessageResult:
        """Send one e-mail (text, plus the HTML alternative when given) and answer the
        ESP's message id."""
        connection = self._connection()
        from_email = self.settings.get("from_email") or settings.DEFAULT_FROM_EMAIL
        reply_to = self.settings.get("reply_to")
        text = message.text or (strip_tags(message.html) if message.html else "")
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=text,
            from_email=from_email,
            to=[message.to],
            reply_to=[reply_to] if reply_to else None,
            connection=connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        if message.idempotency_key and self.esp not in ESPS_WITHOUT_METADATA:
            # Not an idempotency key to the ESP (none has one for sends), but it comes
            # back in tracking events and the ESP's logs, to match a send to its work.
            email.metadata = {"idempotency_key": message.idempotency_key}

        correlation_id = uuid.uuid4().hex
        started = time.perf_counter()
        error: ProviderError | None = None
        raised: Exception | None = None
        try:
            email.send()
        except Exception as exc:  # classified below; anything unknown is re-raised
            raised = exc
            error = self._classify(exc)
        latency_ms = max(0, int((time.perf_counter() - started) * 1000))

        status = getattr(email, "anymail_status", None)
        response = getattr(status, "esp_response", None) if status else None
        status_code = getattr(response, "status_code", None)
        if status_code is None and isinstance(raised, AnymailError):
            status_code = raised.status_code
        http.record_external_call(
            clinic_id=self.account.clinic_id,
            account_id=self.account.pk,
            provider=NAME,
            operation="send",
            method="POST",
            host=self._host(connection),
            status_code=status_code if isinstance(status_code, int) else None,
            succeeded=error is None and raised is None,
            latency_ms=latency_ms,
            error_class=raised.__class__.__name__ if raised else "",
            error_message=str(error) if error else "",
            attempt=1,
            correlation_id=correlation_id,
        )
        if raised is not None:
            if error is None:
                raise raised
            raise error from None

        message_id = status.message_id if status else None
        if not message_id:
            raise TransientProviderError(
                f"anymail/{self.esp}: the ESP accepted the message without an id",
                provider=NAME,
                http_status=status_code,
            )
        statuses = status.status or set()
        return MessageResult(
            provider_message_id=str(message_id),
            status="sent" if "sent" in statuses else "queued",
            raw={"esp": self.esp, "status": sorted(statuses)},
        )

    def _classify(self, exc: Exception) -> ProviderError | None:
        """anymail's errors as ours: refused or invalid recipients, bad configuration, a
        message anymail cannot build and 4xx answers other than 429 are permanent; the
        ESP's 5xx and 429 and failed connections are transient. ``None`` for exceptions
        that are not the ESP's (bugs propagate)."""
        secrets = self.secrets()
        label = f"anymail/{self.esp}.send"

        def text(prefix: str) -> str:
            # anymail's text spans lines (cause, pretty-printed answer): keep it on one.
            detail = " ".join(http.redact(exc, secrets).split())
            return f"{label}: {prefix}: {detail}"[: http.ERROR_MESSAGE_MAX]

        if isinstance(exc, AnymailRecipientsRefused | AnymailInvalidAddress):
            return PermanentProviderError(text("recipient refused"), provider=NAME)
        if isinstance(exc, AnymailConfigurationError | ImproperlyConfigured):
            return PermanentProviderError(text("misconfigured"), provider=NAME)
        if isinstance(exc, AnymailUnsupportedFeature):
            return PermanentProviderError(text("not supported by this ESP"), provider=NAME)
        if isinstance(exc, AnymailAPIError):
            status = exc.status_code
            if status is None and http.request_may_have_arrived(exc):
                # Sent, no answer (read timeout): the ESP may have accepted the e-mail.
                return OutcomeUnknownError(text("no answer"), provider=NAME)
            if status is not None and 400 <= status < 500 and status != 429:
                return PermanentProviderError(
                    text(f"HTTP {status}"), provider=NAME, http_status=status
                )
            return TransientProviderError(
                text(f"HTTP {status}" if status else "no answer"),
                provider=NAME,
                http_status=status,
            )
        if isinstance(exc, AnymailError):
            # Raised while building the request (bad address list, a value the ESP
            # cannot serialise, no sender domain): the same message fails the same way.
            return PermanentProviderError(text(exc.__class__.__name__), provider=NAME)
        if isinstance(exc, OSError):  # connection errors of SDK-based backends (SES)
            return TransientProviderError(text(exc.__class__.__name__), provider=NAME)
        return None

    def health(self) -> HealthResult:
        """Whether the backend accepts this account's options. Most ESPs have no
        side-effect-free authenticated call, so the ESP itself is not called."""
        try:
            self._connection()
        except ProviderError as exc:
            return HealthResult(ok=False, detail=str(exc))
        return HealthResult(
            ok=True,
            detail=str(_("%(esp)s configured; not probed (the ESP has no side-effect-free check)."))
            % {"esp": ESPS[self.esp]},
        )
