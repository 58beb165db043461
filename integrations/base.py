"""Provider interfaces, one per capability, and the provider-neutral dataclasses they speak.

A provider adapter subclasses one interface (``MessagingProvider``, ``PaymentsProvider`` …),
declares ``kind`` and ``name``, registers with ``@registry.register``, and makes every
network call through ``self.request(...)`` (which goes through ``integrations.http``: the
only way out to the network). Callers never call a provider directly: they go through
``chains.run_chain`` so that breakers, fallbacks and the call log apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from clinic.kernel.errors import ApplicationError

if TYPE_CHECKING:
    import requests

    from .models import ProviderAccount


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return max(0, int((time.perf_counter() - started) * 1000))


# --- Errors ---------------------------------------------------------------------------------
class ProviderError(ApplicationError):
    """A provider call failed. ``permanent`` says whether trying again can help: a 4xx
    (bad input, bad credentials) is permanent, a timeout, 5xx or 429 is not. Permanent
    errors never trip a circuit breaker."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        provider: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
        detail: Any = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.provider = provider
        self.http_status = http_status
        self.retry_after = retry_after
        self.detail = detail


class TransientProviderError(ProviderError):
    def __init__(self, message: str, **kwargs):
        super().__init__(message, permanent=False, **kwargs)


class PermanentProviderError(ProviderError):
    def __init__(self, message: str, **kwargs):
        super().__init__(message, permanent=True, **kwargs)


class CircuitOpenError(TransientProviderError):
    """The breaker of this (clinic, account) is open: the call was not made."""


class OutcomeUnknownError(TransientProviderError):
    """The request reached the provider but no answer came back (a read timeout, a
    connection dropped after the request was sent): it may have taken effect. Not a failure:
    a chain stops on it instead of trying the next provider, which could do it twice."""


class ChainFailed(ProviderError):
    """Every provider of a chain failed (or was skipped). The caller's work stays queued
    and is retried later; ``errors`` lists what each provider said."""

    def __init__(self, message: str, *, errors: list[tuple[str, ProviderError]]):
        permanent = bool(errors) and all(e.permanent for _, e in errors)
        super().__init__(message, permanent=permanent)
        self.errors = errors


class ChainOutcomeUnknown(ChainFailed):
    """A provider of the chain may have done it (``OutcomeUnknownError``): the chain stopped
    there. ``provider`` names it, ``account`` is its account; ``errors`` lists what the
    providers before it said, then its own error."""

    def __init__(self, message: str, *, errors, provider: str, account=None, tried=()):
        super().__init__(message, errors=errors)
        self.provider = provider
        self.account = account
        self.tried = list(tried)


class WebhookUnauthorized(Exception):
    """An inbound webhook's signature or token is missing or wrong: answer 401/403 and
    store nothing."""

    def __init__(self, reason: str, *, status: int = 401):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class WebhookMalformed(Exception):
    """An authentic webhook whose body cannot be understood: stored and marked failed."""


