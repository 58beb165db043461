"""The public lead form (edge validation: field errors a visitor understands)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from clinic.validators import phone_normalize

from .choices import InterestType

#: Attribution the form carries in hidden fields (from the page's query string and referrer).
TRACKING_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "referrer",
    "landing_page",
    "ref",
)


class LeadForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=255)
    phone = forms.CharField(
        label=_("WhatsApp or phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    email = forms.EmailField(label=_("E-mail"), required=False)
    interest_type = forms.ChoiceField(
        label=_("What are you looking for?"),
        choices=[("", _("Choose…")), *InterestType.choices],
        required=False,
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    marketing_consent = forms.BooleanField(
        label=_(
            "I agree to receive news and offers from the clinic by WhatsApp and e-mail. I can "
            "withdraw at any time by answering SAIR."
        ),
        required=False,
    )
    #: Honeypot: hidden from people (CSS and aria-hidden); bots fill it in.
    website = forms.CharField(label=_("Leave this field empty"), required=False)

    utm_source = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    utm_medium = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    utm_campaign = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    utm_term = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    utm_content = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    gclid = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    fbclid = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    referrer = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)
    landing_page = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)
    ref = forms.CharField(max_length=32, required=False, widget=forms.HiddenInput)

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        if not phone:
            return ""
        try:
            return phone_normalize(phone)
        except ValidationError:
            raise ValidationError(
                _("Enter a phone number with area code, e.g. (11) 98765-4321."),
                code="invalid_phone",
            ) from None

    def clean_referrer(self) -> str:
        return _url_or_blank(self.cleaned_data["referrer"])

    def clean_landing_page(self) -> str:
        return _url_or_blank(self.cleaned_data["landing_page"])

    def clean(self):
        data = super().clean()
        if not data.get("phone") and not data.get("email") and not self.has_error("phone"):
            self.add_error("phone", _("Give a phone number or an e-mail so we can reach you."))
        return data

    @property
    def is_spam(self) -> bool:
        return bool(self.data.get("website"))


def _url_or_blank(value: str) -> str:
    """Attribution is best effort: a referrer that is no http(s) URL is dropped, not an
    error the visitor could do anything about."""
    value = (value or "").strip()
    return value if value.startswith(("http://", "https://")) else ""
