import random

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from clinic.management.commands.seed_demo import cnpj_with_check_digits, cpf_with_check_digits
from clinic.validators import (
    cnpj_normalize,
    cnpj_validate,
    cpf_format,
    cpf_normalize,
    cpf_validate,
    phone_format,
    phone_normalize,
)


@pytest.mark.parametrize("typed", ["529.982.247-25", "52998224725", " 529 982 247 25 "])
def test_it_accepts_a_cpf_typed_any_way(typed):
    cpf_validate(typed)
    assert cpf_normalize(typed) == "52998224725"


@pytest.mark.parametrize(
    "typed", ["529.982.247-26", "111.111.111-11", "000.000.000-00", "123", "abc", "5299822472a"]
)
def test_it_refuses_an_invalid_cpf(typed):
    with pytest.raises(ValidationError) as error:
        cpf_validate(typed)
    assert error.value.code == "invalid_cpf"


def test_junk_does_not_normalise_to_an_empty_cpf():
    # An empty CPF is "not informed"; junk must stay junk so validation reports it.
    assert cpf_normalize("abc") == "abc"


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_demo_cpfs_are_valid(seed):
    cpf = cpf_with_check_digits(random.Random(seed))
    cpf_validate(cpf)
    assert len(cpf) == 11


def test_it_formats_a_cpf():
    assert cpf_format("52998224725") == "529.982.247-25"


@pytest.mark.parametrize(
    "typed", ["11.222.333/0001-81", "11222333000181", "12.ABC.345/01DE-35", "12abc34501de35"]
)
def test_it_accepts_numeric_and_alphanumeric_cnpj(typed):
    cnpj_validate(typed)  # raises ValidationError when refused
    assert len(cnpj_normalize(typed)) == 14


def test_alphanumeric_cnpj_is_stored_upper_case():
    assert cnpj_normalize("12.abc.345/01de-35") == "12ABC34501DE35"


@pytest.mark.parametrize("typed", ["11.222.333/0001-82", "00000000000000", "1122233300018"])
def test_it_refuses_an_invalid_cnpj(typed):
    with pytest.raises(ValidationError):
        cnpj_validate(typed)


def test_demo_cnpj_generator_makes_valid_cnpjs():
    cnpj = cnpj_with_check_digits("112223330001")
    cnpj_validate(cnpj)  # raises ValidationError when refused
    assert cnpj == "11222333000181"


@pytest.mark.parametrize(
    "typed",
    ["(11) 98765-4321", "11 98765 4321", "+55 11 98765-4321", "5511987654321"],
)
def test_it_normalises_brazilian_mobiles_to_e164(typed):
    assert phone_normalize(typed) == "+5511987654321"


def test_it_keeps_foreign_numbers_with_their_country_code():
    assert phone_normalize("+351 912 345 678") == "+351912345678"


@pytest.mark.parametrize("typed", ["123", "(11) 1234", "not a phone", ""])
def test_it_refuses_an_invalid_phone(typed):
    with pytest.raises(ValidationError):
        phone_normalize(typed)


def test_it_shows_brazilian_phones_in_national_format():
    assert phone_format("+5511987654321") == "(11) 98765-4321"