# --- Inbound webhooks -----------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request, as providers need it: raw body and headers, not Django's
    request object (which may have consumed the body)."""

    method: str
    url: str  # the absolute public URL the provider called (Twilio signs it)
    subpath: str  # what follows /webhooks/<provider>/<token>/, e.g. "status"
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: bytes
    content_type: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        """Form-encoded body (Twilio, Vonage) as a flat dict."""
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the provider (2xx by default; Meta's GET handshake echoes a
    challenge, Twilio expects TwiML)."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    from_address: str  # E.164 phone or e-mail address
    to_address: str
    text: str
    received_at: datetime | None = None
    sender_name: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class MessageStatusUpdate:
    provider_message_id: str
    status: str  # queued | sent | delivered | read | failed
    at: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class PaymentUpdate:
    gateway_payment_id: str
    status: str  # pending | paid | failed | cancelled | refunded | overdue
    amount: Decimal | None = None
    paid_at: datetime | None = None
    external_reference: str = ""
    #: Refunded so far (partial refunds), when the gateway says.
    refunded_amount: Decimal | None = None
    #: The notification only names the payment (Mercado Pago): whoever acts on it must
    #: fetch the payment (``get_charge``) before trusting any status.
    fetch_required: bool = False


@dataclass(frozen=True)
class InvoiceUpdate:
    reference: str
    status: str  # processing | authorized | error | cancelled
    number: str = ""
    verification_code: str = ""
    pdf_url: str = ""
    xml_url: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookEvent:
    """What a provider's webhook said, provider-neutral. ``dedupe_key`` is the provider's
    own event id where it has one (replays of the same event share it)."""

    dedupe_key: str
    items: list[InboundMessage | MessageStatusUpdate | PaymentUpdate | InvoiceUpdate] = field(
        default_factory=list
    )


# --- Outbound requests and results ----------------------------------------------------------
@dataclass(frozen=True)
class MessageRequest:
    to: str  # E.164 phone, or e-mail address for the e-mail kind
    text: str = ""
    subject: str = ""  # e-mail only
    html: str = ""  # e-mail only
    template: str = ""  # provider template name (Meta), when the channel needs one
    template_language: str = "pt_BR"
    template_variables: list[str] = field(default_factory=list)
    idempotency_key: str = ""


@dataclass(frozen=True)
class MessageResult:
    provider_message_id: str
    status: str = "sent"  # queued | sent
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Customer:
    name: str
    cpf_cnpj: str = ""
    email: str = ""
    phone: str = ""
    external_reference: str = ""


@dataclass(frozen=True)
class ChargeRequest:
    amount: Decimal
    method: str  # pix | boleto | credit_card | undefined
    customer: Customer
    description: str = ""
    due_date: date | None = None
    external_reference: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True)
class ChargeResult:
    gateway_payment_id: str
    status: str  # pending | paid | failed
    pix_payload: str = ""  # "copia e cola" BR Code
    pix_qr_base64: str = ""
    invoice_url: str = ""
    boleto_url: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RefundResult:
    gateway_payment_id: str
    amount: Decimal
    status: str  # refunded | pending
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class InvoiceRequest:
    reference: str
    amount: Decimal
    description: str
    customer: Customer
    service_code: str = ""
    municipal_tax_code: str = ""
    iss_rate: Decimal | None = None
    issued_on: date | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    detail: str = ""
    latency_ms: int | None = None


# --- Provider interfaces --------------------------------------------------------------------
class Provider:
    """Base of every adapter. One instance serves one account (or a default, unsaved one)."""

    kind: ClassVar[str]
    name: ClassVar[str]
    label: ClassVar[str] = ""
    #: Console/sandbox providers record instead of sending; the admin says so.
    is_console: ClassVar[bool] = False
    #: Credential fields (name → help text), shown masked in the admin.
    credentials_schema: ClassVar[dict[str, str]] = {}
    #: Non-secret settings (name → help text).
    settings_schema: ClassVar[dict[str, str]] = {}
    #: Header the provider reads an idempotency key from, if it accepts one.
    idempotency_header: ClassVar[str | None] = None
    #: Whether the provider may deliver events by GET (query string), as Vonage does when
    #: the account is set so. Otherwise a GET is a handshake: answered, never stored.
    webhook_get_delivers_events: ClassVar[bool] = False

    def __init__(self, account: ProviderAccount):
        self.account = account

    @property
    def credentials(self) -> dict:
        return self.account.credentials or {}

    @property
    def settings(self) -> dict:
        return self.account.settings or {}

    def secrets(self) -> list[str]:
        """Values to redact from logs, errors and the call log."""
        return [str(v) for v in self.credentials.values() if v]

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotency_key: str | None = None,
        **kwargs,
    ) -> requests.Response:
        """An HTTP call through ``integrations.http`` on behalf of this account."""
        from . import http

        return http.request(
            method,
            url,
            provider=self.name,
            operation=operation,
            clinic_id=self.account.clinic_id,
            account_id=self.account.pk,
            idempotency_key=idempotency_key,
            idempotency_header=self.idempotency_header,
            secrets=self.secrets(),
            **kwargs,
        )

    def health(self) -> HealthResult:
        """A cheap authenticated probe of the provider (no side effects)."""
        raise NotImplementedError

    def health_probe(
        self,
        url: str,
        *,
        judge: Callable[[Any], tuple[bool, str]],
        missing: Iterable[str] = (),
        refusal: Callable[[PermanentProviderError], ProviderError] | None = None,
        **request_kwargs,
    ) -> HealthResult:
        """What every ``health()`` does, in one place: an account missing settings is
        unhealthy without a call; otherwise one GET without retries (a probe answers at
        once), whose JSON ``judge`` turns into ``(ok, detail)``. Provider errors become an
        unhealthy result (``refusal`` may reword a permanent one); nothing is raised."""
        from django.utils.translation import gettext

        from .http import response_json

        missing = list(missing)
        if missing:
            return HealthResult(
                ok=False,
                detail=gettext("Not configured: %(names)s.") % {"names": ", ".join(missing)},
            )
        started = time.perf_counter()
        try:
            response = self.request("GET", url, operation="health", retry=False, **request_kwargs)
            data = response_json(response)
        except ProviderError as exc:
            if refusal is not None and isinstance(exc, PermanentProviderError):
                exc = refusal(exc)
            return HealthResult(
                ok=False,
                detail=gettext("Provider call failed: %(error)s") % {"error": exc},
                latency_ms=elapsed_ms(started),
            )
        ok, detail = judge(data)
        return HealthResult(ok=ok, detail=detail, latency_ms=elapsed_ms(started))

    # Inbound webhooks (providers that send none keep the defaults).
    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise ``WebhookUnauthorized`` unless the request is authentic."""
        raise WebhookUnauthorized("this provider receives no webhooks", status=404)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """Turn an authentic request into provider-neutral items; raise
        ``WebhookMalformed`` when the body cannot be understood."""
        raise WebhookMalformed("this provider receives no webhooks")

    def webhook_reply(self, request: WebhookRequest) -> WebhookReply:
        return WebhookReply(status=200, body='{"ok": true}')

    def webhook_body_to_store(self, request: WebhookRequest) -> bytes:
        """The body kept in ``InboundWebhook`` (after verification). Providers that echo a
        credential in their payloads drop it here; the stored body must still parse."""
        return request.body


