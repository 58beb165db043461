"""The desk's payment pages: register a payment (received now, or charged, or shown as the
clinic's static PIX QR code first), the charge page with its PIX QR and copy-and-paste code,
the printable receipt, the refund form, and the buttons that confirm, cancel or charge
again. Each validates its input and calls one of ``billing.services``; ``PaymentAdmin``
serves them under its URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.kernel.timezones import clinic_zone
from clinic.kernel.views import safe_next
from clinic.models import Patient
from scheduling.models import Appointment

from .. import selectors, services
from ..choices import Gateway, PaymentMethod, PaymentStatus
from ..exceptions import BillingError, GatewayUnavailable
from ..models import Payment
from ..money import brl
from ..services import GATEWAY_METHODS
from .common import (
    add_service_error,
    add_validation_error,
    admin_url,
    clinic_or_redirect,
    page_context,
    scoped_or_404,
    status_badge,
)
from .desk_forms import (
    CHARGE,
    RECEIVE,
    STATIC_PIX,
    PaymentRegisterForm,
    RefundForm,
    submitted_mode,
)

P = PaymentStatus
M = PaymentMethod

# --- What the desk can do to a payment ------------------------------------------------------
# (its modes, methods and forms are in desk_forms.py)


def can_confirm(payment: Payment) -> bool:
    """Money the clinic collects itself (a static PIX, a transfer): a person confirms it. A
    gateway confirms its own charges (its notification, or the settlement)."""
    return payment.status in (P.PENDING, P.FAILED) and payment.gateway == Gateway.MANUAL


def can_charge_again(payment: Payment) -> bool:
    static_pix = payment.gateway == Gateway.MANUAL and bool(payment.pix_payload)
    return (
        payment.status in (P.PENDING, P.FAILED)
        and payment.method in GATEWAY_METHODS
        and not static_pix
    )


def can_cancel(payment: Payment) -> bool:
    return payment.status in (P.PENDING, P.FAILED)


def can_refund(payment: Payment) -> bool:
    return payment.status == P.PAID


def can_use_static_pix(payment: Payment) -> bool:
    """A charge no gateway took (or a pending desk payment) can be paid to the clinic's key."""
    return (
        payment.status in (P.PENDING, P.FAILED)
        and payment.gateway == Gateway.MANUAL
        and not payment.pix_payload
        and selectors.clinic_has_pix_key(clinic=payment.clinic)
    )


def has_receipt(payment: Payment) -> bool:
    return selectors.payment_has_receipt(payment)


def has_charge_page(payment: Payment) -> bool:
    return bool(payment.pix_payload or payment.invoice_url or payment.boleto_url) or (
        payment.status in (P.PENDING, P.FAILED)
    )


@dataclass(frozen=True)
class Operation:
    """One thing done to a payment from a button or an action, through one service."""

    name: str
    label: str
    allowed: Callable[[Payment], bool]
    run: Callable[[Payment, object], object]
    refused: str
    confirm: str = ""


OPERATIONS = {
    op.name: op
    for op in (
        Operation(
            "confirm",
            _("Confirm received"),
            can_confirm,
            lambda p, user: services.payment_confirm(payment=p, by=user),
            _(
                "Only pending payments collected by the clinic itself are confirmed by hand; "
                "a gateway confirms its own charges."
            ),
        ),
        Operation(
            "charge_again",
            _("Charge again at the gateway"),
            can_charge_again,
            lambda p, user: services.payment_charge_send(payment=p),
            _("Only a pending PIX, boleto or card charge can be sent to the gateway again."),
        ),
        Operation(
            "cancel",
            _("Cancel"),
            can_cancel,
            lambda p, user: services.payment_cancel(payment=p, by=user),
            _("Only a pending payment can be cancelled; refund a paid one."),
            _("Cancel this payment? It cannot be undone."),
        ),
        Operation(
            "static_pix",
            _("Use the clinic's PIX key"),
            can_use_static_pix,
            lambda p, user: services.payment_static_pix(payment=p),
            _("A PIX code for the clinic's key is for pending payments no gateway charges."),
        ),
    )
}

