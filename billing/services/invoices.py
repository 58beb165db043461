"""NFS-e: issuing a payment's invoice through the fiscal chain, retrying, cancelling,
applying the provider's updates and polling the pending ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.base import (
    Customer,
    InvoiceRequest,
    InvoiceUpdate,
    ProviderError,
)
from integrations.events import publish

from ..choices import (
    InvoiceStatus,
)
from ..conf import billing_option
from ..exceptions import (
    InvoiceError,
)
from ..models import (
    Invoice,
    Payment,
)


# --- NFS-e ----------------------------------------------------------------------------------
def _invoice_request(invoice: Invoice) -> InvoiceRequest:
    payment = invoice.payment
    patient = payment.patient
    clinic = payment.clinic
    return InvoiceRequest(
        reference=invoice.reference,
        amount=invoice.amount,
        description=invoice.description,
        customer=Customer(
            name=patient.full_name,
            cpf_cnpj=patient.cpf,
            email=patient.email,
            phone=patient.phone,
            external_reference=f"patient-{patient.pk}",
        ),
        service_code=billing_option(clinic, "nfse_service_code"),
        municipal_tax_code=billing_option(clinic, "nfse_municipal_tax_code"),
        iss_rate=Decimal(str(rate)) if (rate := billing_option(clinic, "nfse_iss_rate")) else None,
        issued_on=timezone.localdate(),
        extra={
            "address": {
                "street": patient.street,
                "number": patient.number,
                "complement": patient.complement,
                "district": patient.district,
                "city": patient.city,
                "state": patient.state,
                "postal_code": patient.postal_code,
            }
        },
    )


def _apply_invoice(invoice: Invoice, update: InvoiceUpdate, *, provider: str = "") -> Invoice:
    """Store what the fiscal provider says; publish issued/failed/cancelled on change."""
    before = invoice.status
    invoice.status = update.status if update.status in InvoiceStatus.values else before
    invoice.provider = provider or invoice.provider
    invoice.number = update.number or invoice.number
    invoice.verification_code = update.verification_code or invoice.verification_code
    invoice.pdf_url = update.pdf_url or invoice.pdf_url
    invoice.xml_url = update.xml_url or invoice.xml_url
    # A refused cancellation comes back "authorized" with its reasons: keep them too.
    invoice.errors = list(update.errors) if update.errors else []
    if invoice.status == InvoiceStatus.AUTHORIZED and invoice.issued_at is None:
        invoice.issued_at = timezone.now()
    if invoice.status == InvoiceStatus.CANCELLED and invoice.cancelled_at is None:
        invoice.cancelled_at = timezone.now()
    invoice.save()
    if invoice.status != before:
        event = {
            InvoiceStatus.AUTHORIZED: "invoice.issued",
            InvoiceStatus.ERROR: "invoice.failed",
            InvoiceStatus.CANCELLED: "invoice.cancelled",
        }.get(invoice.status)
        if event:
            publish(
                event,
                clinic=invoice.clinic_id,
                payload={"invoice_id": invoice.pk, "payment_id": invoice.payment_id},
            )
    return invoice


def invoice_issue(*, payment: Payment) -> Invoice | None:
    """Issue the NFS-e of a received payment, once: the invoice row is unique per payment,
    so a redelivered ``payment.received`` finds it and issues nothing more."""
    clinic = payment.clinic
    with transaction.atomic():
        invoice, created = Invoice.objects.get_or_create(
            payment=payment,
            defaults={
                "clinic_id": payment.clinic_id,
                "reference": f"cuidar-{payment.reference[:24]}",
                "amount": payment.amount,
                "description": payment.description or billing_option(clinic, "nfse_description"),
            },
        )
    if not created:
        return invoice
    return _invoice_send(invoice)


def _fiscal_adapter(invoice: Invoice):
    """The fiscal provider of an invoice: the one that issued it, or the first of the
    clinic's chain for a new one. Issuing never falls back to the next provider: a provider
    that timed out may have accepted the invoice, and a second one would issue it twice."""
    from integrations.chains import chain_for
    from integrations.inbound import provider_for

    accounts = chain_for(invoice.clinic_id, "fiscal")
    if invoice.provider:
        account = invoice.provider_account or next(
            (a for a in accounts if a.provider == invoice.provider), None
        )
    else:
        account = accounts[0] if accounts else None
    if account is None:
        raise InvoiceError(_("No fiscal provider is configured for this clinic."))
    return account, provider_for(account)


def _invoice_send(invoice: Invoice) -> Invoice:
    account, adapter = _fiscal_adapter(invoice)
    invoice.attempts += 1
    invoice.provider = account.provider
    invoice.provider_account = account if account.pk else None
    try:
        update = adapter.issue(_invoice_request(invoice))
    except ProviderError as exc:
        invoice.status = InvoiceStatus.ERROR
        invoice.errors = [
            str(exc)
            if exc.permanent
            else _("%(provider)s is unavailable; issue it again later (same reference).")
            % {"provider": account.provider}
        ]
        invoice.save()
        publish(
            "invoice.failed",
            clinic=invoice.clinic_id,
            payload={"invoice_id": invoice.pk, "payment_id": invoice.payment_id},
        )
        return invoice
    with transaction.atomic():
        return _apply_invoice(invoice, update)


@transaction.atomic
def invoice_retry(*, invoice: Invoice) -> Invoice:
    """Issue again after the clinic corrected what the provider refused (same reference:
    the provider cannot end up with two invoices)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.ERROR:
        raise InvoiceError(_("Only a rejected invoice can be issued again."))
    invoice.status = InvoiceStatus.PROCESSING
    invoice.errors = []
    invoice.description = invoice.payment.description or invoice.description
    invoice.save()
    return _invoice_send(invoice)


