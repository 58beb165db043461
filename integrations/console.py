"""Console (sandbox) providers: one per kind, each named ``console``.

They send nothing. Each operation writes a ``ConsoleRecord`` ("what would have been sent",
listed in the admin) and answers like a real provider would, so the whole system runs in
development and in the demo with no credentials. Messaging consoles also take a plain JSON
webhook, so a demo can play the patient's reply or a delivery receipt:

    POST /webhooks/console/<account webhook token>/
    {"id": "m1", "from": "+5511999990000", "to": "+5511888880000", "text": "Confirmo"}
    {"id": "s1", "status": "delivered", "message_id": "console-…"}
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import pix, registry
from .base import (
    CalendarProvider,
    ChargeRequest,
    ChargeResult,
    FiscalProvider,
    HealthResult,
    InboundMessage,
    InvoiceRequest,
    InvoiceUpdate,
    MessageRequest,
    MessageResult,
    MessageStatusUpdate,
    MessagingProvider,
    PaymentsProvider,
    PaymentUpdate,
    PermanentProviderError,
    RefundResult,
    StorageProvider,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
)
from .choices import ProviderKind
from .models import ConsoleRecord

logger = logging.getLogger(__name__)

NAME = "console"
#: Reserved top-level domain (RFC 2606): links look real and can never reach anyone.
SANDBOX_URL = "https://sandbox.cuidar.invalid"
MESSAGE_STATUSES = {"queued", "sent", "delivered", "read", "failed"}
PAYMENT_STATUSES = {"pending", "paid", "failed", "cancelled", "refunded", "overdue"}


def _jsonable(value: Any) -> Any:
    """Dataclass fields as JSON (ConsoleRecord.payload is a plain JSONField)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: _jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def _new_id(prefix: str = "console") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class ConsoleMixin:
    """Shared by every console provider: records instead of calling anyone."""

    name = NAME
    is_console = True

    def _records(self):
        return ConsoleRecord.objects.filter(
            clinic_id=self.account.clinic_id, kind=self.kind, provider=self.name
        )

    def _record(self, operation: str, *, recipient: str = "", payload=None, response=None):
        return ConsoleRecord.objects.create(
            clinic_id=self.account.clinic_id,
            kind=self.kind,
            provider=self.name,
            operation=operation,
            recipient=str(recipient)[:255],
            payload=_jsonable(payload or {}),
            response=_jsonable(response or {}),
        )

    def _replay(self, operation: str, idempotency_key: str):
        """The earlier answer to the same idempotency key, as a real provider gives it."""
        if not idempotency_key:
            return None
        record = (
            self._records()
            .filter(operation=operation, payload__idempotency_key=idempotency_key)
            .order_by("pk")
            .first()
        )
        return record.response if record else None

    def health(self) -> HealthResult:
        return HealthResult(ok=True, detail=str(_("Console provider: nothing is sent.")))


# --- Messaging ------------------------------------------------------------------------------
def _log_send(message: MessageRequest) -> None:
    """With ``CUIDAR_CONSOLE_SEND_LOG`` (a file path, in the environment) every send call
    appends its idempotency key there, before any replay and outside the database: what a
    provider without idempotency would have sent (the crash tests count duplicates so)."""
    path = os.environ.get("CUIDAR_CONSOLE_SEND_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{message.idempotency_key}\n")


class ConsoleMessaging(ConsoleMixin, MessagingProvider):
    def send(self, message: MessageRequest) -> MessageResult:
        """Record the message and answer with a provider message id."""
        _log_send(message)
        earlier = self._replay("send", message.idempotency_key)
        if earlier is not None:
            return MessageResult(
                provider_message_id=earlier["provider_message_id"], status="sent", raw=earlier
            )
        response = {"provider_message_id": _new_id(), "status": "sent"}
        self._record("send", recipient=message.to, payload=message, response=response)
        _log_message(self.kind, message)
        return MessageResult(
            provider_message_id=response["provider_message_id"], status="sent", raw=response
        )

    # The webhook URL's token already identifies the account: nothing more to verify.
    def verify_webhook(self, request: WebhookRequest) -> None:
        return None

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """``{"id","from","to","text"}`` is an inbound message; ``{"id","status"}`` (with an
        optional ``message_id``, else ``id``) a delivery status."""
        data = _json_object(request)
        event_id = _text(data, "id")
        if all(isinstance(data.get(k), str) for k in ("from", "to", "text")):
            item = InboundMessage(
                provider_message_id=event_id,
                from_address=data["from"],
                to_address=data["to"],
                text=data["text"],
                received_at=timezone.now(),
                sender_name=str(data.get("name", "")),
                raw=data,
            )
        elif isinstance(data.get("status"), str):
            if data["status"] not in MESSAGE_STATUSES:
                raise WebhookMalformed(f"unknown message status {data['status']!r}")
            item = MessageStatusUpdate(
                provider_message_id=str(data.get("message_id") or event_id),
                status=data["status"],
                at=timezone.now(),
                error=str(data.get("error", "")),
            )
        else:
            raise WebhookMalformed('expected {"id","from","to","text"} or {"id","status"}')
        return WebhookEvent(dedupe_key=event_id, items=[item])


