"""PagBank (PagSeguro) Orders API as a ``payments`` provider, for PIX.

Wire format from developer.pagbank.com.br (create an order with a QR code, order and charge
objects, cancel/refund a charge, notifications and their authenticity token, public keys)
and ``PROVIDERS.md`` §9:

- ``https://api.pagseguro.com`` or ``https://sandbox.api.pagseguro.com``;
  ``Authorization: Bearer <token>``. Production accounts must be allowed into the Orders
  API by PagBank first (a 403 ``ACCESS_DENIED`` "whitelist access required" until then).
- charge (PIX): ``POST /orders`` ``{reference_id, customer: {name, email, tax_id, phones},
  items: [{name, quantity, unit_amount}], qr_codes: [{amount: {value}, expiration_date}],
  notification_urls}``, amounts in integer centavos → ``{id: "ORDE_…", qr_codes: [{id,
  text: "000201…", links: [{rel: "QRCODE.PNG", href}, {rel: "QRCODE.BASE64", href}]}]}``.
  The order id is our payment id. Boleto and card orders go through ``charges`` with the
  holder's full address or an encrypted card, which Cuidar does not have: only PIX is
  offered (``undefined`` is read as PIX).
- get_charge: ``GET /orders/{id}``: once paid, the order has ``charges: [{id: "CHAR_…",
  status: WAITING | IN_ANALYSIS | AUTHORIZED | PAID | DECLINED | CANCELED, paid_at,
  amount: {value, summary: {total, paid, refunded}}}]``; an update's ``amount`` is what was
  paid (``summary.paid``) once the charge is paid.
- refund: ``POST /charges/{charge_id}/cancel`` ``{amount: {value}}`` (partial when less
  than what was paid) → the charge.
- errors: ``{"error_messages": [{"code", "description", "parameter_name"}]}``.
- health: ``GET /public-keys/card`` (read-only).
- webhooks: PagBank POSTs the order to its ``notification_urls`` with header
  ``x-authenticity-token`` = hex SHA-256 of ``<account token>-<raw body>``.

PagBank documents no idempotency key for orders and no search by reference: creating and
cancelling are tried once, never repeated inline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
    Customer,
    HealthResult,
    PaymentsProvider,
    PaymentUpdate,
    PermanentProviderError,
    ProviderError,
    RefundResult,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
    elapsed_ms,
)
from ..choices import ProviderKind
from ..http import response_json

NAME = "pagbank"
BASE_URLS = {
    "production": "https://api.pagseguro.com",
    "sandbox": "https://sandbox.api.pagseguro.com",
}
TOKEN_HEADER = "x-authenticity-token"  # noqa: S105 - a header name, not a secret
CENT = Decimal("0.01")
#: Brazil has had no daylight saving time since 2019: end of the due day, Brasília time.
EXPIRATION_SUFFIX = "T23:59:59-03:00"
QR_PNG_REL = "QRCODE.PNG"

#: Charge statuses → ours. CANCELED is "refunded" when money had come in (see _status_of).
STATUSES = {
    "WAITING": "pending",
    "IN_ANALYSIS": "pending",
    "AUTHORIZED": "pending",
    "PAID": "paid",
    "DECLINED": "failed",
    "CANCELED": "cancelled",
}


@registry.register
class PagBankPayments(PaymentsProvider):
    kind = ProviderKind.PAYMENTS
    name = NAME
    label = _("PagBank (PIX)")
    credentials_schema = {
        "token": _(
            "PagBank API token; it also authenticates PagBank's notifications "
            "(x-authenticity-token)."
        ),
    }
    settings_schema = {
        "environment": _("sandbox or production (default: production)."),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _environment(self) -> str:
        environment = str(self.settings.get("environment") or "production").strip().lower()
        if environment not in BASE_URLS:
            raise PermanentProviderError(
                f"{NAME}: environment must be 'sandbox' or 'production', not {environment!r}",
                provider=NAME,
            )
        return environment

    def notification_url(self) -> str:
        base = settings.CUIDAR_PUBLIC_URL.rstrip("/")
        return f"{base}/webhooks/{NAME}/{self.account.webhook_token}/"

    def _call(self, method: str, path: str, *, operation: str, **kwargs) -> dict:
        token = str(self.credentials.get("token") or "")
        if not token:
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing token)", provider=NAME
            )
        try:
            response = self.request(
                method,
                BASE_URLS[self._environment()] + path,
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
        """An order with one PIX QR code. ``invoice_url`` is PagBank's PNG of the QR code
        (PagBank gives no payment page, and the base64 image only behind another link)."""
        if charge.method not in ("pix", "undefined"):
            raise PermanentProviderError(
                f"{NAME}.charge: method {charge.method!r} is not supported, only PIX (boleto "
                "needs the holder's full address and cards an encrypted card)",
                provider=NAME,
            )
        value = _centavos(charge.amount)
        qr_code: dict[str, Any] = {"amount": {"value": value}}
        if charge.due_date and charge.due_date > timezone.localdate():
            # A past due date (a charge sent again late) would be refused, and the end of
            # today may be only minutes away: PagBank's default expiry applies then.
            qr_code["expiration_date"] = charge.due_date.isoformat() + EXPIRATION_SUFFIX
        body: dict[str, Any] = {
            "customer": _customer(charge.customer),
            "items": [
                {
                    "name": (charge.description or gettext("Payment"))[:64],
                    "quantity": 1,
                    "unit_amount": value,
                }
            ],
            "qr_codes": [qr_code],
        }
        if charge.external_reference:
            body = {"reference_id": charge.external_reference, **body}
        url = self.notification_url()
        # PagBank only calls public https addresses: in development (http://127.0.0.1) the
        # order is created without notifications, and read with get_charge.
        if url.startswith("https://"):
            body["notification_urls"] = [url]
        order = self._call("POST", "/orders", operation="charge", json=body, retry=False)
        order_id = _id_of(order, "charge")
        qr_codes = [q for q in order.get("qr_codes") or [] if isinstance(q, dict)]
        first = qr_codes[0] if qr_codes else {}
        status = _status_of(order)
        return ChargeResult(
            gateway_payment_id=order_id,
            status=status if status in ("paid", "failed") else "pending",
            pix_payload=str(first.get("text") or ""),
            invoice_url=_link(first, QR_PNG_REL),
            raw=order,
        )

    def _order(self, order_id: str, operation: str) -> dict:
        return self._call("GET", f"/orders/{quote(order_id, safe='')}", operation=operation)

    def get_charge(self, gateway_payment_id: str) -> PaymentUpdate:
        return _update_of(self._order(gateway_payment_id, "get_charge"), gateway_payment_id)

    def refund(self, gateway_payment_id: str, amount: Decimal | None = None) -> RefundResult:
        """Give back all (``amount=None``: what is left of it) or part of the order's paid
        charge. ``gateway_payment_id`` is the order id (a ``CHAR_…`` id is accepted too)."""
        refunded_before = 0
        if gateway_payment_id.startswith("CHAR_"):
            charge_id, left = gateway_payment_id, None
        else:
            paid = _paid_charge(self._order(gateway_payment_id, "refund_lookup"))
            if paid is None:
                raise PermanentProviderError(
                    f"{NAME}.refund: order {gateway_payment_id} has no paid charge to refund",
                    provider=NAME,
                )
            charge_id = str(paid["id"])
            summary = _summary(paid)
            paid_amount = paid.get("amount") if isinstance(paid.get("amount"), dict) else {}
            refunded_before = summary["refunded"]
            left = (summary["paid"] or _int(paid_amount.get("value"))) - refunded_before
        if amount is None and not left:
            raise PermanentProviderError(
                f"{NAME}.refund: nothing left to refund of charge {charge_id} (give an amount)",
                provider=NAME,
            )
        to_refund = _centavos(amount) if amount is not None else left
        charge = self._call(
            "POST",
            f"/charges/{quote(charge_id, safe='')}/cancel",
            operation="refund",
            json={"amount": {"value": to_refund}},
            retry=False,  # no idempotency key: never repeated inline
        )
        # Done when the charge is cancelled or its refunded total grew by this refund (an
        # earlier refund already in the total must not make a pending one read as done).
        state = str(charge.get("status") or "")
        refunded_now = _summary(charge)["refunded"] - refunded_before
        status = "refunded" if state == "CANCELED" or refunded_now >= to_refund else "pending"
        return RefundResult(
            gateway_payment_id=gateway_payment_id,
            amount=_reais(to_refund),
            status=status,
            raw=charge,
        )

    def health(self) -> HealthResult:
        """Reads the account's card public key: proves the token and the environment. An
        account that never created one (PIX only) answers 404, which still means the token
        was accepted."""
        if not self.credentials.get("token"):
            return HealthResult(
                ok=False, detail=gettext("Not configured: %(names)s.") % {"names": "token"}
            )
        started = time.perf_counter()
        try:
            environment = self._environment()
            self._call("GET", "/public-keys/card", operation="health", retry=False)
        except ProviderError as exc:
            if exc.http_status != 404:
                return HealthResult(
                    ok=False,
                    detail=gettext("Provider call failed: %(error)s") % {"error": exc},
                    latency_ms=elapsed_ms(started),
                )
        return HealthResult(
            ok=True,
            detail=gettext("Credentials accepted (%(environment)s).")
            % {"environment": environment},
            latency_ms=elapsed_ms(started),
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """``x-authenticity-token`` must be SHA-256 of the account token, a hyphen and the
        raw body, exactly as received."""
        signature = request.header(TOKEN_HEADER).strip().lower()
        if not signature:
            raise WebhookUnauthorized(f"missing {TOKEN_HEADER}", status=401)
        token = str(self.credentials.get("token") or "")
        if not token:
            raise WebhookUnauthorized("no token configured: webhooks are refused", status=403)
        expected = authenticity_token(token, request.body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise WebhookUnauthorized(f"wrong {TOKEN_HEADER}", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """An order notification is one ``PaymentUpdate`` of that order. PagBank sends no
        event id: the dedupe key is the order, its charge, the charge's status and how much
        was refunded, so a repeated notification of the same state is stored once."""
        try:
            order = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("body is not JSON") from None
        if not isinstance(order, dict):
            raise WebhookMalformed("body is not a JSON object")
        order_id = str(order.get("id") or "")
        if not order_id.startswith("ORDE_"):
            # A bare charge (the older Charges API) names no order we created: nothing to do.
            if order_id.startswith("CHAR_"):
                return WebhookEvent(dedupe_key=f"{order_id}:{order.get('status')}", items=[])
            raise WebhookMalformed("not an order: no ORDE_ id")
        charge = _latest_charge(order)
        if charge is None:
            key = f"{order_id}:no-charge"
        else:
            key = f"{order_id}:{charge.get('id')}:{charge.get('status')}:"
            key += str(_summary(charge)["refunded"])
        return WebhookEvent(dedupe_key=key, items=[_update_of(order, order_id)])


# --- Helpers ----------------------------------------------------------------------------------
def authenticity_token(token: str, body: bytes) -> str:
    """PagBank's ``x-authenticity-token`` for a notification body."""
    return hashlib.sha256(token.encode() + b"-" + body).hexdigest()


