"""integrations.pix: the static PIX BR Code, built, read back and drawn as a QR code."""

import base64
import re
from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.pix import (
    BRCode,
    InvalidBRCode,
    brcode_build,
    brcode_parse,
    crc16,
    qr_code,
    qr_png_data_uri,
    qr_svg,
)

# Manual de Padrões para Iniciação do Pix (BCB), the static QR code example.
BCB_KEY = "123e4567-e12b-12d1-a456-426655440000"
BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
CPF = "52998224725"
CNPJ = "11222333000181"


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English (pt-BR is the default language)."""
    with translation.override("en"):
        yield


def build(**kwargs) -> str:
    return brcode_build(**{"key": CPF, "name": "Clinica Cuidar", "city": "Sao Paulo", **kwargs})


def fields_of(payload: str) -> dict[str, str]:
    return brcode_parse(payload).fields


# --- The official example and the CRC -------------------------------------------------------
def test_it_reproduces_the_bcb_manual_example_exactly():
    assert brcode_build(key=BCB_KEY, name="Fulano de Tal", city="BRASILIA") == BCB_EXAMPLE


def test_it_reads_the_bcb_manual_example():
    code = brcode_parse(BCB_EXAMPLE)

    assert code == BRCode(
        key=BCB_KEY,
        name="Fulano de Tal",
        city="BRASILIA",
        amount=None,
        txid="",
        description="",
        reusable=True,
        fields=code.fields,
    )
    assert code.fields["26"] == f"0014br.gov.bcb.pix0136{BCB_KEY}"
    assert code.fields["63"] == "1D3D"


def test_crc16_is_ccitt_false_with_its_standard_check_value():
    assert crc16("123456789") == "29B1"
    assert crc16("") == "FFFF"  # the initial value, no final XOR


def test_the_crc_covers_everything_up_to_and_including_6304():
    assert crc16(BCB_EXAMPLE[:-4]) == BCB_EXAMPLE[-4:]


def test_it_rejects_a_code_whose_crc_is_wrong():
    with pytest.raises(InvalidBRCode, match=r"^CRC mismatch: the code says 1D3E"):
        brcode_parse(BCB_EXAMPLE[:-4] + "1D3E")


def test_it_rejects_a_code_with_one_character_changed():
    altered = BCB_EXAMPLE.replace("Fulano", "Fulana")

    with pytest.raises(InvalidBRCode, match=r"^CRC mismatch"):
        brcode_parse(altered)


def test_it_accepts_a_crc_written_in_lower_case():
    assert brcode_parse(BCB_EXAMPLE[:-4] + "1d3d").key == BCB_KEY


def test_it_ignores_whitespace_around_a_pasted_code():
    assert brcode_parse(f"  {BCB_EXAMPLE}\n").name == "Fulano de Tal"


@pytest.mark.parametrize("cut", [1, 4, 8, 30, len(BCB_EXAMPLE) - 1])
def test_it_rejects_a_truncated_code(cut):
    with pytest.raises(InvalidBRCode, match="Truncated BR Code"):
        brcode_parse(BCB_EXAMPLE[:-cut])


def test_it_rejects_an_empty_code():
    with pytest.raises(InvalidBRCode, match="Truncated BR Code"):
        brcode_parse("")


def with_crc(body: str) -> str:
    """A payload with a correct CRC, to reach the structural checks behind it."""
    return body + "6304" + crc16(body + "6304")


def test_it_rejects_a_field_whose_length_runs_past_the_end():
    # Field 60 says 40 characters: it swallows 62 and the CRC field's head.
    body = BCB_EXAMPLE[:-8].replace("6008BRASILIA", "6040BRASILIA")

    with pytest.raises(InvalidBRCode, match="Truncated BR Code: field 60 announces 40"):
        brcode_parse(with_crc(body))


def test_it_rejects_a_field_head_that_is_not_digits():
    body = BCB_EXAMPLE[:-8].replace("5802BR", "58xxBR")

    with pytest.raises(InvalidBRCode, match="expected a field ID and length"):
        brcode_parse(with_crc(body))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("000201", "000202", "must start with field 00 = 01"),
        ("5303986", "5303840", "must be 986"),
        ("5802BR", "5802US", "must be BR"),
        ("52040000", "5204ABCD", "must be 4 digits"),
        ("5913Fulano de Tal", "", "mandatory field 59 is missing"),
        ("6008BRASILIA", "", "mandatory field 60 is missing"),
        ("0014br.gov.bcb.pix", "0014br.gov.bcb.xyz", "does not start with br.gov.bcb.pix"),
        ("5913Fulano de Tal", "5926Fulano de Tal e Companhias", "limited to 25 characters"),
        ("5802BR", "5802BR5802BR", "field 58 appears twice"),
    ],
)
def test_it_rejects_a_code_without_its_mandatory_values(old, new, message):
    body = BCB_EXAMPLE[:-8].replace(old, new)

    with pytest.raises(InvalidBRCode, match=message):
        brcode_parse(with_crc(body))


def test_it_rejects_a_dynamic_code_it_cannot_read_a_key_from():
    url = "pix.example.com/qr/v2/cobv/9d36b84f"
    account = f"0014br.gov.bcb.pix25{len(url)}{url}"
    body = f"00020101021226{len(account)}{account}"
    body += "5204000053039865802BR5907EMPRESA6008BRASILIA62070503***"

    with pytest.raises(InvalidBRCode, match="dynamic codes are not supported"):
        brcode_parse(with_crc(body))


def test_it_rejects_a_key_not_written_as_the_dict_writes_it():
    body = BCB_EXAMPLE[:-8].replace(BCB_KEY, BCB_KEY.upper())

    with pytest.raises(InvalidBRCode, match="not written as the DICT writes it"):
        brcode_parse(with_crc(body))


def test_it_rejects_an_amount_that_is_not_a_plain_decimal():
    body = BCB_EXAMPLE[:-8].replace("5802BR", "540510,005802BR")

    with pytest.raises(InvalidBRCode, match=r"Field 54 \(amount\)"):
        brcode_parse(with_crc(body))


def test_it_keeps_unknown_fields_it_does_not_need():
    body = BCB_EXAMPLE[:-8] + "8012ABCDEFGHIJKL"  # an unreserved template, before the CRC

    assert fields_of(with_crc(body))["80"] == "ABCDEFGHIJKL"


# --- Building -------------------------------------------------------------------------------
def test_a_built_code_reads_back_with_everything_it_was_given():
    payload = build(amount=Decimal("150.00"), txid="CONSULTA123", description="Consulta")

    code = brcode_parse(payload)

    assert (code.key, code.name, code.city) == (CPF, "Clinica Cuidar", "Sao Paulo")
    assert (code.amount, code.txid, code.description) == (
        Decimal("150.00"),
        "CONSULTA123",
        "Consulta",
    )
    assert code.reusable is True
    assert "5406150.00" in payload
    assert "62150511CONSULTA123" in payload


def test_a_code_without_amount_or_txid_has_no_field_54_and_txid_stars():
    payload = build()

    assert "54" not in fields_of(payload)
    assert fields_of(payload)["62"] == "0503***"
    assert brcode_parse(payload).amount is None


def test_a_single_use_code_has_point_of_initiation_12_and_a_reusable_one_none():
    single = build(reusable=False)

    assert single.startswith("000201010212")
    assert brcode_parse(single).reusable is False
    assert "01" not in fields_of(build())


def test_it_strips_accents_and_keeps_case_in_names_and_cities():
    code = brcode_parse(build(name="José Araújo Saúde", city="São Paulo"))

    assert (code.name, code.city) == ("Jose Araujo Saude", "Sao Paulo")


def test_it_drops_characters_banks_do_not_accept_and_collapses_spaces():
    code = brcode_parse(build(name="  Clínica  «Bem-Estar» ★ Ltda.\n", city="Itaquaquecetuba"))

    assert code.name == "Clinica Bem-Estar Ltda."


def test_it_cuts_long_names_to_25_and_cities_to_15_characters():
    code = brcode_parse(
        build(name="Clínica Médica São José dos Campos", city="São José dos Campos")
    )

    assert code.name == "Clinica Medica Sao Jose d"
    assert len(code.name) == 25
    assert code.city == "Sao Jose dos Ca"
    assert len(code.city) == 15


def test_a_cut_never_ends_with_a_space():
    assert brcode_parse(build(name="Clinica Medica Sao Paulo Centro")).name == (
        "Clinica Medica Sao Paulo"
    )


@pytest.mark.parametrize("name", ["", "   ", "★★★", "日本"])
def test_it_refuses_a_name_with_nothing_left_after_normalising(name):
    with pytest.raises(ValueError, match="Enter the name"):
        build(name=name)


def test_it_refuses_an_empty_city():
    with pytest.raises(ValueError, match="Enter the city"):
        build(city="")


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("150"), "150.00"),
        (Decimal("150.005"), "150.01"),  # half a centavo goes up, not to the even centavo
        (Decimal("150.004"), "150.00"),
        (Decimal("0.125"), "0.13"),
        (Decimal("0.01"), "0.01"),
        (Decimal("1E+3"), "1000.00"),
        (42, "42.00"),
        (Decimal("9999999999.99"), "9999999999.99"),
    ],
)
def test_amounts_are_written_with_two_decimals_rounding_half_up(amount, text):
    payload = build(amount=amount)

    assert fields_of(payload)["54"] == text
    assert brcode_parse(payload).amount == Decimal(text)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (Decimal("0"), "must be positive"),
        (Decimal("-10.00"), "must be positive"),
        (Decimal("0.004"), "must be positive"),  # rounds to zero
        (Decimal("10000000000.00"), "too large"),
        (Decimal("1E+40"), "too large"),
        (Decimal("NaN"), "must be a number"),
        (Decimal("Infinity"), "must be a number"),
    ],
)
def test_it_refuses_amounts_a_pix_code_cannot_carry(amount, message):
    with pytest.raises(ValueError, match=message):
        build(amount=amount)


def test_it_refuses_a_float_amount():
    with pytest.raises(TypeError, match="Decimal"):
        build(amount=150.0)


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("529.982.247-25", CPF),
        (CPF, CPF),
        ("11.222.333/0001-81", CNPJ),
        ("12.ABC.345/01DE-35", "12ABC34501DE35"),  # alphanumeric CNPJ, from July 2026
        ("Financeiro@Clinica.com.BR", "financeiro@clinica.com.br"),
        ("+55 (11) 98765-4321", "+5511987654321"),
        ("(11) 98765-4321", "+5511987654321"),
        ("+5521987654321", "+5521987654321"),
        (BCB_KEY.upper(), BCB_KEY),
        (f" {BCB_KEY} ", BCB_KEY),
    ],
)
def test_it_writes_each_kind_of_key_as_the_dict_does(key, normalised):
    assert brcode_parse(build(key=key)).key == normalised


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Enter the PIX key"),
        ("52998224724", "not a valid CPF. A phone key is written with +55"),
        ("111.111.111-11", "not a valid CPF"),
        ("11222333000182", "not a valid CNPJ"),
        ("fulano@", "not a valid PIX e-mail key"),
        ("fulano @clinica.com", "not a valid PIX e-mail key"),
        ("a" * 70 + "@x.com.br", "up to 77 characters"),
        ("+1 212 555 0100", "not a valid PIX phone key"),
        ("+55 11 1234", "not a valid PIX phone key"),
        ("123e4567-e12b-12d1-a456", "is not a PIX key"),
        ("clinica", "is not a PIX key"),
    ],
)
def test_it_refuses_invalid_keys_saying_why(key, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build(key=key)


@pytest.mark.parametrize(
    "txid", ["A" * 26, "CONSULTA-123", "consulta 1", "pedido_1", "ação1", "**"]
)
def test_it_refuses_invalid_txids_saying_why(txid):
    with pytest.raises(ValueError, match="up to 25 letters and digits"):
        build(txid=txid)


def test_a_txid_of_25_alphanumerics_is_kept_and_stars_mean_none():
    assert brcode_parse(build(txid="A1" * 12 + "Z")).txid == "A1" * 12 + "Z"
    assert brcode_parse(build(txid="***")).txid == ""


def test_the_description_is_cut_so_the_account_field_stays_within_99_characters():
    long_key = "financeiro.clinica.cuidar@example.com.br"
    payload = build(key=long_key, description="Consulta de retorno — Dr. João " * 5)

    account = fields_of(payload)["26"]
    assert len(account) == 99
    description = brcode_parse(payload).description
    assert description == "Consulta de retorno Dr. Joao Cons"  # 99 - 22 - 40 - 4 characters


def test_a_key_that_fills_the_account_field_leaves_no_room_for_a_description():
    key = "a" * 64 + "@example.com"  # 76 characters: 2 left, not enough for "02LL" + text

    code = brcode_parse(build(key=key, description="Consulta"))

    assert code.key == key
    assert code.description == ""
    assert len(code.fields["26"]) == 98


# --- Property: whatever valid input goes in comes back out ----------------------------------
ACCENTED = {"á": "a", "ã": "a", "â": "a", "é": "e", "ê": "e", "í": "i", "ó": "o", "õ": "o"}
ACCENTED |= {"ú": "u", "ç": "c", "Á": "A", "É": "E", "Ç": "C", "Ú": "U"}
NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,&'/-"


def expected_text(value: str, limit: int) -> str:
    """An independent oracle for name/city normalisation, for this test's alphabet."""
    plain = "".join(ACCENTED.get(c, c) for c in value)
    return " ".join(plain.split())[:limit].rstrip()