class MessagingProvider(Provider):
    """WhatsApp, SMS and e-mail providers."""

    #: Whether :meth:`find_sent` can tell if a send whose answer was lost went out.
    can_find_sent: ClassVar[bool] = False

    def send(self, message: MessageRequest) -> MessageResult:
        raise NotImplementedError

    def find_sent(self, message: MessageRequest, *, since: datetime) -> MessageResult | None:
        """The message the provider accepted for ``message`` at or after ``since`` (a send
        whose answer never came back: a read timeout, a worker killed mid-call), or
        ``None`` when the provider holds no such message. Only for providers with
        ``can_find_sent``; a ``ProviderError`` means the question stays open."""
        raise NotImplementedError


class PaymentsProvider(Provider):
    def charge(self, charge: ChargeRequest) -> ChargeResult:
        raise NotImplementedError

    def get_charge(self, gateway_payment_id: str) -> PaymentUpdate:
        raise NotImplementedError

    def refund(self, gateway_payment_id: str, amount: Decimal | None = None) -> RefundResult:
        raise NotImplementedError


class FiscalProvider(Provider):
    def issue(self, invoice: InvoiceRequest) -> InvoiceUpdate:
        raise NotImplementedError

    def get_invoice(self, reference: str) -> InvoiceUpdate:
        raise NotImplementedError

    def cancel(self, reference: str, justification: str) -> InvoiceUpdate:
        raise NotImplementedError


class CalendarProvider(Provider):
    def upsert_event(
        self, *, external_id: str, title: str, start: datetime, end: datetime, description=""
    ) -> str:
        raise NotImplementedError

    def delete_event(self, *, external_id: str) -> None:
        raise NotImplementedError


class StorageProvider(Provider):
    def put(self, *, key: str, content: bytes, content_type: str) -> str:
        raise NotImplementedError

    def get(self, *, key: str) -> bytes:
        raise NotImplementedError

    def url(self, *, key: str, expires_in: int = 300) -> str:
        raise NotImplementedError