def _log_message(kind: str, message: MessageRequest) -> None:
    """What would have been sent, in the log of `make run` too: the portal's sign-in code
    is read there without opening the admin. The text only with DEBUG on (a development
    machine); a production log gets the line without the patient's message."""
    if settings.DEBUG:
        text = " ⏎ ".join(
            line for line in (message.subject, *message.text.splitlines()) if line.strip()
        )
    else:
        text = "(text not logged with DEBUG off)"
    logger.info("console %s → %s: %s", kind, message.to, text)


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise WebhookMalformed(f"missing {key!r}")
    return str(value)


@registry.register
class ConsoleWhatsApp(ConsoleMessaging):
    kind = ProviderKind.WHATSAPP
    label = _("Console (sandbox): records WhatsApp messages, sends nothing")


@registry.register
class ConsoleSms(ConsoleMessaging):
    kind = ProviderKind.SMS
    label = _("Console (sandbox): records SMS, sends nothing")


@registry.register
class ConsoleEmail(ConsoleMessaging):
    kind = ProviderKind.EMAIL
    label = _("Console (sandbox): records e-mails, sends nothing")


# --- Payments -------------------------------------------------------------------------------
def pix_payload(*, amount: Decimal, txid: str, key: str = "pix@sandbox.cuidar.invalid") -> str:
    """A well-formed static PIX "copia e cola" code (EMV BR Code) that pays no one."""
    return pix.brcode_build(
        key=key, name="CUIDAR SANDBOX", city="SAO PAULO", amount=amount, txid=txid[:25]
    )


@registry.register
class ConsolePayments(ConsoleMixin, PaymentsProvider):
    kind = ProviderKind.PAYMENTS
    label = _("Console (sandbox): records charges, collects nothing")

    def charge(self, charge: ChargeRequest) -> ChargeResult:
        """A pending charge: a PIX code for PIX, a boleto link for boleto, an invoice link
        for every method."""
        earlier = self._replay("charge", charge.idempotency_key)
        if earlier is None:
            payment_id = _new_id("console-pay")
            due = charge.due_date or (timezone.localdate() + timedelta(days=3))
            earlier = {
                "gateway_payment_id": payment_id,
                "status": "pending",
                "amount": str(charge.amount),
                "due_date": due.isoformat(),
                "external_reference": charge.external_reference,
                "invoice_url": f"{SANDBOX_URL}/charges/{payment_id}",
                "pix_payload": "",
                "boleto_url": "",
            }
            if charge.method == "pix":
                try:
                    earlier["pix_payload"] = pix_payload(
                        amount=charge.amount, txid=payment_id[-25:]
                    )
                except ValueError as exc:  # a zero or negative amount: a real PSP refuses it
                    raise PermanentProviderError(str(exc), provider=NAME, http_status=400) from None
            if charge.method == "boleto":
                earlier["boleto_url"] = f"{SANDBOX_URL}/charges/{payment_id}/boleto.pdf"
            self._record(
                "charge",
                recipient=charge.customer.email or charge.customer.phone or charge.customer.name,
                payload=charge,
                response=earlier,
            )
        return ChargeResult(
            gateway_payment_id=earlier["gateway_payment_id"],
            status=earlier["status"],
            pix_payload=earlier["pix_payload"],
            invoice_url=earlier["invoice_url"],
            boleto_url=earlier["boleto_url"],
            raw=earlier,
        )

    def _charge_record(self, gateway_payment_id: str) -> ConsoleRecord:
        record = (
            self._records()
            .filter(operation="charge", response__gateway_payment_id=gateway_payment_id)
            .first()
        )
        if record is None:
            raise PermanentProviderError(
                f"no console charge {gateway_payment_id}", provider=NAME, http_status=404
            )
        return record

    def get_charge(self, gateway_payment_id: str) -> PaymentUpdate:
        """The charge as recorded, still pending (console charges are never paid)."""
        record = self._charge_record(gateway_payment_id)
        return PaymentUpdate(
            gateway_payment_id=gateway_payment_id,
            status=record.response.get("status", "pending"),
            amount=Decimal(record.response["amount"]),
            external_reference=record.response.get("external_reference", ""),
        )

    def refund(self, gateway_payment_id: str, amount: Decimal | None = None) -> RefundResult:
        record = self._charge_record(gateway_payment_id)
        amount = amount if amount is not None else Decimal(record.response["amount"])
        response = {"gateway_payment_id": gateway_payment_id, "amount": str(amount)}
        self._record("refund", recipient=record.recipient, payload=response, response=response)
        return RefundResult(
            gateway_payment_id=gateway_payment_id, amount=amount, status="refunded", raw=response
        )

    # A demo plays "the patient paid" with {"id": "evt1", "payment_id": "…", "status": "paid"}.
    def verify_webhook(self, request: WebhookRequest) -> None:
        return None

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        data = _json_object(request)
        event_id = _text(data, "id")
        status = data.get("status")
        if status not in PAYMENT_STATUSES:
            raise WebhookMalformed(f"unknown payment status {status!r}")
        amount = data.get("amount")
        item = PaymentUpdate(
            gateway_payment_id=str(data.get("payment_id") or event_id),
            status=status,
            amount=Decimal(str(amount)) if amount is not None else None,
            paid_at=timezone.now() if status == "paid" else None,
            external_reference=str(data.get("external_reference", "")),
        )
        return WebhookEvent(dedupe_key=event_id, items=[item])


