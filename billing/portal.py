"""The patient's money in the portal: what is open (with the PIX QR and copy-and-paste
code, the boleto or the payment link), what was paid (receipt and NFS-e), the packages of
sessions on the home page, and the billing part of "download my data".

Every read goes through ``billing.selectors`` scoped to ``request.portal.patient``: another
patient's payment, of this clinic or another, is a 404.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.kernel.timezones import clinic_today
from clinic.portal.sessions import portal_view
from clinic.privacy import export_section

from . import selectors
from .choices import Gateway
from .models import Payment
from .money import brl
from .reports import OPEN

HISTORY_PER_PAGE = 20
#: A package expiring within this many days gets an "expires soon" note (the same horizon
#: as the ``pacote_vencendo`` warning).
EXPIRING_SOON = timedelta(days=15)


# --- Rows the templates show ----------------------------------------------------------------
def payment_row(payment: Payment, *, today: date) -> dict:
    """One payment as the portal lists it (``portal/billing/_payment_item.html``).
    ``payment`` should come with ``invoice`` selected when it may have one."""
    key, label, badge = selectors.payment_patient_state(payment, today=today)
    is_open = payment.status in OPEN
    return {
        "payment": payment,
        "description": payment.description or _("Health services"),
        "amount": brl(payment.amount),
        "refunded": brl(payment.refunded_amount) if payment.refunded_amount else "",
        "due_date": payment.due_date,
        "paid_at": payment.paid_at,
        "state": key,
        "label": label,
        "badge": badge,
        "is_open": is_open,
        "url": reverse("portal:payment", args=[payment.pk]),
        "receipt_url": reverse("portal:payment_receipt", args=[payment.pk])
        if selectors.payment_has_receipt(payment)
        else "",
        "invoice": None if is_open else selectors.invoice_public(payment),
    }


def home_context(patient, *, today: date | None = None) -> dict:
    """The billing part of the portal's home page (``portal/billing/_home.html``): the
    patient's active packages with the sessions left per service and the expiry date, and
    the payments still open. Four queries, however many rows.

    ``today`` defaults to the current time zone's date, which portal views set to the
    clinic's."""
    now = timezone.now()
    today = today or timezone.localdate(now)
    packages = selectors.patient_packages_active(patient=patient, now=now)
    for package in packages:
        package.expiring_soon = package.expires_at - now <= EXPIRING_SOON
    return {
        "packages": packages,
        "open_payments": [
            payment_row(p, today=today) for p in selectors.patient_payments_open(patient=patient)
        ],
    }


def _payment_or_404(request, pk: int, *related: str) -> Payment:
    """The signed-in patient's payment ``pk``, or 404 (another patient's, another clinic's)."""
    portal = request.portal
    payments = (
        Payment.objects.for_clinic(portal.clinic)
        .filter(patient=portal.patient)
        .select_related(*related)
    )
    return get_object_or_404(payments, pk=pk)


# --- Pages ----------------------------------------------------------------------------------
@portal_view
def payments(request):
    """Open charges first, then the history (paid, refunded, cancelled), 20 a page."""
    portal = request.portal
    today = clinic_today(portal.clinic)
    history = Paginator(
        selectors.patient_payments_closed(patient=portal.patient), HISTORY_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "nav": "payments",
        "open_payments": [
            payment_row(p, today=today)
            for p in selectors.patient_payments_open(patient=portal.patient)
        ],
        "history": [payment_row(p, today=today) for p in history.object_list],
        "page": history,
    }
    return render(request, "portal/billing/payments.html", context)


def _pay_options(payment: Payment) -> dict:
    """How an open payment can be paid: the gateway's PIX code (or the clinic's own key
    for a payment no gateway charges), the boleto, the payment page."""
    from integrations.pix import qr_png_data_uri

    payload, static = payment.pix_payload, False
    if not payload and payment.gateway == Gateway.MANUAL:
        # Registered at the desk without a charge: the clinic's key, if it has one. The
        # code is the one the desk would show (txid = our reference); nothing is written.
        payload = selectors.payment_static_pix_payload(payment=payment)
        static = bool(payload)
    elif payload and payment.gateway == Gateway.MANUAL:
        static = True  # the desk already made the clinic's-key code
    pix = None
    if payload:
        pix = {"payload": payload, "qr": qr_png_data_uri(payload), "static": static}
    return {"pix": pix, "boleto_url": payment.boleto_url, "pay_url": payment.invoice_url}


