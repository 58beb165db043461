"""What billing does when other things happen (domain events and gateway notifications)."""

from integrations.base import InvoiceUpdate, PaymentUpdate
from integrations.events import subscriber
from integrations.inbound import inbound_handler

from . import services
from .choices import SessionUseReason
from .conf import billing_option
from .models import Payment


def _appointment(event):
    from scheduling.models import Appointment

    return (
        Appointment.objects.select_related("clinic")
        .filter(pk=event.payload["appointment_id"], clinic_id=event.clinic_id)
        .first()
    )


@subscriber("appointment.completed")
def debit_package_session(event, delivery):
    """A completed appointment of a covered service spends one package session (once)."""
    appointment = _appointment(event)
    if appointment is not None:
        services.package_session_debit(appointment=appointment, reason=SessionUseReason.COMPLETED)


@subscriber("appointment.no_show", "appointment.cancelled")
def debit_package_session_by_policy(event, delivery):
    """A no-show, or a late cancellation, spends a session when the clinic says so."""
    appointment = _appointment(event)
    if appointment is None:
        return
    if event.event_type == "appointment.no_show":
        option, reason = "package_consumes_on_no_show", SessionUseReason.NO_SHOW
    elif event.payload.get("late"):
        option, reason = "package_consumes_on_late_cancel", SessionUseReason.LATE_CANCEL
    else:
        return
    if billing_option(appointment.clinic, option):
        services.package_session_debit(appointment=appointment, reason=reason)


@subscriber("payment.received")
def issue_service_invoice(event, delivery):
    """Issue the NFS-e of a received payment when the clinic enabled it (once)."""
    payment = (
        Payment.objects.select_related("clinic", "patient")
        .filter(pk=event.payload["payment_id"], clinic_id=event.clinic_id)
        .first()
    )
    if payment is not None and billing_option(payment.clinic, "nfse_enabled"):
        services.invoice_issue(payment=payment)


@inbound_handler(PaymentUpdate)
def settle_payment(item: PaymentUpdate, *, webhook, index: int) -> None:
    """A gateway's notification. One that only names the payment (Mercado Pago) arrives
    here already read from the gateway: ``integrations.inbound`` looks it up before the
    processing transaction, so no lock is held while the gateway answers."""
    if item.fetch_required:
        raise ValueError(f"payment {item.gateway_payment_id} was not looked up at the gateway")
    services.payment_apply_update(clinic_id=webhook.clinic_id, update=item)


@inbound_handler(InvoiceUpdate)
def follow_invoice(item: InvoiceUpdate, *, webhook, index: int) -> None:
    """A fiscal provider's notification about an NFS-e."""
    services.invoice_apply_update(
        clinic_id=webhook.clinic_id, update=item, provider=webhook.provider
    )