names = st.text(alphabet=NAME_ALPHABET + "".join(ACCENTED), min_size=1, max_size=40).filter(
    lambda s: expected_text(s, 15)
)
keys = st.one_of(
    st.sampled_from([CPF, "11144477735", CNPJ, "11444777000161"]),
    st.uuids().map(str),
    st.from_regex(r"\A[a-z0-9._-]{1,30}@[a-z0-9]{1,20}\.com(\.br)?\Z"),
    st.from_regex(r"\A\+55(11|21|31|61)9[0-9]{8}\Z"),
)


@settings(max_examples=200, deadline=None)
@given(
    key=keys,
    name=names,
    city=names,
    amount=st.none()
    | st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999.99"), places=2),
    txid=st.from_regex(r"\A[A-Za-z0-9]{0,25}\Z"),
    description=st.text(alphabet=NAME_ALPHABET + "!?#:;", max_size=80),
    reusable=st.booleans(),
)
def test_whatever_valid_input_is_built_it_reads_back_normalised(
    key, name, city, amount, txid, description, reusable
):
    payload = brcode_build(
        key=key,
        name=name,
        city=city,
        amount=amount,
        txid=txid,
        description=description,
        reusable=reusable,
    )

    code = brcode_parse(payload)
    assert crc16(payload[:-4]) == payload[-4:]
    assert code.key == key
    assert code.name == expected_text(name, 25)
    assert code.city == expected_text(city, 15)
    assert code.amount == amount
    assert code.txid == txid
    assert code.reusable is reusable
    room = 99 - 22 - len(key) - 4
    assert code.description == " ".join(description.split())[: max(room, 0)].rstrip()
    assert len(code.fields["26"]) <= 99
    assert payload.isascii()


