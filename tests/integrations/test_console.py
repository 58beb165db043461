"""Console (sandbox) providers: every kind has one; they record and answer like real ones."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import translation

from integrations import registry
from integrations.base import (
    ChargeRequest,
    Customer,
    InboundMessage,
    InvoiceRequest,
    MessageRequest,
    MessageStatusUpdate,
    PaymentUpdate,
    PermanentProviderError,
    WebhookMalformed,
    WebhookRequest,
)
from integrations.chains import chain_for
from integrations.choices import ProviderKind
from integrations.models import ConsoleRecord, ProviderAccount
from integrations.pix import crc16

pytestmark = pytest.mark.django_db

PATIENT = Customer(name="Maria José Araújo", cpf_cnpj="52998224725", email="maria@example.com")


def console(clinic, kind):
    accounts = chain_for(clinic, kind)
    if not accounts:  # the language model is off until a clinic adds an account
        accounts = [ProviderAccount.objects.create(clinic=clinic, kind=kind, provider="console")]
    (account,) = accounts
    return registry.get(kind, "console")(account)


def webhook(body) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        url="https://cuidar.example/webhooks/console/tok/",
        subpath="",
        headers={"content-type": "application/json"},
        query={},
        body=raw,
        content_type="application/json",
    )


@pytest.mark.parametrize("kind", ProviderKind.values)
def test_every_kind_has_a_console_provider_that_says_so(kind, clinic_a):
    provider_class = registry.get(kind, "console")

    assert provider_class.is_console
    with translation.override("en"):
        label = str(provider_class.label).lower()
    assert "console" in label
    assert "sandbox" in label
    assert console(clinic_a, kind).health().ok


@pytest.mark.parametrize("kind", ["whatsapp", "sms", "email"])
def test_a_console_message_is_recorded_and_gets_a_message_id(kind, clinic_a):
    result = console(clinic_a, kind).send(MessageRequest(to="+5511999990000", text="Sua consulta"))

    assert result.provider_message_id.startswith("console-")
    assert result.status == "sent"
    record = ConsoleRecord.objects.get()
    assert (record.clinic_id, record.kind, record.provider, record.operation) == (
        clinic_a.pk,
        kind,
        "console",
        "send",
    )
    assert record.recipient == "+5511999990000"
    assert record.payload["text"] == "Sua consulta"
    assert record.response["provider_message_id"] == result.provider_message_id


def test_a_repeated_idempotency_key_answers_the_first_message_id(clinic_a, clinic_b):
    message = MessageRequest(to="+5511999990000", text="Oi", idempotency_key="reminder-1")

    first = console(clinic_a, "whatsapp").send(message)
    again = console(clinic_a, "whatsapp").send(message)
    other_clinic = console(clinic_b, "whatsapp").send(message)

    assert again.provider_message_id == first.provider_message_id
    assert other_clinic.provider_message_id != first.provider_message_id
    assert ConsoleRecord.objects.count() == 2


def test_a_pix_charge_is_pending_with_a_valid_pix_code(clinic_a):
    result = console(clinic_a, "payments").charge(
        ChargeRequest(amount=Decimal("150.00"), method="pix", customer=PATIENT)
    )

    assert result.status == "pending"
    assert result.gateway_payment_id.startswith("console-pay-")
    assert result.pix_payload.startswith("000201")
    assert "5406150.00" in result.pix_payload  # field 54: the amount
    body, crc = result.pix_payload[:-4], result.pix_payload[-4:]
    assert crc16(body) == crc
    assert result.invoice_url.startswith("https://sandbox.cuidar.invalid/")
    assert result.boleto_url == ""


def test_crc16_is_the_ccitt_false_checksum_pix_uses():
    assert crc16("123456789") == "29B1"  # the standard check value


def test_a_boleto_charge_has_a_boleto_link_and_can_be_read_and_refunded(clinic_a):
    provider = console(clinic_a, "payments")
    charge = provider.charge(
        ChargeRequest(
            amount=Decimal("80.50"),
            method="boleto",
            customer=PATIENT,
            due_date=date(2026, 6, 1),
            external_reference="invoice-9",
        )
    )

    assert charge.boleto_url.endswith("/boleto.pdf")
    assert charge.pix_payload == ""
    update = provider.get_charge(charge.gateway_payment_id)
    assert (update.status, update.amount, update.external_reference) == (
        "pending",
        Decimal("80.50"),
        "invoice-9",
    )
    refund = provider.refund(charge.gateway_payment_id)
    assert (refund.status, refund.amount) == ("refunded", Decimal("80.50"))


def test_an_unknown_charge_is_a_permanent_error(clinic_a):
    with pytest.raises(PermanentProviderError):
        console(clinic_a, "payments").get_charge("console-pay-nope")


def test_invoices_are_authorised_with_sequential_numbers_once_per_reference(clinic_a):
    provider = console(clinic_a, "fiscal")

    def invoice(reference):
        return InvoiceRequest(
            reference=reference, amount=Decimal("200"), description="Consulta", customer=PATIENT
        )

    first = provider.issue(invoice("nfse-1"))
    second = provider.issue(invoice("nfse-2"))
    again = provider.issue(invoice("nfse-1"))

    assert first.status == "authorized"
    assert int(second.number) == int(first.number) + 1
    assert again == first
    assert first.verification_code
    assert first.pdf_url.endswith("nfse-1.pdf")
    assert provider.cancel("nfse-1", "Emitida em duplicidade").status == "cancelled"
    assert provider.get_invoice("nfse-1").status == "cancelled"
    assert provider.get_invoice("nfse-2").status == "authorized"


def test_a_calendar_event_keeps_its_id_when_updated(clinic_a):
    provider = console(clinic_a, "calendar")
    start = datetime(2026, 6, 1, 13, tzinfo=UTC)
    end = datetime(2026, 6, 1, 14, tzinfo=UTC)

    created = provider.upsert_event(external_id="appt-1", title="Consulta", start=start, end=end)
    updated = provider.upsert_event(external_id="appt-1", title="Retorno", start=start, end=end)
    other = provider.upsert_event(external_id="appt-2", title="Consulta", start=start, end=end)
    provider.delete_event(external_id="appt-1")

    assert created == updated != other
    assert created.startswith("console-evt-")
    assert ConsoleRecord.objects.filter(operation="delete_event").count() == 1


def test_storage_gives_back_what_was_put(clinic_a, clinic_b):
    provider = console(clinic_a, "storage")

    key = provider.put(
        key="exams/1.pdf", content=b"%PDF-1.7 \x00\xff", content_type="application/pdf"
    )

    assert key == "exams/1.pdf"
    assert provider.get(key=key) == b"%PDF-1.7 \x00\xff"
    assert provider.url(key=key).startswith("https://sandbox.cuidar.invalid/storage/exams/1.pdf")
    with pytest.raises(PermanentProviderError):
        console(clinic_b, "storage").get(key=key)  # another clinic's file


def test_an_inbound_message_webhook_is_parsed(clinic_a):
    provider = console(clinic_a, "whatsapp")
    request = webhook(
        {"id": "in-1", "from": "+5511999990000", "to": "+5511888880000", "text": "Sim"}
    )

    provider.verify_webhook(request)
    event = provider.parse_webhook(request)

    assert event.dedupe_key == "in-1"
    (item,) = event.items
    assert isinstance(item, InboundMessage)
    assert (item.provider_message_id, item.from_address, item.to_address, item.text) == (
        "in-1",
        "+5511999990000",
        "+5511888880000",
        "Sim",
    )


def test_a_status_webhook_is_parsed(clinic_a):
    event = console(clinic_a, "sms").parse_webhook(
        webhook({"id": "st-1", "status": "delivered", "message_id": "console-abc"})
    )

    assert event.dedupe_key == "st-1"
    assert event.items == [
        MessageStatusUpdate(
            provider_message_id="console-abc", status="delivered", at=event.items[0].at
        )
    ]


def test_a_payment_webhook_is_parsed(clinic_a):
    event = console(clinic_a, "payments").parse_webhook(
        webhook({"id": "ev-1", "payment_id": "console-pay-1", "status": "paid", "amount": "150.00"})
    )

    (item,) = event.items
    assert isinstance(item, PaymentUpdate)
    assert (item.gateway_payment_id, item.status, item.amount) == (
        "console-pay-1",
        "paid",
        Decimal("150.00"),
    )
    assert item.paid_at is not None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        [{"id": "1", "status": "sent"}],
        {"from": "+55", "to": "+55", "text": "no id"},
        {"id": "1"},
        {"id": "1", "status": "exploded"},
        {"id": "", "status": "sent"},
    ],
)
def test_a_webhook_it_cannot_understand_is_malformed(body, clinic_a):
    with pytest.raises(WebhookMalformed):
        console(clinic_a, "whatsapp").parse_webhook(webhook(body))
