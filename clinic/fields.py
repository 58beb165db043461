"""Model fields that store Brazilian identifiers in one normal form.

Each model field normalises in ``to_python`` (so ``full_clean`` and forms store the same
thing) and hands the admin a form field that accepts punctuation and shows the value
formatted.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from . import validators


class _NormalizingFormField(forms.CharField):
    normalize = staticmethod(lambda value: value)
    display = staticmethod(lambda value: value)

    def to_python(self, value):
        value = super().to_python(value)
        return self.normalize(value) if value else value

    def prepare_value(self, value):
        # Bound forms with errors show what the person typed; initial values are formatted.
        return self.display(value) if value and isinstance(value, str) else value


class CPFFormField(_NormalizingFormField):
    normalize = staticmethod(validators.cpf_normalize)
    display = staticmethod(validators.cpf_format)


class CNPJFormField(_NormalizingFormField):
    normalize = staticmethod(validators.cnpj_normalize)
    display = staticmethod(validators.cnpj_format)


class PhoneFormField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return validators.phone_normalize(value)
        except ValidationError:
            # Keep the raw text so validation reports it and the form shows it back.
            return value

    def prepare_value(self, value):
        return validators.phone_format(value) if value and isinstance(value, str) else value


class _NormalizedCharField(models.CharField):
    """A CharField stored in one normal form: ``normalize`` in ``to_python`` (so forms and
    ``full_clean`` store the same thing), ``validate_value`` as a validator, and a form field that
    accepts what people type."""

    default_max_length: int
    form_class: type[forms.CharField]
    form_max_length: int

    @staticmethod
    def normalize(value: str) -> str:
        raise NotImplementedError

    @staticmethod
    def validate_value(value: str) -> None:
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", self.default_max_length)
        super().__init__(*args, **kwargs)
        self.validators.append(self.validate_value)

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return self.normalize(value)
        except ValidationError:
            return value  # the validator reports it

    def formfield(self, **kwargs):
        defaults = {"form_class": self.form_class, "max_length": self.form_max_length}
        return super().formfield(**{**defaults, **kwargs})


class CPFField(_NormalizedCharField):
    """CPF stored as 11 digits."""

    default_max_length, form_class, form_max_length = 11, CPFFormField, 20
    normalize = staticmethod(validators.cpf_normalize)
    validate_value = staticmethod(validators.cpf_validate)


class CNPJField(_NormalizedCharField):
    """CNPJ stored as 14 upper-case characters (numeric or the alphanumeric format)."""

    default_max_length, form_class, form_max_length = 14, CNPJFormField, 24
    normalize = staticmethod(validators.cnpj_normalize)
    validate_value = staticmethod(validators.cnpj_validate)


class PhoneField(_NormalizedCharField):
    """Phone number stored in E.164 (``+5511987654321``); Brazilian when no country code."""

    default_max_length, form_class, form_max_length = 20, PhoneFormField, 32
    normalize = staticmethod(validators.phone_normalize)
    validate_value = staticmethod(validators.phone_validate)