DONE = {
    "confirm": _("Payment confirmed: %(payment)s."),
    "charge_again": _("Charge sent to the gateway again: %(payment)s."),
    "cancel": _("Payment cancelled: %(payment)s."),
    "static_pix": _("PIX code of the clinic's key ready: %(payment)s."),
}
DONE_MANY = {
    "confirm": _("%(count)d payment(s) confirmed."),
    "charge_again": _("%(count)d charge(s) sent to the gateway again."),
    "cancel": _("%(count)d payment(s) cancelled."),
}


def payment_label(payment: Payment) -> str:
    return f"{payment.patient.display_name} — {brl(payment.amount)}"


def run_operation(request, payment: Payment, op: Operation, *, quiet: bool = False) -> bool:
    """Run ``op`` on one payment; say why not when it was refused (and what was done,
    unless ``quiet``: an action sums those up). True when it was done."""
    if not op.allowed(payment):
        messages.error(request, f"{payment_label(payment)}: {op.refused}")
        return False
    try:
        op.run(payment, request.user)
    except BillingError as exc:
        messages.error(request, f"{payment_label(payment)}: {exc.message}")
        return False
    if not quiet:
        messages.success(request, DONE[op.name] % {"payment": payment_label(payment)})
    return True


# --- Pages ---------------------------------------------------------------------------------
def payment_tools(model_admin, request, payment: Payment, *, on_charge_page: bool = False) -> dict:
    """The links and buttons of a payment's pages, as the user may use them."""
    links, posts = [], []
    if has_charge_page(payment) and not on_charge_page:
        links.append(
            {
                "url": admin_url(model_admin, "billing_payment_charge", payment.pk),
                "label": _("Charge page"),
            }
        )
    if has_receipt(payment):
        links.append(
            {
                "url": admin_url(model_admin, "billing_payment_receipt", payment.pk),
                "label": _("Receipt"),
            }
        )
    if model_admin.has_change_permission(request):
        if can_refund(payment):
            links.append(
                {
                    "url": admin_url(model_admin, "billing_payment_refund", payment.pk),
                    "label": _("Refund…"),
                }
            )
        for op in OPERATIONS.values():
            if op.allowed(payment):
                posts.append(
                    {
                        "url": admin_url(model_admin, "billing_payment_do", payment.pk, op.name),
                        "label": op.label,
                        "confirm": op.confirm,
                    }
                )
    return {"billing_links": links, "billing_posts": posts}


