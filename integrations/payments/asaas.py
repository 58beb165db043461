"""Asaas (API v3) as a ``payments`` provider.

Wire format from docs.asaas.com (authentication, customers, payments, PIX QR code, refunds,
webhook events) and ``PROVIDERS.md`` §7:

- base ``https://api.asaas.com/v3`` or ``https://api-sandbox.asaas.com/v3``; headers
  ``access_token: <API key>`` and a ``User-Agent`` (mandatory for accounts opened since
  2024-06-13). Sandbox keys start with ``$aact_hmlg_``, production ones with ``$aact_prod_``.
- charge: the customer is looked up (``GET /customers?cpfCnpj=`` or ``?externalReference=``)
  and created only when missing (``POST /customers``: Asaas accepts duplicates); then
  ``POST /payments`` ``{customer, billingType, value, dueDate, description,
  externalReference}`` → ``{"object": "payment", "id": "pay_…", "status": "PENDING",
  "invoiceUrl", "bankSlipUrl", …}``; for PIX, ``GET /payments/{id}/pixQrCode`` →
  ``{encodedImage, payload, expirationDate}``. ``dueDate`` is never in the past (Asaas
  refuses it): a charge sent again after its due date is due today. ``value`` is a JSON
  number in reais (150.9), rounded to centavos on the Decimal first.
  Asaas takes no idempotency key, so creating POSTs are never repeated inline, and a charge
  with an external reference first reuses a pending payment of the same reference, value
  and billing type (a retry after a timeout must not bill the patient twice).
- get_charge: ``GET /payments/{id}``; refund: ``POST /payments/{id}/refund`` ``{value?}``
  (partial when a value is given) → the payment, whose ``refunds`` list each refund with
  status ``PENDING | DONE | CANCELLED``.
- errors: ``{"errors": [{"code", "description"}]}`` with 400 (bad input) and 401 (bad key);
  429 (quota) and 5xx are transient.
- health: ``GET /finance/balance`` (cheap, read-only; the balance itself is not shown).
- webhooks: set up in the Asaas panel with the URL ``/webhooks/asaas/<account token>/`` and
  an authentication token, which Asaas sends in the ``asaas-access-token`` header.
  Body ``{"id": "evt_…", "event": "PAYMENT_RECEIVED", "dateCreated", "payment": {…}}``,
  delivered at least once: the event ``id`` is the dedupe key.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

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
)
from ..choices import ProviderKind
from ..http import response_json

logger = logging.getLogger(__name__)

NAME = "asaas"
BASE_URLS = {
    "production": "https://api.asaas.com/v3",
    "sandbox": "https://api-sandbox.asaas.com/v3",
}
SANDBOX_KEY_PREFIX = "$aact_hmlg_"
USER_AGENT = "Cuidar/1.0"
TOKEN_HEADER = "asaas-access-token"  # noqa: S105 - a header name, not a secret
CENT = Decimal("0.01")

#: Our charge methods → Asaas ``billingType`` (UNDEFINED: the patient picks on the invoice).
BILLING_TYPES = {
    "pix": "PIX",
    "boleto": "BOLETO",
    "credit_card": "CREDIT_CARD",
    "undefined": "UNDEFINED",
}
#: Asaas payment statuses → ours. A refund being processed or a chargeback under dispute
#: is still money received: only REFUNDED (or a DONE refund) says it left again, and Asaas
#: moves a payment back to RECEIVED/CONFIRMED when a chargeback is won.
STATUSES = {
    "PENDING": "pending",
    "AWAITING_RISK_ANALYSIS": "pending",
    "AUTHORIZED": "pending",
    "RECEIVED": "paid",
    "CONFIRMED": "paid",
    "RECEIVED_IN_CASH": "paid",
    "DUNNING_RECEIVED": "paid",
    "REFUND_REQUESTED": "paid",
    "REFUND_IN_PROGRESS": "paid",
    "CHARGEBACK_REQUESTED": "paid",
    "CHARGEBACK_DISPUTE": "paid",
    "AWAITING_CHARGEBACK_REVERSAL": "paid",
    "OVERDUE": "overdue",
    "DUNNING_REQUESTED": "overdue",
    "REFUNDED": "refunded",
    # Not a status Asaas documents (a removed payment says ``"deleted": true`` and keeps
    # its last status), read defensively in case a payload ever carries it.
    "DELETED": "cancelled",
}
#: Events that say more than the payment's status field (a deleted payment keeps its last
#: status; a refused card may still read PENDING).
EVENT_STATUSES = {
    "PAYMENT_DELETED": "cancelled",
    "PAYMENT_REFUNDED": "refunded",
    "PAYMENT_REPROVED_BY_RISK_ANALYSIS": "failed",
    "PAYMENT_CREDIT_CARD_CAPTURE_REFUSED": "failed",
}
#: Dates Asaas fills in when money arrives, the patient's own payment date first.
PAID_DATE_FIELDS = ("clientPaymentDate", "paymentDate", "confirmedDate")


@registry.register
class AsaasPayments(PaymentsProvider):
    kind = ProviderKind.PAYMENTS
    name = NAME
    label = _("Asaas (PIX, boleto, card)")
    credentials_schema = {
        "api_key": _("API key of the Asaas account ($aact_…), from Integrations in the panel."),
        "webhook_token": _(
            "Authentication token typed into the Asaas webhook settings (Asaas sends it in "
            "the asaas-access-token header)."
        ),
    }
    settings_schema = {
        "environment": _("sandbox or production; by default, taken from the API key."),
        "notify_customers": _(
            "Let Asaas also notify patients of their charges by e-mail/SMS (Asaas charges "
            "for it). Off by default."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _environment(self) -> str:
        environment = str(self.settings.get("environment") or "").strip().lower()
        if not environment:
            key = str(self.credentials.get("api_key") or "")
            return "sandbox" if key.startswith(SANDBOX_KEY_PREFIX) else "production"
        if environment not in BASE_URLS:
            raise PermanentProviderError(
                f"{NAME}: environment must be 'sandbox' or 'production', not {environment!r}",
                provider=NAME,
            )
        return environment

    def _headers(self) -> dict[str, str]:
        key = str(self.credentials.get("api_key") or "")
        return {"access_token": key, "User-Agent": USER_AGENT}

    def _call(self, method: str, path: str, *, operation: str, retry: bool = True, **kwargs) -> Any:
        if not self.credentials.get("api_key"):
            raise PermanentProviderError(
                f"{NAME}: account not configured (missing api_key)", provider=NAME
            )
        try:
            response = self.request(
                method,
                BASE_URLS[self._environment()] + path,
                operation=operation,
                headers=self._headers(),
                retry=retry,
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
        """Create (or reuse, see the module docstring) the payment; PIX charges come with
        their copy-and-paste code and QR image, boletos with the PDF link, every charge with
        the invoice page where the patient can pay."""
        billing_type = BILLING_TYPES.get(charge.method)
        if billing_type is None:
            raise PermanentProviderError(
                f"{NAME}.charge: unknown payment method {charge.method!r}", provider=NAME
            )
        value = _reais(charge.amount)
        payment = self._pending_payment(charge, billing_type)
        if payment is None:
            body: dict[str, Any] = {
                "customer": self._customer_id(charge.customer),
                "billingType": billing_type,
                "value": value,
                "dueDate": _due_date(charge).isoformat(),
            }
            if charge.description:
                body["description"] = charge.description[:500]
            if charge.external_reference:
                body["externalReference"] = charge.external_reference
            # No idempotency key at Asaas: one attempt, a timeout is retried by the caller
            # (and then finds this payment by its external reference).
            payment = self._call("POST", "/payments", operation="charge", json=body, retry=False)
        payment_id = _id_of(payment, "charge")
        pix_payload = pix_image = ""
        if billing_type == "PIX":
            pix_payload, pix_image = self._pix_qr_code(payment_id)
        status = _status_of(payment)
        return ChargeResult(
            gateway_payment_id=payment_id,
            status=status if status in ("paid", "failed") else "pending",
            pix_payload=pix_payload,
            pix_qr_base64=pix_image,
            invoice_url=str(payment.get("invoiceUrl") or ""),
            boleto_url=str(payment.get("bankSlipUrl") or ""),
            raw=payment,
        )

    def _pending_payment(self, charge: ChargeRequest, billing_type: str) -> dict | None:
        """A pending payment created earlier for the same charge (same external reference,
        value and billing type), if any."""
        if not charge.external_reference:
            return None
        found = self._call(
            "GET",
            "/payments",
            operation="find_payment",
            params={"externalReference": charge.external_reference},
        )
        wanted = _cents(charge.amount)
        for payment in _data_of(found):
            if (
                payment.get("id")
                and not payment.get("deleted")
                and payment.get("status") == "PENDING"
                and payment.get("billingType") == billing_type
                and _decimal(payment.get("value")) == wanted
            ):
                return payment
        return None

    def _customer_id(self, customer: Customer) -> str:
        """The Asaas customer of this patient: found by CPF/CNPJ (or our reference), else
        created."""
        tax_id = _digits(customer.cpf_cnpj)
        query = {}
        if tax_id:
            query = {"cpfCnpj": tax_id}
        elif customer.external_reference:
            query = {"externalReference": customer.external_reference}
        if query:
            found = self._call("GET", "/customers", operation="find_customer", params=query)
            for existing in _data_of(found):
                if existing.get("id") and not existing.get("deleted"):
                    return str(existing["id"])
        body: dict[str, Any] = {"name": customer.name}
        if tax_id:
            body["cpfCnpj"] = tax_id
        if customer.email:
            body["email"] = customer.email
        phone = _national_phone(customer.phone)
        if phone:
            body["mobilePhone"] = phone
        if customer.external_reference:
            body["externalReference"] = customer.external_reference
        if not _flag(self.settings.get("notify_customers")):
            # Cuidar sends its own reminders; Asaas would also charge for each notice.
            body["notificationDisabled"] = True
        created = self._call(
            "POST", "/customers", operation="create_customer", json=body, retry=False
        )
        return _id_of(created, "create_customer")

    def _pix_qr_code(self, payment_id: str) -> tuple[str, str]:
        """The PIX code and QR image of a payment. The payment exists by now: if this read
        fails the charge is still returned (its invoice page shows the QR code), rather than
        failing and letting a chain bill the patient elsewhere too."""
        try:
            qr = self._call(
                "GET", f"/payments/{quote(payment_id, safe='')}/pixQrCode", operation="pix_qr_code"
            )
        except ProviderError as exc:
            logger.warning("%s: PIX QR code of %s not read: %s", NAME, payment_id, exc)
            return "", ""
        return str(qr.get("payload") or ""), str(qr.get("encodedImage") or "")

    def get_charge(self, gateway_payment_id: str) -> PaymentUpdate:
        payment = self._call(
            "GET", f"/payments/{quote(gateway_payment_id, safe='')}", operation="get_charge"
        )
        return _update_of(payment, fallback_id=gateway_payment_id)

    def refund(self, gateway_payment_id: str, amount: Decimal | None = None) -> RefundResult:
        """Refund all (``amount=None``) or part of a received payment. PIX refunds may stay
        PENDING for a while: the result says ``pending`` then, and a later webhook or
        ``get_charge`` tells when it is done."""
        body = {} if amount is None else {"value": _reais(amount)}
        payment = self._call(
            "POST",
            f"/payments/{quote(gateway_payment_id, safe='')}/refund",
            operation="refund",
            json=body,
            retry=False,  # no idempotency key: never repeated inline
        )
        refunds = [r for r in payment.get("refunds") or [] if isinstance(r, dict)]
        latest = max(refunds, key=lambda r: str(r.get("dateCreated") or ""), default=None)
        refunded = amount
        if latest is not None and _decimal(latest.get("value")) is not None:
            refunded = _decimal(latest.get("value"))
        if refunded is None:
            refunded = _decimal(payment.get("value")) or Decimal("0")
        if latest is not None:
            state = str(latest.get("status") or "")
            if state == "CANCELLED":
                raise PermanentProviderError(
                    f"{NAME}.refund: Asaas cancelled the refund of {gateway_payment_id}",
                    provider=NAME,
                    detail=payment,
                )
            status = "refunded" if state == "DONE" else "pending"
        else:
            status = "refunded" if payment.get("status") == "REFUNDED" else "pending"
        return RefundResult(
            gateway_payment_id=str(payment.get("id") or gateway_payment_id),
            amount=refunded,
            status=status,
            raw=payment,
        )

    def health(self) -> HealthResult:
        """Reads the account balance (the figure itself is not shown): proves the key, the
        environment and the network."""
        missing = [] if self.credentials.get("api_key") else ["api_key"]
        try:
            environment = self._environment()
        except PermanentProviderError as exc:
            return HealthResult(
                ok=False, detail=gettext("Provider call failed: %(error)s") % {"error": exc}
            )

        # A 2xx JSON answer is all it takes: the key and the environment were accepted.
        accepted = gettext("Credentials accepted (%(environment)s).") % {"environment": environment}
        return self.health_probe(
            "" if missing else BASE_URLS[environment] + "/finance/balance",
            missing=missing,
            headers={} if missing else self._headers(),
            refusal=lambda exc: _refusal(exc, "health"),
            judge=lambda data: (True, accepted),
        )

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """The ``asaas-access-token`` header must be the token set on the Asaas webhook."""
        token = request.header(TOKEN_HEADER)
        if not token:
            raise WebhookUnauthorized(f"missing {TOKEN_HEADER}", status=401)
        expected = str(self.credentials.get("webhook_token") or "")
        if not expected:
            raise WebhookUnauthorized(
                "no webhook_token configured: webhooks are refused", status=403
            )
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise WebhookUnauthorized(f"wrong {TOKEN_HEADER}", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """A ``PAYMENT_*`` event is one ``PaymentUpdate`` (status from the event when it says
        more, else from the payment); other events (transfers, invoices …) carry none.
        Dedupe key: Asaas' event id (the body's hash when an old payload has none)."""
        data = _json_object(request)
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise WebhookMalformed("no 'event' in the body")
        items: list[PaymentUpdate] = []
        if event.startswith("PAYMENT_"):
            payment = data.get("payment")
            if not isinstance(payment, dict) or not payment.get("id"):
                raise WebhookMalformed(f"{event} without payment.id")
            items.append(_update_of(payment, event=event))
        return WebhookEvent(dedupe_key=str(data.get("id") or ""), items=items)


# --- Helpers ----------------------------------------------------------------------------------
def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    """A 4xx from Asaas, reworded with Asaas' own description(s)."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    errors = [e for e in detail.get("errors") or [] if isinstance(e, dict)]
    codes = ", ".join(str(e["code"]) for e in errors if e.get("code"))
    descriptions = "; ".join(str(e["description"]) for e in errors if e.get("description"))
    if exc.http_status == 401:
        reason = "invalid API key" + (f": {descriptions}" if descriptions else "")
    elif descriptions:
        reason = descriptions
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


