"""Static PIX "BR Code": build, read and draw the "copia e cola" code and its QR.

Clinics that take PIX without a gateway print or show a static code with their own PIX key;
the console payments provider uses the same builder. The format is EMV® QRCPS
merchant-presented mode as profiled by the Banco Central do Brasil (Manual de Padrões para
Iniciação do Pix): a run of TLV fields, ``ID`` (2 digits) + length (2 digits) + value, lengths
counted in characters, closed by field 63, a CRC-16/CCITT-FALSE over everything before it.

    00 02 01                     payload format, always first
    01 02 12                     only when the code is single use (absent: reusable)
    26 LL 00 14 br.gov.bcb.pix   merchant account: GUI, 01 key, 02 description; ≤ 99 in all
    52 04 0000                   merchant category code ("0000": not informed)
    53 03 986                    currency: BRL
    54 LL 150.00                 amount, optional (the payer types it when absent)
    58 02 BR                     country
    59 LL name ≤ 25, 60 LL city ≤ 15
    62 LL 05 LL txid             txid ≤ 25 alphanumerics, "***" when there is none
    63 04 CRC                    last

Names, cities and descriptions are written as printable ASCII so that character and byte
counts agree in every bank's reader (some count one, some the other).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import phonenumbers
import segno
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from stdnum.br import cnpj as stdnum_cnpj
from stdnum.br import cpf as stdnum_cpf

GUI = "br.gov.bcb.pix"
CURRENCY_BRL = "986"
COUNTRY = "BR"
CATEGORY_NOT_INFORMED = "0000"
NO_TXID = "***"
NAME_MAX = 25
CITY_MAX = 15
TXID_MAX = 25
AMOUNT_MAX_CHARS = 13  # EMV field 54: up to 13 characters, "9999999999.99"
ACCOUNT_MAX = 99  # field 26 as a whole: its length must fit the 2-digit length of a TLV
#: Field 26 without key and description: "0014br.gov.bcb.pix" + "01LL".
_ACCOUNT_OVERHEAD = 4 + len(GUI) + 4
#: DICT key rules (API DICT): e-mail keys are lower case and at most 77 characters, which is
#: exactly what field 26 holds besides the GUI.
EMAIL_KEY_MAX = ACCOUNT_MAX - _ACCOUNT_OVERHEAD

_EMAIL_KEY = re.compile(
    r"^[a-z0-9.!#$&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
# EVP (random) keys are UUIDs as the DICT writes them. The BCB's own example,
# 123e4567-e12b-12d1-…, is not a valid RFC 4122 version, so only the shape is checked.
_EVP_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DOCUMENT_PUNCTUATION = re.compile(r"[\s./\-–]")
_TXID = re.compile(r"^[A-Za-z0-9]{1,25}$")
_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_TLV_HEAD = re.compile(r"^[0-9]{4}$")
_CRC_TAIL = re.compile(r"6304([0-9A-Fa-f]{4})$")
# Names and cities: letters, digits, spaces and the punctuation company names use. EMV
# allows any printable ASCII, but some bank apps choke on the rest.
_NAME_DISALLOWED = re.compile(r"[^A-Za-z0-9 .,&'/-]")
_PRINTABLE_DISALLOWED = re.compile(r"[^\x20-\x7e]")


class InvalidBRCode(ValueError):
    """A payload that is not a well-formed static PIX BR Code; the message says why."""


@dataclass(frozen=True)
class BRCode:
    """A static PIX BR Code as read by :func:`brcode_parse`.

    ``txid`` is ``""`` when the code carries ``***`` (no identifier); ``fields`` holds every
    top-level field's raw value by ID, templates (26, 62) still encoded.
    """

    key: str
    name: str
    city: str
    amount: Decimal | None
    txid: str
    description: str
    reusable: bool
    fields: dict[str, str] = field(default_factory=dict, hash=False, repr=False)


# --- CRC and TLV ----------------------------------------------------------------------------
def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR)
    over the UTF-8 bytes of ``data``, as 4 upper-case hex digits: ``"123456789"`` → ``29B1``.

    A BR Code's CRC covers the whole payload up to and including ``6304``.
    """
    crc = 0xFFFF
    for byte in data.encode("utf-8"):
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def _tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def _tlv_parse(data: str, *, where: str = "") -> dict[str, str]:
    """Split a run of TLV fields into ``{id: value}``; ``where`` names the enclosing
    template in error messages (``"26"`` → field ``26/01``)."""
    prefix = f"{where}/" if where else ""
    fields: dict[str, str] = {}
    position = 0
    while position < len(data):
        head = data[position : position + 4]
        if not _TLV_HEAD.match(head):
            raise InvalidBRCode(
                _(
                    "Malformed BR Code: expected a field ID and length at position "
                    "%(position)s, found “%(found)s”."
                )
                % {"position": position, "found": head}
            )
        field_id, length = f"{prefix}{head[:2]}", int(head[2:])
        value = data[position + 4 : position + 4 + length]
        if len(value) < length:
            raise InvalidBRCode(
                _("Truncated BR Code: field %(field)s announces %(length)s characters.")
                % {"field": field_id, "length": length}
            )
        if length == 0:
            raise InvalidBRCode(
                _("Malformed BR Code: field %(field)s is empty.") % {"field": field_id}
            )
        if head[:2] in fields:
            raise InvalidBRCode(
                _("Malformed BR Code: field %(field)s appears twice.") % {"field": field_id}
            )
        fields[head[:2]] = value
        position += 4 + length
    return fields