def register_view(model_admin, request):
    """The desk: money received now (→ paid, with its ledger line), or a charge the
    patient pays later (→ the charge page), or the clinic's static PIX QR code shown
    before registering it as received. ``?appointment=`` or ``?patient=`` fill it in."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    clinic, redirect = clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    appointment = patient = None
    if request.GET.get("appointment"):
        appointment = scoped_or_404(
            model_admin,
            request,
            request.GET["appointment"],
            Appointment.objects.for_clinic(clinic).select_related(
                "patient", "service", "professional"
            ),
        )
        patient = appointment.patient
    elif request.GET.get("patient"):
        patient = scoped_or_404(
            model_admin, request, request.GET["patient"], Patient.objects.for_clinic(clinic)
        )
    mode = submitted_mode(request.POST) if request.method == "POST" else RECEIVE
    form = PaymentRegisterForm(
        request.POST if request.method == "POST" else None,
        mode=mode,
        clinic=clinic,
        patient=patient,
        admin_site=model_admin.admin_site,
        initial=_register_initial(appointment, clinic),
    )
    static_pix = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        patient = patient or data["patient"]
        if mode == STATIC_PIX and data.get("discount_code"):
            # The static QR code carries the full amount: a voucher would make the patient
            # pay more than the payment registers.
            form.add_error(
                "discount_code",
                gettext("A voucher goes with a payment received now or a charge."),
            )
        elif mode == STATIC_PIX:
            static_pix = _static_pix(form, clinic, data["amount"])
        else:
            response = _register(model_admin, request, form, mode, clinic, patient, appointment)
            if response is not None:
                return response
    context = page_context(
        model_admin,
        request,
        title=gettext("Register payment"),
        form=form,
        patient=patient,
        appointment=appointment,
        has_pix_key=selectors.clinic_has_pix_key(clinic=clinic),
        static_pix=static_pix,
        open_payments=[
            {"payment": p, "amount": brl(p.amount)}
            for p in (selectors.patient_open_payments(patient=patient) if patient else [])
        ],
        media=model_admin.media + form.media,
    )
    return TemplateResponse(request, "billing/admin/register.html", context)


def _register_initial(appointment, clinic) -> dict:
    if appointment is None:
        return {}
    start = timezone.localtime(appointment.start, clinic_zone(clinic))
    return {
        "amount": appointment.price or None,
        "description": f"{appointment.service.name} — "
        f"{formats.date_format(start, 'SHORT_DATETIME_FORMAT')}",
    }


def _static_pix(form, clinic, amount) -> dict | None:
    from integrations.pix import qr_svg

    try:
        payload = selectors.pix_static_payload(clinic=clinic, amount=amount)
    except ValueError as exc:
        form.add_error(None, str(exc))
        return None
    return {"payload": payload, "qr": qr_svg(payload), "amount": brl(amount)}


def _register(model_admin, request, form, mode, clinic, patient, appointment):
    data = form.cleaned_data
    common = {
        "clinic": clinic,
        "patient": patient,
        "amount": data["amount"],
        "appointment": appointment,
        "description": data["description"],
        "discount_code": data.get("discount_code", ""),
        "by": request.user,
    }
    try:
        if mode == CHARGE:
            payment = services.payment_charge_create(
                method=data["charge_method"], due_date=data["due_date"], **common
            )
        else:
            payment = services.payment_register(method=data["method"], **common)
    except GatewayUnavailable as exc:
        # The charge is saved, pending, with the gateway's error: its page offers to
        # charge again (or the clinic's PIX key).
        payment = (
            Payment.objects.for_clinic(clinic)
            .filter(patient=patient, created_by=request.user, status=P.PENDING)
            .order_by("-pk")
            .first()
        )
        if payment is None:
            add_service_error(form, exc)
            return None
        messages.error(request, exc.message)
        return HttpResponseRedirect(admin_url(model_admin, "billing_payment_charge", payment.pk))
    except BillingError as exc:
        add_service_error(form, exc)
        return None
    except ValidationError as exc:
        add_validation_error(form, exc)
        return None
    if mode == CHARGE:
        messages.success(
            request,
            gettext("Charge created: %(payment)s.") % {"payment": payment_label(payment)},
        )
        return HttpResponseRedirect(admin_url(model_admin, "billing_payment_charge", payment.pk))
    receipt = admin_url(model_admin, "billing_payment_receipt", payment.pk)
    messages.success(
        request,
        format_html(
            '{} <a href="{}" target="_blank">{}</a>',
            gettext("Payment received: %(payment)s.") % {"payment": payment_label(payment)},
            receipt,
            gettext("Print the receipt"),
        ),
    )
    return HttpResponseRedirect(
        safe_next(request, admin_url(model_admin, "billing_payment_change", payment.pk))
    )


def charge_view(model_admin, request, pk):
    """The charge as the patient pays it: PIX QR and copy-and-paste code, the boleto
    and payment links, and where it stands."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    payment = scoped_or_404(
        model_admin,
        request,
        pk,
        model_admin.get_queryset(request).select_related("patient", "clinic"),
    )
    qr = None
    if payment.pix_payload:
        from integrations.pix import qr_svg

        qr = qr_svg(payment.pix_payload)
    context = page_context(
        model_admin,
        request,
        title=gettext("Charge: %(payment)s") % {"payment": payment_label(payment)},
        payment=payment,
        amount=brl(payment.amount),
        status=status_badge(payment.status, payment.get_status_display()),
        qr=qr,
        original=payment,
        change_url=admin_url(model_admin, "billing_payment_change", payment.pk),
        **payment_tools(model_admin, request, payment, on_charge_page=True),
    )
    return TemplateResponse(request, "billing/admin/charge.html", context)