def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    """A 4xx from PagBank, reworded with its error messages."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    errors = [e for e in detail.get("error_messages") or [] if isinstance(e, dict)]
    codes = ", ".join(str(e["code"]) for e in errors if e.get("code"))
    described = "; ".join(
        str(e["description"]) + (f" ({e['parameter_name']})" if e.get("parameter_name") else "")
        for e in errors
        if e.get("description")
    )
    if exc.http_status == 401:
        reason = "invalid token" + (f": {described}" if described else "")
    elif described:
        reason = described
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


def _customer(customer: Customer) -> dict:
    body: dict[str, Any] = {"name": customer.name}
    if customer.email:
        body["email"] = customer.email
    tax_id = _digits(customer.cpf_cnpj)
    if tax_id:
        body["tax_id"] = tax_id
    digits = _digits(customer.phone)
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    if len(digits) in (10, 11):
        body["phones"] = [
            {
                "country": "55",
                "area": digits[:2],
                "number": digits[2:],
                "type": "MOBILE" if len(digits) == 11 else "BUSINESS",
            }
        ]
    return body


def _charges(order: dict) -> list[dict]:
    return [c for c in order.get("charges") or [] if isinstance(c, dict) and c.get("id")]


def _latest_charge(order: dict) -> dict | None:
    charges = _charges(order)
    return max(charges, key=lambda c: str(c.get("created_at") or "")) if charges else None


def _paid_charge(order: dict) -> dict | None:
    """The charge that holds the money (PAID, or already partly refunded)."""
    for charge in sorted(_charges(order), key=lambda c: str(c.get("created_at") or "")):
        if charge.get("status") == "PAID":
            return charge
    return None


def _summary(charge: dict) -> dict[str, int]:
    amount = charge.get("amount") if isinstance(charge.get("amount"), dict) else {}
    summary = amount.get("summary") if isinstance(amount.get("summary"), dict) else {}
    return {name: _int(summary.get(name)) for name in ("total", "paid", "refunded")}


def _status_of(order: dict) -> str:
    charge = _latest_charge(order)
    if charge is None:
        return "pending"  # a QR code not paid yet: PagBank creates the charge on payment
    status = STATUSES.get(str(charge.get("status") or ""), "pending")
    if status == "cancelled" and (_summary(charge)["refunded"] or _summary(charge)["paid"]):
        return "refunded"
    return status


def _update_of(order: dict, fallback_id: str) -> PaymentUpdate:
    charge = _latest_charge(order)
    status = _status_of(order)
    amount = None
    refunded = None
    paid_at = None
    if charge is not None:
        charge_amount = charge.get("amount") if isinstance(charge.get("amount"), dict) else {}
        amount = _reais_or_none(charge_amount.get("value"))
        refunded = _summary(charge)["refunded"] or None
        paid_at = _datetime(charge.get("paid_at"))
        if status in ("paid", "refunded") and _summary(charge)["paid"]:
            # What was paid (``amount.summary.paid``): the amount received.
            amount = _reais(_summary(charge)["paid"])
    if amount is None:
        qr_codes = [q for q in order.get("qr_codes") or [] if isinstance(q, dict)]
        qr_amount = qr_codes[0].get("amount") if qr_codes else None
        if isinstance(qr_amount, dict):
            amount = _reais_or_none(qr_amount.get("value"))
    return PaymentUpdate(
        gateway_payment_id=str(order.get("id") or fallback_id),
        status=status,
        amount=amount,
        paid_at=paid_at if status in ("paid", "refunded") else None,
        external_reference=str(order.get("reference_id") or ""),
        refunded_amount=_reais(refunded) if refunded else None,
    )


def _link(item: dict, rel: str) -> str:
    for link in item.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel:
            return str(link.get("href") or "")
    return ""


def _id_of(data: dict, operation: str) -> str:
    if not data.get("id"):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer without an id", provider=NAME, http_status=200
        )
    return str(data["id"])


def _centavos(amount: Decimal) -> int:
    """Integer centavos, rounded half up on the Decimal (never through float)."""
    centavos = (Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    if centavos <= 0:
        raise PermanentProviderError(
            f"{NAME}: the amount must be positive, not {amount}", provider=NAME
        )
    return int(centavos)


def _reais(centavos: int) -> Decimal:
    return (Decimal(int(centavos)) / 100).quantize(CENT)


def _reais_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return (Decimal(str(value)) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _digits(value: str) -> str:
    return "".join(c for c in str(value or "") if c.isdigit())


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
