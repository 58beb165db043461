"""Brazilian document and phone validation: CPF, CNPJ (numeric and alphanumeric) and phones.

Values are normalised to one stored form: CPF as 11 digits, CNPJ as 14 upper-case
characters, phones in E.164 (``+5511987654321``). Forms accept what people type
(``529.982.247-25``, ``(11) 98765-4321``).
"""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.br import cnpj as stdnum_cnpj
from stdnum.br import cpf as stdnum_cpf
from stdnum.exceptions import ValidationError as StdnumError

DEFAULT_PHONE_REGION = "BR"

# Only the punctuation people type is removed; anything else stays, so that junk such as
# "abc" fails validation instead of normalising to an empty (and silently accepted) value.
_DOCUMENT_PUNCTUATION = re.compile(r"[\s./\-–]")


def cpf_normalize(value: str) -> str:
    """Strip punctuation and spaces: ``529.982.247-25`` → ``52998224725``."""
    return _DOCUMENT_PUNCTUATION.sub("", value or "")


def cpf_validate(value: str) -> None:
    digits = cpf_normalize(value)
    # stdnum accepts 111.111.111-11 and the like (their check digits add up), but the
    # Receita Federal never issues them and they are the usual "filler" typed at reception.
    if not stdnum_cpf.is_valid(digits) or len(set(digits)) == 1:
        raise ValidationError(
            _("Enter a valid CPF (11 digits, e.g. 529.982.247-25)."), code="invalid_cpf"
        )


def cpf_format(value: str) -> str:
    digits = cpf_normalize(value)
    return stdnum_cpf.format(digits) if len(digits) == 11 else value


def cnpj_normalize(value: str) -> str:
    """Strip punctuation; letters upper-cased (alphanumeric CNPJ from July 2026)."""
    return _DOCUMENT_PUNCTUATION.sub("", value or "").upper()


def cnpj_validate(value: str) -> None:
    try:
        stdnum_cnpj.validate(cnpj_normalize(value))
    except StdnumError:
        raise ValidationError(
            _("Enter a valid CNPJ (14 characters, e.g. 11.222.333/0001-81)."),
            code="invalid_cnpj",
        ) from None


def cnpj_format(value: str) -> str:
    normalized = cnpj_normalize(value)
    return stdnum_cnpj.format(normalized) if len(normalized) == 14 else value


def phone_normalize(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Parse what a person typed and return E.164, or raise ``ValidationError``.

    A number without a country code is read as Brazilian.
    """
    message = _("Enter a valid phone number with area code, e.g. (11) 98765-4321.")
    try:
        number = phonenumbers.parse(value or "", region)
    except phonenumbers.NumberParseException:
        raise ValidationError(message, code="invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(message, code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_validate(value: str) -> None:
    phone_normalize(value)


def phone_format(value: str) -> str:
    """E.164 → how people read it: national for Brazil, international otherwise."""
    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 55:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_NON_DIGITS = re.compile(r"\D")


def phone_variants(e164: str) -> list[str]:
    """The forms a Brazilian mobile number may be stored or sent in: with and without the
    9th digit (WhatsApp still reports some accounts by their 8-digit number)."""
    digits = _NON_DIGITS.sub("", e164 or "")
    if not digits:
        return []
    variants = [f"+{digits}"]
    if digits.startswith("55"):
        national = digits[2:]
        if len(national) == 10 and national[2] in "6789":
            variants.append(f"+55{national[:2]}9{national[2:]}")
        elif len(national) == 11 and national[2] == "9":
            variants.append(f"+55{national[:2]}{national[3:]}")
    return variants


HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def color_validate(value: str) -> None:
    if not HEX_COLOR.match(value or ""):
        raise ValidationError(_("Enter a colour as #RRGGBB, e.g. #2E86DE."), code="invalid_color")


#: The image formats a clinic logo may have, by their first bytes, with their media type.
LOGO_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"RIFF", "image/webp"),  # followed by the size and "WEBP" at offset 8
)
LOGO_MAX_BYTES = 200 * 1024


def logo_media_type(head: bytes) -> str:
    """The media type of a logo from its first 12 bytes, or "" when it is not an image we
    serve (SVG is refused: it can carry scripts)."""
    for signature, media_type in LOGO_SIGNATURES:
        if head.startswith(signature):
            if media_type == "image/webp" and head[8:12] != b"WEBP":
                continue
            return media_type
    return ""


def validate_logo(file) -> None:
    if file.size > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo must be at most 200 KB."), code="too_large")
    position = file.tell() if hasattr(file, "tell") else 0
    file.seek(0)
    head = file.read(12)
    file.seek(position)
    if not logo_media_type(head):
        raise ValidationError(_("The logo must be a PNG, JPEG or WebP image."), code="format")
