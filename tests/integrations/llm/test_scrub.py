"""Minimal data to a model: no CPF, phone, e-mail or long number, only allowed context."""

import pytest
import responses

from integrations.llm import extract, scrub, scrub_context

from .conftest import OPENAI_URL, recorded

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("meu cpf é 123.456.789-09", "123.456.789-09"),
        ("cpf 12345678909 pfv", "12345678909"),
        ("cpf 123 456 789 09", "123 456 789 09"),
        ("cpf 123.456.789 09", "123.456.789 09"),
        ("me liga no (11) 98765-4321", "98765-4321"),
        ("whats +55 11 98765-4321", "98765-4321"),
        ("fixo 11 3333-4444", "3333-4444"),
        ("manda pra maria.silva+clinica@gmail.com", "maria.silva"),
        ("meu cartão do sus 898 0012 3456 7890", "3456"),
    ],
)
def test_it_removes_what_identifies_a_person(text, secret):
    assert secret not in scrub(text)


def test_it_keeps_dates_times_and_prices():
    text = "pode ser dia 12/03/2027 às 15h30? vi que custa R$ 1.200,50, ou 150 reais"

    assert scrub(text) == text


def test_only_the_allowed_context_leaves():
    context = {
        "today": "2026-12-06 (domingo)",
        "services": ["Fisioterapia", "Pilates"],
        "patient_name": "Maria Souza",
        "cpf": "123.456.789-09",
        "diagnosis": "lombalgia",
        "record": {"notes": "dor lombar"},
        "expecting": "day",
        "offered_slots": ["1) sex 11/12 9h", "2) sex 11/12 14h"],
    }

    assert scrub_context(context) == {
        "today": "2026-12-06 (domingo)",
        "services": ["Fisioterapia", "Pilates"],
        "expecting": "day",
        "offered_slots": ["1) sex 11/12 9h", "2) sex 11/12 14h"],
    }


def test_the_request_a_model_receives_holds_no_cpf_and_no_clinical_context(
    net, clinic_a, llm_account
):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_tool_call.json"))

    extract(
        clinic_a,
        "sou a Ana, cpf 529.982.247-25, fone 11 91234-5678, quero marcar",
        context={"diagnosis": "hérnia de disco", "patient_name": "Ana Lima", "today": "2026-12-06"},
    )

    body = net.calls[0].request.body.decode()
    for leaked in ("529.982.247-25", "91234-5678", "hérnia", "Ana Lima"):
        assert leaked not in body
    assert "[CPF]" in body
