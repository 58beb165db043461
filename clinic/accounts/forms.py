"""Forms of the sign-in steps and of the account pages (validation only: views call
services)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.utils.translation import gettext_lazy as _

from clinic.fields import CPFFormField
from clinic.validators import cpf_validate

from .models import StaffProfile

User = get_user_model()

#: One message for every failed sign-in: it never says whether the account exists.
GENERIC_ERROR = _(
    "Please enter the correct username and password for a staff account. Note that both "
    "fields may be case-sensitive."
)


class SignInForm(forms.Form):
    """Step 1: username and password (the template is the admin's login.html)."""

    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autofocus=True, autocomplete="username")
        self.fields["password"].widget.attrs.update(autocomplete="current-password")


class CodeForm(forms.Form):
    """A code from the authenticator app, or one of the recovery codes."""

    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("The 6-digit code shown in your authenticator app, or a recovery code."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class ReauthForm(CodeForm):
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    field_order = ["password", "code"]


class InvitationAcceptForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("What you will type to sign in: letters, digits and @/./+/-/_ only."),
        validators=[User.username_validator],
    )
    password1 = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(
        label=_("Password confirmation"), strip=False, widget=forms.PasswordInput
    )

    def __init__(self, *args, invitation, **kwargs):
        self.invitation = invitation
        super().__init__(*args, **kwargs)
        self.fields[
            "password1"
        ].help_text = password_validation.password_validators_help_text_html()

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken: choose another."))
        return username

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            probe = User(
                username=data.get("username", ""),
                email=self.invitation.email,
                first_name=self.invitation.full_name,
            )
            try:
                password_validation.validate_password(p1, probe)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class InvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    email = forms.EmailField(label=_("E-mail"))
    cpf = CPFFormField(label=_("CPF"), validators=[cpf_validate])
    role = forms.ChoiceField(label=_("Role"))

    def clean_cpf(self):
        cpf = self.cleaned_data["cpf"]
        if StaffProfile.objects.filter(cpf=cpf).exists():
            raise forms.ValidationError(_("Another staff account already has this CPF."))
        return cpf