@portal_view
def payment(request, pk: int):
    """One payment: how to pay it while open; receipt, refunds and NFS-e once paid."""
    portal = request.portal
    payment = _payment_or_404(request, pk, "clinic", "invoice")
    row = payment_row(payment, today=clinic_today(portal.clinic))
    context = {
        "nav": "payments",
        "row": row,
        "payment": payment,
        "refunds": [
            {"amount": brl(refund.amount), "created_at": refund.created_at}
            for refund in payment.refunds.order_by("created_at", "pk")
        ]
        if row["refunded"]
        else [],
        **(_pay_options(payment) if row["is_open"] else {}),
    }
    return render(request, "portal/billing/payment.html", context)


@portal_view
def payment_receipt(request, pk: int):
    """The printable receipt of money received — the same sheet the desk prints."""
    payment = _payment_or_404(request, pk, "clinic", "patient", "appointment__professional")
    if not selectors.payment_has_receipt(payment):
        raise Http404
    context = {"nav": "payments", **selectors.payment_receipt_context(payment=payment)}
    return render(request, "portal/billing/receipt.html", context)


urlpatterns = [
    path("pagamentos/", payments, name="payments"),
    path("pagamentos/<int:pk>/", payment, name="payment"),
    path("pagamentos/<int:pk>/recibo/", payment_receipt, name="payment_receipt"),
]


# --- "Download my data" (LGPD) --------------------------------------------------------------
def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


@export_section("payments", gettext_lazy("Payments"), order=30)
def export_payments(patient) -> list[dict]:
    """Every payment of the patient, with its refunds and NFS-e."""
    payments = (
        selectors.patient_payments(patient=patient)
        .select_related("invoice")
        .prefetch_related("refunds")
        .order_by("created_at", "pk")
    )
    rows = []
    for payment in payments:
        invoice = getattr(payment, "invoice", None)  # selected; None when there is none
        rows.append(
            {
                "reference": payment.reference,
                "description": payment.description,
                "amount": str(payment.amount),
                "refunded_amount": str(payment.refunded_amount),
                "status": payment.status,
                "method": payment.method,
                "due_date": _iso(payment.due_date),
                "paid_at": _iso(payment.paid_at),
                "created_at": _iso(payment.created_at),
                "refunds": [
                    {
                        "amount": str(refund.amount),
                        "reason": refund.reason,
                        "created_at": _iso(refund.created_at),
                    }
                    for refund in sorted(payment.refunds.all(), key=lambda r: (r.created_at, r.pk))
                ],
                "invoice": None
                if invoice is None
                else {
                    "number": invoice.number,
                    "status": invoice.status,
                    "pdf_url": invoice.pdf_url,
                    "issued_at": _iso(invoice.issued_at),
                    "cancelled_at": _iso(invoice.cancelled_at),
                },
            }
        )
    return rows


@export_section("packages", gettext_lazy("Packages"), order=40)
def export_packages(patient) -> list[dict]:
    """Every package the patient bought, its services and the sessions spent."""
    from .models import PatientPackage

    packages = (
        PatientPackage.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .select_related("package")
        .prefetch_related("package__items__service", "uses__appointment__service")
        .order_by("purchased_at", "pk")
    )
    return [
        {
            "package": package.package.name,
            "status": package.status,
            "price": str(package.price),
            "sessions_total": package.sessions_total,
            "sessions_used": package.sessions_used,
            "sessions_remaining": package.sessions_remaining,
            "purchased_at": _iso(package.purchased_at),
            "expires_at": _iso(package.expires_at),
            "items": [
                {"service": item.service.name, "sessions": item.quantity}
                for item in package.package.items.all()
            ],
            "sessions_spent": [
                {
                    "used_at": _iso(use.used_at),
                    "reason": use.reason,
                    "service": use.appointment.service.name,
                    "appointment_start": _iso(use.appointment.start),
                }
                for use in sorted(package.uses.all(), key=lambda u: (u.used_at, u.pk))
            ],
        }
        for package in packages
    ]