# --- QR image -------------------------------------------------------------------------------
def test_the_qr_code_uses_error_correction_level_m():
    qr = qr_code(BCB_EXAMPLE)

    assert qr.error == "M"
    assert not qr.is_micro


def test_the_svg_is_inline_sized_and_named_for_screen_readers():
    svg = qr_svg(BCB_EXAMPLE)

    assert svg.startswith("<svg ")
    assert svg.endswith("</svg>")
    assert "<?xml" not in svg
    assert 'role="img"' in svg
    assert 'aria-label="PIX QR code"' in svg
    assert "<title>PIX QR code</title>" in svg
    assert re.search(r'viewBox="0 0 (\d+) \1"', svg)
    assert "<path" in svg
    assert hasattr(svg, "__html__")  # safe to render in a template as is


def test_the_png_is_a_base64_data_uri_of_a_png_image():
    uri = qr_png_data_uri(BCB_EXAMPLE)

    assert uri.startswith("data:image/png;base64,")
    image = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert image.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_larger_scale_makes_a_larger_png():
    assert len(qr_png_data_uri(BCB_EXAMPLE, scale=10)) > len(qr_png_data_uri(BCB_EXAMPLE, 2))


@pytest.mark.parametrize("scale", [0, -1, 2.5, True])
def test_it_refuses_a_scale_that_is_not_a_positive_whole_number(scale):
    with pytest.raises(ValueError, match="scale"):
        qr_png_data_uri(BCB_EXAMPLE, scale=scale)


def test_it_refuses_to_draw_an_empty_payload():
    with pytest.raises(ValueError, match="empty"):
        qr_svg("")
