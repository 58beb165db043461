"""Discounts on a payment being created: a code (a loyalty voucher …) resolved by the app
that issued it (``billing.discounts``), or an amount given by a person. The payment's
``amount`` becomes the net amount, so what is charged, booked in the ledger, invoiced
(NFS-e) and counted in the cash report is one number."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from ..discounts import Discount, discount_handlers
from ..exceptions import DiscountRefused
from ..models import Payment, PaymentDiscount
from ..money import brl, money


def payment_discount_code_apply(*, payment: Payment, code: str, by=None) -> PaymentDiscount:
    """Apply the discount ``code`` stands for to a payment being created (saved, not yet
    paid nor sent to a gateway), in the caller's transaction. Refused when no registered
    handler knows the code."""
    code = code.strip()
    for source, handler in discount_handlers().items():
        discount = handler(payment=payment, code=code, by=by)
        if discount is not None:
            return payment_discount_add(payment=payment, source=source, discount=discount, by=by)
    raise DiscountRefused(
        _("The code %(code)s is not a valid voucher.") % {"code": code},
        fields={"discount_code": [_("Unknown or already used code.")]},
    )


def payment_discount_add(
    *, payment: Payment, source: str, discount: Discount, by=None
) -> PaymentDiscount:
    """Take ``discount`` off a payment being created. A discount can leave one cent at
    least: a charge of nothing is not a payment (give the service as a courtesy instead)."""
    if payment.paid_at is not None or payment.gateway_payment_id:
        raise DiscountRefused(_("A discount is given before the payment is charged."))
    gross = payment.amount
    amount = money(discount.amount)
    if amount <= Decimal("0"):
        raise DiscountRefused(_("A discount must be more than zero."))
    if amount >= gross:
        raise DiscountRefused(
            _("The discount (%(discount)s) must be less than the amount (%(amount)s).")
            % {"discount": brl(amount), "amount": brl(gross)},
            fields={"amount": [_("More than the discount, please.")]},
        )
    row = PaymentDiscount.objects.create(
        clinic_id=payment.clinic_id,
        payment=payment,
        gross_amount=gross,
        amount=amount,
        source=source[:30],
        reference=discount.reference[:64],
        label=discount.label[:255],
        created_by=by,
    )
    payment.amount = gross - amount
    payment.save(update_fields=["amount", "updated_at"])
    return row