def _update_of(payment: dict, *, event: str = "", fallback_id: str = "") -> PaymentUpdate:
    status = EVENT_STATUSES.get(event) or _status_of(payment)
    amount = _decimal(payment.get("value"))
    return PaymentUpdate(
        gateway_payment_id=str(payment.get("id") or fallback_id),
        status=status,
        amount=amount,
        paid_at=_paid_at(payment) if status in ("paid", "refunded") else None,
        external_reference=str(payment.get("externalReference") or ""),
        refunded_amount=_refunded(payment, status, amount),
    )


def _status_of(payment: dict) -> str:
    if payment.get("deleted") is True:
        return "cancelled"
    status = str(payment.get("status") or "")
    ours = STATUSES.get(status)
    if ours is None:
        logger.warning("%s: unknown payment status %r read as pending", NAME, status)
        return "pending"
    return ours


def _refunded(payment: dict, status: str, amount: Decimal | None) -> Decimal | None:
    """What has been given back: the DONE refunds, or all of it when the payment says
    REFUNDED without listing them."""
    refunds = [r for r in payment.get("refunds") or [] if isinstance(r, dict)]
    done = [_decimal(r.get("value")) for r in refunds if r.get("status") == "DONE"]
    total = sum((v for v in done if v is not None), Decimal("0"))
    if total:
        return total
    if status == "refunded":
        return amount
    return None


