"""Mercado Pago (Payments API v1) as a ``payments`` provider, for PIX.

Wire format from Mercado Pago's developer docs (PIX in Checkout API, payments and refunds
reference, webhook notifications and their ``x-signature``), the official SDKs and
``PROVIDERS.md`` §8:

- ``https://api.mercadopago.com`` for production and test credentials alike (test access
  tokens start with ``TEST-``); ``Authorization: Bearer <access token>``;
  ``X-Idempotency-Key`` is mandatory on ``POST /v1/payments`` and on refunds.
- charge (PIX): ``POST /v1/payments`` ``{transaction_amount, description,
  payment_method_id: "pix", external_reference, notification_url, payer: {email,
  identification}}`` → 201 ``{id, status: "pending", point_of_interaction:
  {transaction_data: {qr_code, qr_code_base64, ticket_url}}}``. Boleto (``bolbradesco``)
  needs the payer's full address and cards need a token from Mercado Pago's own checkout:
  neither is available here, so only PIX is offered (``undefined`` is read as PIX).
- get_charge: ``GET /v1/payments/{id}`` (its ``amount`` is what was paid once approved:
  ``transaction_details.total_paid_amount``); refund: ``POST /v1/payments/{id}/refunds``
  ``{amount?}`` (partial when given) → ``{id, payment_id, amount, status}``.
- errors: ``{"message", "error", "status", "cause": [{"code", "description"}]}``.
- health: ``GET /users/me``.
- webhooks: ``POST <notification_url>&data.id=<id>&type=payment`` (the URL carries
  ``?source_news=webhooks``, so that no unverifiable IPN notification is sent) with
  ``{"id", "action": "payment.updated", "type": "payment", "data": {"id"}, …}``, headers
  ``x-request-id`` and ``x-signature: ts=<ts>,v1=<hex>``, where ``v1 = HMAC-SHA256(secret,
  "id:<data.id>;request-id:<x-request-id>;ts:<ts>;")`` (``data.id`` from the query string,
  lower-cased per the docs — the id as received is accepted too, as the official SDKs sign
  it; parts whose value is absent are left out). A notification only names the payment: its
  items say ``fetch_required`` and whoever acts on them calls ``get_charge``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import (
    ChargeRequest,
    ChargeResult,
    HealthResult,
    PaymentsProvider,
    PaymentUpdate,
    PermanentProviderError,
    RefundResult,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from ..choices import ProviderKind
from ..http import response_json

NAME = "mercadopago"
API_URL = "https://api.mercadopago.com"
SIGNATURE_HEADER = "x-signature"
REQUEST_ID_HEADER = "x-request-id"
NOTIFICATION_QUERY = "source_news=webhooks"
TEST_TOKEN_PREFIX = "TEST-"  # noqa: S105 - a public prefix, not a secret
CENT = Decimal("0.01")
#: Brazil has had no daylight saving time since 2019: end of the due day, Brasília time.
EXPIRATION_SUFFIX = "T23:59:59.000-03:00"
#: Milliseconds since the epoch have 13 digits, seconds 10: anything above is read as ms.
_MS_THRESHOLD = 10**11

#: Mercado Pago payment statuses → ours. ``in_mediation`` is a dispute on a payment that was
#: approved: the money is held, not returned (yet).
STATUSES = {
    "pending": "pending",
    "in_process": "pending",
    "authorized": "pending",
    "approved": "paid",
    "in_mediation": "paid",
    "rejected": "failed",
    "cancelled": "cancelled",
    "refunded": "refunded",
    "charged_back": "refunded",
}
REFUND_STATUSES = {"approved": "refunded", "in_process": "pending", "pending": "pending"}


@registry.register
class MercadoPagoPayments(PaymentsProvider):
    kind = ProviderKind.PAYMENTS
    name = NAME
    label = _("Mercado Pago (PIX)")
    idempotency_header = "X-Idempotency-Key"
    credentials_schema = {
        "access_token": _(
            "Access token of the Mercado Pago application (APP_USR-… in production, TEST-… "
            "for tests)."
        ),
        "webhook_secret": _(
            "Secret signature of the application's webhooks (Your integrations > Webhooks)."
        ),
    }
    settings_schema = {
        "webhook_max_age_seconds": _(
            "Refuse webhooks whose signature is older than this many seconds (0: no limit)."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    def notification_url(self) -> str:
        """Where this account's payments notify. ``source_news=webhooks`` asks for Webhooks
        notifications only: without it Mercado Pago also sends IPN ones (``?id=…&topic=…``),
        whose ``x-signature`` cannot be verified with the secret, and which would be refused."""
        base = settings.CUIDAR_PUBLIC_URL.rstrip("/")
        return f"{base}/webhooks/{NAME}/{self.account.webhook_token}/?{NOTIFICATION_QUERY}"

    def _call(self, method: str, path: str, *, operation: str, **kwargs) -> dict:
        token = str(self.credentials.get("access_token") or "")
        if not token:
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing access_token)", provider=NAME
            )
        try:
            response = self.request(
                method,
                API_URL + path,
                operation=operation,
                headers={"Authorization": f"Bearer {token}"},
                **kwargs,
            )
        except PermanentProviderError as exc:
            raise _refusal(exc, operation) from exc
        data = response_json(response)
        if not isinstance(data, dict):
            raise TransientProviderError(
                f"{NAME}.{operation}: answer is not a JSON object", provider=NAME
            )
        return data

    def charge(self, charge: ChargeRequest) -> ChargeResult:
        """A PIX payment, with its copy-and-paste code, QR image and Mercado Pago's page for
        it. Safe to retry: the same idempotency key returns the same payment."""
        if charge.method not in ("pix", "undefined"):
            raise PermanentProviderError(
                f"{NAME}.charge: method {charge.method!r} is not supported, only PIX (boleto "
                "needs the payer's full address and cards a token from Mercado Pago's "
                "checkout)",
                provider=NAME,
            )
        customer = charge.customer
        if not customer.email:
            raise PermanentProviderError(
                f"{NAME}.charge: Mercado Pago needs the payer's e-mail for a PIX payment",
                provider=NAME,
            )
        body: dict[str, Any] = {
            "transaction_amount": _reais(charge.amount),
            "payment_method_id": "pix",
            "payer": _payer(customer.name, customer.email, customer.cpf_cnpj),
        }
        if charge.description:
            body["description"] = charge.description[:600]
        if charge.external_reference:
            body["external_reference"] = charge.external_reference
        if charge.due_date and charge.due_date > timezone.localdate():
            # A past due date (a charge sent again late) would be refused, and the end of
            # today may be less than the 30 minutes Mercado Pago requires: Mercado Pago's
            # default expiry (24 h for PIX) applies then.
            body["date_of_expiration"] = charge.due_date.isoformat() + EXPIRATION_SUFFIX
        url = self.notification_url()
        # Mercado Pago refuses non-public addresses (http://127.0.0.1 in development): the
        # payment is created without notifications then, and read with get_charge.
        if url.startswith("https://"):
            body["notification_url"] = url
        payment = self._call(
            "POST",
            "/v1/payments",
            operation="charge",
            json=body,
            idempotency_key=charge.idempotency_key or _derived_key(charge),
        )
        payment_id = _id_of(payment, "charge")
        poi = payment.get("point_of_interaction")
        data = poi.get("transaction_data") if isinstance(poi, dict) else None
        data = data if isinstance(data, dict) else {}
        status = STATUSES.get(str(payment.get("status") or ""), "pending")
        return ChargeResult(
            gateway_payment_id=payment_id,
            status=status if status in ("paid", "failed") else "pending",
            pix_payload=str(data.get("qr_code") or ""),
            pix_qr_base64=str(data.get("qr_code_base64") or ""),
            invoice_url=str(data.get("ticket_url") or ""),
            raw=payment,
        )

    def get_charge(self, gateway_payment_id: str) -> PaymentUpdate:
        payment = self._call(
            "GET", f"/v1/payments/{quote(gateway_payment_id, safe='')}", operation="get_charge"
        )
        status = STATUSES.get(str(payment.get("status") or ""), "pending")
        refunded = _decimal(payment.get("transaction_amount_refunded"))
        amount = _decimal(payment.get("transaction_amount"))
        if status in ("paid", "refunded"):
            # What the payer paid (``transaction_details.total_paid_amount``, which counts an
            # overpayment too), when Mercado Pago says: the amount received.
            details = payment.get("transaction_details")
            paid = _decimal(details.get("total_paid_amount")) if isinstance(details, dict) else None
            amount = paid if paid else amount
        return PaymentUpdate(
            gateway_payment_id=str(payment.get("id") or gateway_payment_id),
            status=status,
            amount=amount,
            paid_at=_datetime(payment.get("date_approved")),
            external_reference=str(payment.get("external_reference") or ""),
            refunded_amount=refunded if refunded else None,
        )

    def refund(self, gateway_payment_id: str, amount: Decimal | None = None) -> RefundResult:
        """Refund all (``amount=None``) or part of an approved payment.

        The idempotency key is new for each call: it makes this call's own retries safe;
        a caller that retries ``refund`` itself should check ``get_charge`` first."""
        body = {} if amount is None else {"amount": _reais(amount)}
        refund = self._call(
            "POST",
            f"/v1/payments/{quote(gateway_payment_id, safe='')}/refunds",
            operation="refund",
            json=body,
            idempotency_key=uuid.uuid4().hex,
        )
        state = str(refund.get("status") or "")
        status = REFUND_STATUSES.get(state)
        if status is None:
            raise PermanentProviderError(
                f"{NAME}.refund: refund of {gateway_payment_id} is {state or 'unknown'}",
                provider=NAME,
                detail=refund,
            )
        refunded = _decimal(refund.get("amount"))
        return RefundResult(
            gateway_payment_id=str(refund.get("payment_id") or gateway_payment_id),
            amount=refunded if refunded is not None else (amount or Decimal("0")),
            status=status,
            raw=refund,
        )

    def health(self) -> HealthResult:
        """Reads the account the access token belongs to."""
        token = str(self.credentials.get("access_token") or "")
        environment = "sandbox" if token.startswith(TEST_TOKEN_PREFIX) else "production"
        accepted = gettext("Credentials accepted (%(environment)s).") % {"environment": environment}
        return self.health_probe(
            API_URL + "/users/me",
            missing=[] if token else ["access_token"],
            headers={"Authorization": f"Bearer {token}"} if token else {},
            refusal=lambda exc: _refusal(exc, "health"),
            judge=lambda data: (True, accepted),
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """``x-signature``'s ``v1`` must be the HMAC-SHA256 of the manifest with our secret
        (and its ``ts`` recent enough, when the account sets a maximum age)."""
        header = request.header(SIGNATURE_HEADER).strip()
        if not header:
            raise WebhookUnauthorized(f"missing {SIGNATURE_HEADER}", status=401)
        secret = str(self.credentials.get("webhook_secret") or "")
        if not secret:
            raise WebhookUnauthorized(
                "no webhook_secret configured: webhooks are refused", status=403
            )
        parts = _signature_parts(header)
        ts, v1 = parts.get("ts", ""), parts.get("v1", "")
        if not ts or not v1:
            raise WebhookUnauthorized(f"{SIGNATURE_HEADER} without ts or v1", status=403)
        data_id = request.query.get("data.id", "")
        request_id = request.header(REQUEST_ID_HEADER)
        manifests = {signature_manifest(data_id=data_id, request_id=request_id, ts=ts)}
        # The docs sign an alphanumeric data.id in lower case, Mercado Pago's own SDK
        # validators sign it as received: either form is Mercado Pago's (and a numeric
        # payment id reads the same in both).
        manifests.add(
            signature_manifest(data_id=data_id, request_id=request_id, ts=ts, lower=False)
        )
        received = v1.lower().encode()
        matches = [
            hmac.compare_digest(received, _hmac_hex(secret, manifest))
            for manifest in sorted(manifests)
        ]
        if not any(matches):
            raise WebhookUnauthorized(f"wrong {SIGNATURE_HEADER}", status=403)
        max_age = _int(self.settings.get("webhook_max_age_seconds"))
        if max_age > 0:
            signed_at = _epoch_seconds(ts)
            if signed_at is None or abs(time.time() - signed_at) > max_age:
                raise WebhookUnauthorized(f"{SIGNATURE_HEADER} too old", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """A payment notification becomes ``PaymentUpdate(id, "pending",
        fetch_required=True)``: the notification is not to be trusted for a status. Other
        topics (merchant orders, …) carry no item.

        Dedupe key: topic, payment id, action and Mercado Pago's notification id (the same
        on every retry of one notification, different for the next change of the payment)."""
        data = _json_object(request)
        topic = str(data.get("type") or request.query.get("type") or "")
        action = str(data.get("action") or "")
        resource = data.get("data") if isinstance(data.get("data"), dict) else {}
        data_id = str(request.query.get("data.id") or resource.get("id") or "")
        if not data_id:
            raise WebhookMalformed("no data.id in the query string or the body")
        notification = str(data.get("id") or request.header(REQUEST_ID_HEADER) or "")
        key = f"{topic}:{data_id}:{action}:{notification}" if notification else ""
        items: list[PaymentUpdate] = []
        if topic == "payment" or action.startswith("payment."):
            items.append(
                PaymentUpdate(gateway_payment_id=data_id, status="pending", fetch_required=True)
            )
        return WebhookEvent(dedupe_key=key, items=items)


# --- Helpers ----------------------------------------------------------------------------------
def signature_manifest(*, data_id: str, request_id: str, ts: str, lower: bool = True) -> str:
    """What Mercado Pago signs: ``id:<data.id>;request-id:<x-request-id>;ts:<ts>;``, the
    id lower-cased (the docs: alphanumeric ids are signed in lower case) unless ``lower``
    is false, parts without a value left out."""
    manifest = ""
    if data_id:
        manifest += f"id:{data_id.lower() if lower else data_id};"
    if request_id:
        manifest += f"request-id:{request_id};"
    return manifest + f"ts:{ts};"


def _hmac_hex(secret: str, manifest: str) -> bytes:
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest().encode()


def _signature_parts(header: str) -> dict[str, str]:
    parts = {}
    for part in header.split(","):
        name, _sep, value = part.partition("=")
        if name.strip() and value.strip():
            parts[name.strip().lower()] = value.strip()
    return parts


def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    """A 4xx from Mercado Pago, reworded with its message and cause codes."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    causes = [c for c in detail.get("cause") or [] if isinstance(c, dict)]
    codes = ", ".join(str(c["code"]) for c in causes if c.get("code") is not None)
    described = "; ".join(str(c["description"]) for c in causes if c.get("description"))
    message = described or str(detail.get("message") or "")
    if exc.http_status == 401:
        reason = "invalid access token" + (f": {message}" if message else "")
    elif message:
        reason = message
    elif exc.http_status == 404:
        reason = "not found"
    else:
        reason = "request refused"
    text = f"{NAME}.{operation}: {reason[:300]}"
    if codes:
        text += f" ({codes})"
    text += f" (HTTP {exc.http_status})"
    return PermanentProviderError(
        text, provider=NAME, http_status=exc.http_status, detail=exc.detail
    )