# --- Fiscal ---------------------------------------------------------------------------------
@registry.register
class ConsoleFiscal(ConsoleMixin, FiscalProvider):
    kind = ProviderKind.FISCAL
    label = _("Console (sandbox): records service invoices, issues nothing")

    def _invoice(self, reference: str) -> ConsoleRecord | None:
        return self._records().filter(operation="issue", recipient=reference).first()

    def issue(self, invoice: InvoiceRequest) -> InvoiceUpdate:
        """Authorised at once, with the clinic's next console number. Issuing the same
        reference again answers the same invoice (real NFS-e APIs key on it too)."""
        record = self._invoice(invoice.reference)
        if record is None:
            number = self._records().filter(operation="issue").count() + 1
            response = {
                "reference": invoice.reference,
                "status": "authorized",
                "number": f"{timezone.localdate().year}{number:06d}",
                "verification_code": secrets.token_hex(4).upper(),
                "pdf_url": f"{SANDBOX_URL}/nfse/{invoice.reference}.pdf",
                "xml_url": f"{SANDBOX_URL}/nfse/{invoice.reference}.xml",
            }
            record = self._record(
                "issue", recipient=invoice.reference, payload=invoice, response=response
            )
        return _invoice_update(record.response)

    def get_invoice(self, reference: str) -> InvoiceUpdate:
        record = self._invoice(reference)
        if record is None:
            raise PermanentProviderError(
                f"no console invoice {reference}", provider=NAME, http_status=404
            )
        data = dict(record.response)
        if self._records().filter(operation="cancel", recipient=reference).exists():
            data["status"] = "cancelled"
        return _invoice_update(data)

    def cancel(self, reference: str, justification: str) -> InvoiceUpdate:
        record = self._invoice(reference)
        if record is None:
            raise PermanentProviderError(
                f"no console invoice {reference}", provider=NAME, http_status=404
            )
        response = {**record.response, "status": "cancelled"}
        self._record(
            "cancel",
            recipient=reference,
            payload={"justification": justification},
            response=response,
        )
        return _invoice_update(response)


def _invoice_update(data: dict) -> InvoiceUpdate:
    return InvoiceUpdate(
        reference=data["reference"],
        status=data["status"],
        number=data.get("number", ""),
        verification_code=data.get("verification_code", ""),
        pdf_url=data.get("pdf_url", ""),
        xml_url=data.get("xml_url", ""),
    )


# --- Calendar -------------------------------------------------------------------------------
@registry.register
class ConsoleCalendar(ConsoleMixin, CalendarProvider):
    kind = ProviderKind.CALENDAR
    label = _("Console (sandbox): records calendar events, syncs nothing")

    def upsert_event(
        self, *, external_id: str, title: str, start: datetime, end: datetime, description=""
    ) -> str:
        """The event id, stable per ``external_id`` (an update keeps it)."""
        earlier = (
            self._records()
            .filter(operation="upsert_event", recipient=external_id)
            .order_by("pk")
            .first()
        )
        event_id = earlier.response["event_id"] if earlier else _new_id("console-evt")
        self._record(
            "upsert_event",
            recipient=external_id,
            payload={"title": title, "start": start, "end": end, "description": description},
            response={"event_id": event_id},
        )
        return event_id

    def delete_event(self, *, external_id: str) -> None:
        self._record("delete_event", recipient=external_id)


# --- Storage --------------------------------------------------------------------------------
@registry.register
class ConsoleStorage(ConsoleMixin, StorageProvider):
    """Files kept in the console log itself (base64): demo-sized files only."""

    kind = ProviderKind.STORAGE
    label = _("Console (sandbox): keeps files in the database, for demos")

    def put(self, *, key: str, content: bytes, content_type: str) -> str:
        self._record(
            "put",
            recipient=key,
            payload={
                "content_type": content_type,
                "size": len(content),
                "content_base64": base64.b64encode(content).decode("ascii"),
            },
            response={"key": key},
        )
        return key

    def get(self, *, key: str) -> bytes:
        record = self._records().filter(operation="put", recipient=key).order_by("-pk").first()
        if record is None:
            raise PermanentProviderError(f"no console file {key}", provider=NAME, http_status=404)
        return base64.b64decode(record.payload["content_base64"])

    def url(self, *, key: str, expires_in: int = 300) -> str:
        expires = int((timezone.now() + timedelta(seconds=expires_in)).timestamp())
        return f"{SANDBOX_URL}/storage/{key}?expires={expires}"
