"""Forms of the portal's "my data" pages: contact data, consents and a deletion request.

They only check what the patient typed; the writes are the services' (``services``,
``privacy``). Every field is described for screen readers: its help and, after a failed
submit, its errors are linked with ``aria-describedby`` and the input is ``aria-invalid``.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .. import validators
from ..choices import ConsentStatus, ContactChannel, State
from ..fields import PhoneFormField
from ..models import ADDRESS_FIELDS, Consent, Patient

#: Channels a patient may prefer on the portal (a phone call is not a message channel).
PREFERRED_CHANNELS = (ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL)
#: The fields of the contact form, in the order they are shown; all are Patient fields.
CONTACT_FIELDS = ("phone", "email", "preferred_channel", *ADDRESS_FIELDS)


class DescribedFormMixin:
    """Links each input to its help text and errors (WCAG 1.3.1, 3.3.1)."""

    def _describe(self) -> None:
        errors = self._errors or {}
        for name, field in self.fields.items():
            attrs = field.widget.attrs
            auto_id = self[name].auto_id
            ids = []
            if field.help_text:
                ids.append(f"{auto_id}-help")
            if name in errors:
                ids.append(f"{auto_id}-error")
                attrs["aria-invalid"] = "true"
            else:
                attrs.pop("aria-invalid", None)
            if ids:
                attrs["aria-describedby"] = " ".join(ids)
            else:
                attrs.pop("aria-describedby", None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._describe()

    def full_clean(self):
        super().full_clean()
        self._describe()


def _text(name: str, label, help_text="", **attrs) -> forms.CharField:
    """An optional text field as long as the Patient field it edits."""
    return forms.CharField(
        label=label,
        max_length=Patient._meta.get_field(name).max_length,
        required=False,
        help_text=help_text,
        widget=forms.TextInput(attrs=attrs),
    )


class ContactForm(DescribedFormMixin, forms.Form):
    """The contact data a patient may change themselves. Name, CPF and birth date identify
    the clinical record: only the clinic changes them."""

    phone = PhoneFormField(
        label=_("Mobile phone"),
        max_length=32,
        validators=[validators.phone_validate],
        help_text=_("With area code, e.g. (11) 98765-4321. We send WhatsApp and SMS here."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    preferred_channel = forms.ChoiceField(
        label=_("How do you prefer to receive messages?"),
        choices=[(c.value, c.label) for c in PREFERRED_CHANNELS],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how you prefer to receive messages.")},
    )
    postal_code = forms.CharField(
        label=_("CEP"),
        max_length=9,
        required=False,
        help_text=_("8 digits, e.g. 01310-100."),
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
    )
    street = _text("street", _("Street"), autocomplete="address-line1")
    number = _text("number", _("Number"))
    complement = _text(
        "complement",
        _("Complement"),
        help_text=_("Apartment, block, etc."),
        autocomplete="address-line2",
    )
    district = _text("district", _("District"))
    city = _text("city", _("City"), autocomplete="address-level2")
    state = forms.ChoiceField(
        label=_("State"),
        choices=[("", _("Choose the state")), *State.choices],
        required=False,
        widget=forms.Select(attrs={"autocomplete": "address-level1"}),
    )

    field_order = CONTACT_FIELDS

    def __init__(self, *args, patient: Patient, **kwargs):
        initial = {name: getattr(patient, name) for name in CONTACT_FIELDS}
        if initial["preferred_channel"] not in PREFERRED_CHANNELS:
            initial["preferred_channel"] = None
        super().__init__(*args, initial=initial, **kwargs)

    def clean_postal_code(self) -> str:
        value = self.cleaned_data["postal_code"].strip()
        if not value:
            return ""
        digits = re.sub(r"\D", "", value)
        if len(digits) != 8 or re.search(r"[^\d\s.\-]", value):
            raise ValidationError(_("Enter a CEP with 8 digits, e.g. 01310-100."))
        return f"{digits[:5]}-{digits[5:]}"

    def clean(self):
        data = super().clean()
        wants_email = data.get("preferred_channel") == ContactChannel.EMAIL
        if wants_email and not data.get("email") and "email" not in self.errors:
            self.add_error("email", _("Enter your e-mail to receive messages by e-mail."))
        return data

    def changes(self) -> dict[str, str]:
        """The fields the patient changed, with their new values."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


def consent_field_name(purpose: str, channel: str) -> str:
    return f"{purpose}__{channel}"


class ConsentsForm(forms.Form):
    """One yes/no choice per (purpose, channel). A choice left as it was changes nothing;
    with no decision recorded yet, neither answer is pre-selected."""

    CHOICES = ((ConsentStatus.GRANTED, _("Yes")), (ConsentStatus.REVOKED, _("No")))

    def __init__(
        self,
        *args,
        channels,
        purposes,
        in_force: dict[tuple[str, str], Consent],
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.pairs = [(purpose, channel) for purpose in purposes for channel in channels]
        for purpose, channel in self.pairs:
            current = in_force.get((channel, purpose))
            self.fields[consent_field_name(purpose, channel)] = forms.ChoiceField(
                label=ContactChannel(channel).label,
                choices=self.CHOICES,
                required=False,
                widget=forms.RadioSelect,
                initial=current.status if current is not None else None,
            )

    def decisions(self) -> dict[tuple[str, str], str]:
        """(channel, purpose) → the answer given, for every answered choice."""
        return {
            (channel, purpose): value
            for purpose, channel in self.pairs
            if (value := self.cleaned_data.get(consent_field_name(purpose, channel)))
        }


class DeletionRequestForm(DescribedFormMixin, forms.Form):
    details = forms.CharField(
        label=_("Anything you want the clinic to know (optional)"),
        required=False,
        max_length=2000,
        help_text=_("For example, which data worries you most. Up to 2,000 characters."),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