def _paid_at(payment: dict) -> datetime | None:
    """Asaas gives payment dates without a time: midnight of that day, clinic time."""
    for name in PAID_DATE_FIELDS:
        value = payment.get(name)
        if not isinstance(value, str) or not value:
            continue
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            continue
        return timezone.make_aware(datetime(day.year, day.month, day.day))
    return None


def _due_date(charge: ChargeRequest) -> date:
    """The charge's due date, or today: Asaas refuses a due date in the past (a charge sent
    again after its due date), and needs one."""
    today = timezone.localdate()
    return max(charge.due_date or today, today)


def _id_of(data: dict, operation: str) -> str:
    if not data.get("id"):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer without an id", provider=NAME, http_status=200
        )
    return str(data["id"])


def _data_of(listing: dict) -> list[dict]:
    """The items of a paginated list (``{"object": "list", "data": […]}``)."""
    items = listing.get("data")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _cents(amount: Decimal) -> Decimal:
    return Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)


def _reais(amount: Decimal) -> float:
    """Reais with two decimals, as the JSON number Asaas takes. The Decimal is rounded to
    centavos first; the float only carries it to ``json.dumps``, which writes the same
    digits back (150.9 for 150.90): no arithmetic is ever done on it."""
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
    """An amount from Asaas' JSON (a number) as Decimal, through its text, never through
    float arithmetic."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def _digits(value: str) -> str:
    return "".join(c for c in str(value or "") if c.isdigit())


def _national_phone(phone: str) -> str:
    """Asaas wants Brazilian numbers without the country code (area code + number)."""
    digits = _digits(phone)
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    return digits if len(digits) in (10, 11) else ""


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "sim")
    return bool(value)


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data