def _payer(name: str, email: str, tax_id: str) -> dict:
    payer: dict[str, Any] = {"email": email}
    first, _sep, last = (name or "").strip().partition(" ")
    if first:
        payer["first_name"] = first
    if last.strip():
        payer["last_name"] = last.strip()
    digits = "".join(c for c in str(tax_id or "") if c.isdigit())
    if len(digits) in (11, 14):
        payer["identification"] = {"type": "CPF" if len(digits) == 11 else "CNPJ", "number": digits}
    return payer


def _derived_key(charge: ChargeRequest) -> str:
    """A stable idempotency key when the caller gave none: the same charge of the same
    reference gets the same key (so a retry never creates a second payment). Without a
    reference there is nothing stable to derive it from: a fresh key still protects this
    call's own retries."""
    if not charge.external_reference:
        return uuid.uuid4().hex
    seed = f"{charge.external_reference}|{_cents(charge.amount)}|pix"
    return "cuidar-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _id_of(data: dict, operation: str) -> str:
    if data.get("id") in (None, ""):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer without an id", provider=NAME, http_status=200
        )
    return str(data["id"])


def _cents(amount: Decimal) -> Decimal:
    return Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)


def _reais(amount: Decimal) -> float:
    """Reais with two decimals, as the JSON number Mercado Pago takes. The Decimal is
    rounded to centavos first; the float only carries it to ``json.dumps``, which writes
    the same digits back (150.9 for 150.90): no arithmetic is ever done on it."""
    cents = _cents(amount)
    if cents <= 0:
        raise PermanentProviderError(
            f"{NAME}: the amount must be positive, not {amount}", provider=NAME
        )
    value = float(cents)
    if Decimal(repr(value)) != cents:  # beyond float's 15 significant digits
        raise PermanentProviderError(f"{NAME}: the amount {amount} is too large", provider=NAME)
    return value


def _decimal(value: Any) -> Decimal | None:
    """An amount from the JSON (a number) as Decimal, through its text."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def _datetime(value: Any) -> datetime | None:
    """Mercado Pago's ISO 8601 times (``2026-05-04T10:21:45.000-04:00``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def _epoch_seconds(ts: str) -> float | None:
    try:
        value = float(ts)
    except ValueError:
        return None
    return value / 1000 if value > _MS_THRESHOLD else value


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _json_object(request: WebhookRequest) -> dict:
    if not request.body.strip():
        return {}  # the query string alone names the payment
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data
