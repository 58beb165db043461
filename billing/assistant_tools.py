"""Billing's tools for the WhatsApp assistant (``clinic.messaging.assistant.tools``): the
patient's package balance and the open charge to pay — the PIX copy-and-paste code and
the payment link the charge already has (or the clinic's own PIX key's code for it),
never an amount the assistant made up. Registered by importing this module
(``apps.BillingConfig.ready``)."""

from __future__ import annotations

from clinic.messaging.assistant.tools import ChargeInfo, PackageInfo, assistant_tool

from .selectors import patient_packages_active, patient_payments_open, payment_static_pix_payload


@assistant_tool("package_balance")
def package_balance(*, clinic, patient) -> list[PackageInfo]:
    if patient.clinic_id != clinic.pk:
        return []
    return [
        PackageInfo(
            name=package.package.name,
            sessions_left=package.sessions_remaining,
            expires_on=package.expires_at.date() if package.expires_at else None,
        )
        for package in patient_packages_active(patient=patient)
    ]


@assistant_tool("open_charge")
def open_charge(*, clinic, patient) -> ChargeInfo | None:
    """The earliest open charge the patient can pay now: one with a PIX code or a payment
    page (the gateway's), or the clinic's own PIX key's code for it."""
    if patient.clinic_id != clinic.pk:
        return None
    for payment in patient_payments_open(patient=patient):
        code = payment.pix_payload or payment_static_pix_payload(payment=payment)
        link = payment.invoice_url or payment.boleto_url
        if code or link:
            return ChargeInfo(
                id=payment.pk,
                description=payment.description,
                amount=payment.amount,
                due_date=payment.due_date,
                pix_code=code,
                link=link,
            )
    return None