def invoice_cancel(*, invoice: Invoice, justification: str) -> Invoice:
    """Cancel an issued NFS-e with the reason the city hall requires (15 to 255 chars)."""
    justification = (justification or "").strip()
    if not 15 <= len(justification) <= 255:
        raise InvoiceError(
            _("Give a reason of 15 to 255 characters."),
            fields={"justification": [_("Give a reason of 15 to 255 characters.")]},
        )
    if invoice.status != InvoiceStatus.AUTHORIZED:
        raise InvoiceError(_("Only an issued invoice can be cancelled."))
    _account, adapter = _fiscal_adapter(invoice)
    try:
        update = adapter.cancel(invoice.reference, justification)
    except ProviderError as exc:
        raise InvoiceError(_("The provider did not cancel: %(error)s") % {"error": exc}) from exc
    with transaction.atomic():
        invoice.cancel_justification = justification
        return _apply_invoice(invoice, update)


@transaction.atomic
def invoice_apply_update(
    *, clinic_id: int, update: InvoiceUpdate, provider: str = ""
) -> Invoice | None:
    invoice = (
        Invoice.objects.for_clinic(clinic_id)
        .select_for_update()
        .filter(reference=update.reference)
        .first()
    )
    if invoice is None:
        return None
    if invoice.status == InvoiceStatus.CANCELLED:
        return invoice  # nothing comes back from cancelled
    if provider and invoice.provider and provider != invoice.provider:
        return invoice  # only the provider that issued it speaks for it
    return _apply_invoice(invoice, update, provider=provider)


def invoices_poll(*, now: datetime | None = None, older_than=timedelta(minutes=2)) -> int:
    """Every 10 minutes: ask the provider about invoices still processing (providers
    without webhooks, or a lost one)."""
    now = now or timezone.now()
    polled = 0
    for invoice in Invoice.objects.filter(
        status=InvoiceStatus.PROCESSING, updated_at__lte=now - older_than
    ).select_related("provider_account")[:200]:
        try:
            _account, adapter = _fiscal_adapter(invoice)
            update = adapter.get_invoice(invoice.reference)
        except (ProviderError, InvoiceError):
            continue
        invoice_apply_update(clinic_id=invoice.clinic_id, update=update)
        polled += 1
    return polled