# --- Normalisation and validation -----------------------------------------------------------
def _ascii(value: str, *, disallowed: re.Pattern[str], limit: int) -> str:
    """Accents removed, ``disallowed`` characters dropped, whitespace collapsed, cut to
    ``limit`` characters. Case is kept (see :func:`brcode_build`)."""
    decomposed = unicodedata.normalize("NFKD", " ".join(value.split()))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(disallowed.sub("", plain).split())[:limit].rstrip()


def _key_normalise(key: str) -> str:
    """The PIX key as the DICT writes it, or ``ValueError``: CPF (11 digits), CNPJ (14
    characters), e-mail (lower case), phone (``+55…``) or EVP (lower-case UUID)."""
    value = key.strip()
    if not value:
        raise ValueError(_("Enter the PIX key."))
    if "@" in value:
        email = value.lower()
        if len(email) > EMAIL_KEY_MAX or not _EMAIL_KEY.match(email):
            raise ValueError(
                _("%(key)s is not a valid PIX e-mail key (an address of up to 77 characters).")
                % {"key": key}
            )
        return email
    if _EVP_KEY.match(value.lower()):
        return value.lower()
    # Only a number written the international way (or with its area code in parentheses) is
    # a phone key: 11 bare digits are a CPF, as the payer's bank reads them too.
    if value.startswith("+") or "(" in value:
        try:
            number = phonenumbers.parse(value, "BR")
        except phonenumbers.NumberParseException:
            number = None
        if number is None or number.country_code != 55 or not phonenumbers.is_valid_number(number):
            raise ValueError(
                _(
                    "%(key)s is not a valid PIX phone key: a Brazilian number with "
                    "area code, e.g. +55 11 98765-4321."
                )
                % {"key": key}
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    document = _DOCUMENT_PUNCTUATION.sub("", value).upper()
    if len(document) == 11 and document.isascii() and document.isdigit():
        # stdnum accepts 111.111.111-11 and the like; the Receita never issues them.
        if not stdnum_cpf.is_valid(document) or len(set(document)) == 1:
            raise ValueError(
                _(
                    "%(key)s is not a valid CPF. A phone key is written with +55, "
                    "e.g. +55 11 98765-4321."
                )
                % {"key": key}
            )
        return document
    if len(document) == 14:
        # Alphanumeric CNPJs (from July 2026) are accepted as stdnum validates them.
        if not stdnum_cnpj.is_valid(document):
            raise ValueError(_("%(key)s is not a valid CNPJ.") % {"key": key})
        return document
    raise ValueError(
        _(
            "%(key)s is not a PIX key: use a CPF, a CNPJ, an e-mail, a phone number "
            "(+55…) or a random key."
        )
        % {"key": key}
    )


def _amount_format(amount: Decimal | int) -> str:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(
            f"amount must be a Decimal (or int), not {type(amount).__name__}: floats round "
            "unpredictably"
        )
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValueError(_("The amount must be a number."))
    try:
        # Half a centavo goes up, as people round money (Decimal's default is half-even).
        rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        rounded = None
    if rounded is not None and rounded <= 0:
        raise ValueError(
            _("The amount must be positive, at least R$ 0.01 (got %(amount)s).")
            % {"amount": amount}
        )
    text = f"{rounded:f}" if rounded is not None else ""
    if not text or len(text) > AMOUNT_MAX_CHARS:
        raise ValueError(
            _("The amount %(amount)s is too large for a PIX code (at most 9999999999.99).")
            % {"amount": amount}
        )
    return text


def _txid_normalise(txid: str) -> str:
    value = txid.strip()
    if value in ("", NO_TXID):
        return NO_TXID
    if not _TXID.match(value):
        raise ValueError(
            _(
                "%(txid)s is not a valid PIX transaction id: up to 25 letters and digits, "
                "no spaces or symbols."
            )
            % {"txid": txid}
        )
    return value


# --- Build ----------------------------------------------------------------------------------
def brcode_build(
    *,
    key: str,
    name: str,
    city: str,
    amount: Decimal | None = None,
    txid: str = "",
    description: str = "",
    reusable: bool = True,
) -> str:
    """The static PIX "copia e cola" payload that pays ``amount`` to ``key``.

    - ``key``: CPF, CNPJ, e-mail, phone or random (EVP) key, normalised as the DICT writes
      it (``+55…`` for phones, no punctuation for CPF/CNPJ, lower case for e-mail and EVP).
    - ``name`` (≤ 25) and ``city`` (≤ 15): accents removed, characters other than letters,
      digits, spaces and ``.,&'/-`` dropped, then cut to length. Case is kept, as in the
      BCB's own example ("Fulano de Tal"); pass ``name.upper()`` for the all-caps style.
    - ``amount``: rounded half-up to centavos; ``None`` lets the payer type it.
    - ``txid``: up to 25 letters and digits, for reconciliation; ``"***"`` when empty.
    - ``description``: shown to the payer by some banks; made printable ASCII and cut so
      that field 26 stays within 99 characters (the key is never cut).
    - ``reusable``: ``False`` adds field 01 = ``12`` (the code pays once).

    Raises ``ValueError`` with a message for the user on any invalid value.
    """
    pix_key = _key_normalise(key)
    merchant_name = _ascii(name, disallowed=_NAME_DISALLOWED, limit=NAME_MAX)
    merchant_city = _ascii(city, disallowed=_NAME_DISALLOWED, limit=CITY_MAX)
    if not merchant_name:
        raise ValueError(_("Enter the name of the PIX recipient (letters or digits)."))
    if not merchant_city:
        raise ValueError(_("Enter the city of the PIX recipient (letters or digits)."))
    txid_value = _txid_normalise(txid)
    amount_text = _amount_format(amount) if amount is not None else ""

    account = _tlv("00", GUI) + _tlv("01", pix_key)
    if len(account) > ACCOUNT_MAX:  # unreachable with DICT keys, kept as the rule itself
        raise ValueError(_("The PIX key is too long for a PIX code."))
    room = ACCOUNT_MAX - len(account) - 4  # "02LL"
    info = _ascii(description, disallowed=_PRINTABLE_DISALLOWED, limit=max(room, 0))
    if info:
        account += _tlv("02", info)

    body = _tlv("00", "01")
    if not reusable:
        body += _tlv("01", "12")
    body += _tlv("26", account) + _tlv("52", CATEGORY_NOT_INFORMED) + _tlv("53", CURRENCY_BRL)
    if amount_text:
        body += _tlv("54", amount_text)
    body += (
        _tlv("58", COUNTRY)
        + _tlv("59", merchant_name)
        + _tlv("60", merchant_city)
        + _tlv("62", _tlv("05", txid_value))
        + "6304"
    )
    return body + crc16(body)


# --- Parse ----------------------------------------------------------------------------------
def brcode_parse(payload: str) -> BRCode:
    """Read and check a static PIX BR Code; ``InvalidBRCode`` (a ``ValueError``) says what
    is wrong: CRC first (any altered or mistyped character), then structure, then each
    mandatory field (00, 26 with ``br.gov.bcb.pix`` and a key, 52, 53 = 986, 58 = BR, 59,
    60, 63). Dynamic codes (a URL in 26/25 instead of a key) are refused.
    """
    text = payload.strip()
    tail = _CRC_TAIL.search(text)
    if tail is None:
        raise InvalidBRCode(
            _("Truncated BR Code: it does not end with its CRC (field 63, 6304 and 4 hex digits).")
        )
    expected = crc16(text[: tail.start() + 4])
    if tail.group(1).upper() != expected:
        raise InvalidBRCode(
            _(
                "CRC mismatch: the code says %(found)s but its content gives %(expected)s; "
                "it was altered or mistyped."
            )
            % {"found": tail.group(1), "expected": expected}
        )

    fields = _tlv_parse(text)
    ids = list(fields)
    if ids[0] != "00" or fields["00"] != "01":
        raise InvalidBRCode(_("Not a BR Code: it must start with field 00 = 01."))
    if ids[-1] != "63":
        raise InvalidBRCode(_("Malformed BR Code: field 63 (CRC) must come last."))
    for field_id in ("26", "52", "53", "58", "59", "60"):
        if field_id not in fields:
            raise InvalidBRCode(
                _("Incomplete BR Code: mandatory field %(field)s is missing.") % {"field": field_id}
            )

    initiation = fields.get("01", "11")
    if initiation not in ("11", "12"):
        raise InvalidBRCode(_("Field 01 must be 11 (reusable) or 12 (single use)."))
    account = _tlv_parse(fields["26"], where="26")
    if account.get("00", "").lower() != GUI:
        raise InvalidBRCode(_("Not a PIX code: field 26 does not start with br.gov.bcb.pix."))
    if "01" not in account:
        raise InvalidBRCode(
            _("Not a static PIX code: field 26 has no PIX key (dynamic codes are not supported).")
        )
    try:
        key = _key_normalise(account["01"])
    except ValueError as exc:
        raise InvalidBRCode(str(exc)) from None
    if key != account["01"]:
        raise InvalidBRCode(
            _("The PIX key %(key)s is not written as the DICT writes it (%(expected)s).")
            % {"key": account["01"], "expected": key}
        )
    if not re.fullmatch(r"[0-9]{4}", fields["52"]):
        raise InvalidBRCode(_("Field 52 (merchant category) must be 4 digits."))
    if fields["53"] != CURRENCY_BRL:
        raise InvalidBRCode(_("Field 53 (currency) must be 986, the Brazilian real."))
    if fields["58"] != COUNTRY:
        raise InvalidBRCode(_("Field 58 (country) must be BR."))
    if len(fields["59"]) > NAME_MAX or len(fields["60"]) > CITY_MAX:
        raise InvalidBRCode(
            _("The name (field 59) is limited to 25 characters and the city (60) to 15.")
        )

    amount = None
    if "54" in fields:
        if not _AMOUNT.match(fields["54"]) or Decimal(fields["54"]) <= 0:
            raise InvalidBRCode(
                _("Field 54 (amount) must be a positive amount such as 150.00, not “%(found)s”.")
                % {"found": fields["54"]}
            )
        amount = Decimal(fields["54"]).quantize(Decimal("0.01"))
    txid = _tlv_parse(fields["62"], where="62").get("05", "") if "62" in fields else ""
    if len(txid) > TXID_MAX:
        raise InvalidBRCode(_("Field 62/05 (txid) is limited to 25 characters."))

    return BRCode(
        key=key,
        name=fields["59"],
        city=fields["60"],
        amount=amount,
        txid="" if txid == NO_TXID else txid,
        description=account.get("02", ""),
        reusable=initiation == "11",
        fields=fields,
    )


# --- QR image -------------------------------------------------------------------------------
def qr_code(payload: str) -> segno.QRCode:
    """The QR symbol of ``payload``, error correction level M as BR Codes use (M is kept
    even where a higher level would fit the same size, so every code looks alike)."""
    if not payload:
        raise ValueError("an empty payload has no QR code")
    return segno.make_qr(payload, error="m", boost_error=False)


def qr_svg(payload: str) -> SafeString:
    """Inline SVG of the QR code, ready for a template (``{{ qr }}``, already safe).

    Sized in pixels (4 per module) with a ``viewBox``, so CSS can scale it; ``role="img"``
    and a title name it for screen readers.
    """
    label = _("PIX QR code")
    svg = qr_code(payload).svg_inline(scale=4, unit="px", title=label, svgclass="pix-qr")
    svg = svg.replace("<svg", f'<svg role="img" aria-label="{escape(label)}"', 1)
    return mark_safe(svg)  # noqa: S308 - segno's own markup; the label is escaped above


def qr_png_data_uri(payload: str, scale: int = 6) -> str:
    """The QR code as a PNG ``data:image/png;base64,…`` URI (e-mails, PDFs, ``<img src>``);
    ``scale`` is pixels per module."""
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError("scale must be a positive whole number of pixels per module")
    return qr_code(payload).png_data_uri(scale=scale)