def receipt_view(model_admin, request, pk):
    """A printable receipt ("recibo") of money received."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    payment = scoped_or_404(
        model_admin,
        request,
        pk,
        model_admin.get_queryset(request).select_related(
            "patient", "clinic", "created_by", "appointment__professional"
        ),
    )
    if not has_receipt(payment):
        raise Http404
    context = {
        "title": gettext("Receipt"),
        **selectors.payment_receipt_context(payment=payment),
        "back_url": admin_url(model_admin, "billing_payment_change", payment.pk),
        "send_url": admin_url(model_admin, "billing_payment_receipt_send", payment.pk),
    }
    return TemplateResponse(request, "billing/admin/receipt.html", context)


def receipt_send_view(model_admin, request, pk):
    """POST: send the receipt to the patient (WhatsApp, SMS or e-mail by their consent)."""
    if request.method != "POST" or not model_admin.has_view_permission(request):
        raise PermissionDenied
    payment = scoped_or_404(
        model_admin, request, pk, model_admin.get_queryset(request).select_related("patient")
    )
    if not has_receipt(payment):
        raise Http404
    message = services.payment_receipt_send(payment=payment, by=request.user)
    if message.status == "not_sent":
        model_admin.message_user(request, message.error, messages.WARNING)
    else:
        model_admin.message_user(
            request, gettext("Receipt sent to %(patient)s.") % {"patient": payment.patient}
        )
    return HttpResponseRedirect(admin_url(model_admin, "billing_payment_receipt", payment.pk))


def refund_view(model_admin, request, pk):
    """Give money back, all or part, with a reason."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    payment = scoped_or_404(
        model_admin,
        request,
        pk,
        model_admin.get_queryset(request).select_related("patient", "clinic"),
    )
    back = admin_url(model_admin, "billing_payment_change", payment.pk)
    if not can_refund(payment):
        messages.error(request, gettext("Only a paid payment can be refunded."))
        return HttpResponseRedirect(back)
    form = RefundForm(request.POST if request.method == "POST" else None, left=payment.net_amount)
    if request.method == "POST" and form.is_valid():
        try:
            services.payment_refund(
                payment=payment,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                by=request.user,
            )
        except BillingError as exc:
            add_service_error(form, exc)
        else:
            messages.success(
                request,
                gettext("%(amount)s refunded to %(patient)s.")
                % {
                    "amount": brl(form.cleaned_data["amount"]),
                    "patient": payment.patient.display_name,
                },
            )
            return HttpResponseRedirect(back)
    context = page_context(
        model_admin,
        request,
        title=gettext("Refund: %(payment)s") % {"payment": payment_label(payment)},
        payment=payment,
        original=payment,
        form=form,
        refunded=brl(payment.refunded_amount),
        left=brl(payment.net_amount),
        back_url=back,
    )
    return TemplateResponse(request, "billing/admin/refund.html", context)


def do_view(model_admin, request, pk, action):
    """The buttons of the payment and charge pages (POST): one service each."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    op = OPERATIONS.get(action)
    if op is None:
        raise Http404
    payment = scoped_or_404(
        model_admin,
        request,
        pk,
        model_admin.get_queryset(request).select_related("patient", "clinic"),
    )
    run_operation(request, payment, op)
    return HttpResponseRedirect(
        safe_next(request, admin_url(model_admin, "billing_payment_change", payment.pk))
    )
