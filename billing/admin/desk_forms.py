"""The desk's forms: how money comes (received now, charged, or the static PIX QR code
shown first), registering a payment and refunding one. The pages that use them are in
``desk.py``."""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Patient

from ..choices import PaymentMethod
from ..models import Payment
from ..money import brl
from .common import DateInput, MoneyField

M = PaymentMethod

RECEIVE, CHARGE, STATIC_PIX = "receive", "charge", "static_pix"

DESK_METHOD_CHOICES = [
    (M.CASH, _("Cash")),
    (M.PIX, _("PIX received")),
    (M.DEBIT_CARD, _("Debit card (machine)")),
    (M.CREDIT_CARD, _("Credit card (machine)")),
    (M.TRANSFER, _("Bank transfer")),
]
CHARGE_METHOD_CHOICES = [
    (M.PIX, _("PIX (QR code)")),
    (M.BOLETO, _("Boleto")),
    (M.CREDIT_CARD, _("Card (payment link)")),
]


# ----------------------------------------------------------------------------------
def submitted_mode(data) -> str:
    """Which button was pressed: received now (the default, also on Enter), charge, or
    show the static PIX code."""
    if "_charge" in data:
        return CHARGE
    if "_static_pix" in data:
        return STATIC_PIX
    return RECEIVE


class PaymentChoiceForm(forms.Form):
    """How the money comes: received now by one of the desk's methods, or charged."""

    method = forms.ChoiceField(
        label=_("Received by"),
        choices=DESK_METHOD_CHOICES,
        widget=forms.RadioSelect,
        required=False,
    )
    charge_method = forms.ChoiceField(
        label=_("Charge by"),
        choices=CHARGE_METHOD_CHOICES,
        widget=forms.RadioSelect,
        required=False,
    )

    def __init__(self, *args, mode: str = RECEIVE, **kwargs):
        self.mode = mode
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.mode == RECEIVE and not data.get("method"):
            self.add_error("method", gettext("Choose how the money was received."))
        if self.mode == CHARGE and not data.get("charge_method"):
            self.add_error("charge_method", gettext("Choose how to charge the patient."))
        return data


def patient_field(clinic, admin_site) -> forms.ModelChoiceField:
    """A patient of the clinic, found by name or CPF as the patient list searches."""
    return forms.ModelChoiceField(
        label=_("Patient"),
        queryset=Patient.objects.for_clinic(clinic),
        widget=AutocompleteSelect(Payment._meta.get_field("patient"), admin_site),
    )


class PaymentRegisterForm(PaymentChoiceForm):
    amount = MoneyField(label=_("Amount (R$)"))
    description = forms.CharField(
        label=_("Description"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"size": 50}),
        help_text=_("Shown on the receipt and on the charge."),
    )
    discount_code = forms.CharField(
        label=_("Voucher code"),
        max_length=40,
        required=False,
        help_text=_("A voucher the patient brings (loyalty reward): its value comes off."),
    )
    due_date = forms.DateField(
        label=_("Due date"),
        required=False,
        widget=DateInput,
        help_text=_("For charges; today when left empty."),
    )

    def __init__(self, *args, clinic, patient=None, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        if patient is None:
            self.fields = {"patient": patient_field(clinic, admin_site), **self.fields}

    def clean_due_date(self):
        due = self.cleaned_data.get("due_date")
        if (
            due
            and self.mode == CHARGE
            and due < timezone.localdate(timezone=clinic_zone(self.clinic))
        ):
            raise ValidationError(gettext("The due date cannot be in the past."))
        return due


class RefundForm(forms.Form):
    amount = MoneyField(label=_("Amount to refund (R$)"))
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def __init__(self, *args, left, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = left
        self.fields["amount"].help_text = gettext("Up to %(left)s.") % {"left": brl(left)}

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount > self.left:
            raise ValidationError(
                gettext("At most %(left)s can still be refunded.") % {"left": brl(self.left)}
            )
        return amount
