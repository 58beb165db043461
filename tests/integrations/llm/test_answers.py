"""Answers from the knowledge base: grounded in the entries given, citing them, and thrown
away when the model invents a time or a price (recorded responses that do so)."""

from decimal import Decimal

import pytest
import responses

from integrations.llm import KnowledgeSnippet, answer, invented, reject_invented

from .conftest import ANTHROPIC_URL, GEMINI_URL, OPENAI_URL, recorded, sent

pytestmark = pytest.mark.django_db

HOURS = KnowledgeSnippet(id=7, title="Horário", text="Atendemos de segunda a sexta, das 8h às 18h.")
CANCEL = KnowledgeSnippet(
    id=9,
    title="Cancelamento",
    text="Cancelamentos sem custo até 24 horas antes; depois disso cobramos R$ 50,00.",
)
PAYMENT = KnowledgeSnippet(id=11, title="Pagamento", text="Aceitamos PIX, cartão e dinheiro.")


def test_an_answer_cites_the_entries_it_used(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    net.add(responses.POST, GEMINI_URL, json=recorded("gemini_answer.json", ENTRY_ID=9))

    reply = answer(clinic_a, "se eu desmarcar pago?", entries=[HOURS, CANCEL])

    assert reply.text.startswith("Cancelamentos sem custo")
    assert reply.cited_entry_ids == [9]
    prompt = sent(net.calls[0])["contents"][0]["parts"][0]["text"]
    assert "[#7] Horário: Atendemos de segunda a sexta" in prompt
    assert "[#9] Cancelamento:" in prompt


def test_a_reply_naming_a_time_not_offered_is_refused(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(
        responses.POST, OPENAI_URL, json=recorded("openai_answer_invents_time.json", ENTRY_ID=7)
    )

    # "das 8h às 18h" is in the entry; "às 15h" tomorrow was offered by nobody.
    assert answer(clinic_a, "vcs abrem amanha?", entries=[HOURS]) is None


def test_the_same_time_is_accepted_when_availability_offered_it(net, clinic_a, llm_account):
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(
        responses.POST, OPENAI_URL, json=recorded("openai_answer_invents_time.json", ENTRY_ID=7)
    )

    reply = answer(clinic_a, "vcs abrem amanha?", entries=[HOURS], offered_times=["15:00"])

    assert reply is not None and reply.cited_entry_ids == [7]


def test_a_reply_naming_a_price_not_in_the_catalogue_is_refused(net, clinic_a, llm_account):
    llm_account("anthropic", model="claude-3-5-haiku-latest")
    net.add(
        responses.POST,
        ANTHROPIC_URL,
        json=recorded("anthropic_answer_invents_price.json", ENTRY_ID=11),
    )

    assert (
        answer(clinic_a, "qto é a avaliação?", entries=[PAYMENT], known_prices=[Decimal("120")])
        is None
    )


def test_a_reply_citing_an_entry_it_was_not_given_is_refused(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    net.add(responses.POST, GEMINI_URL, json=recorded("gemini_answer.json", ENTRY_ID=404))

    assert answer(clinic_a, "posso cancelar?", entries=[CANCEL]) is None


def test_no_entries_means_no_question_to_a_model(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")

    assert answer(clinic_a, "qual o wifi?", entries=[]) is None
    assert len(net.calls) == 0


def test_an_unanswerable_question_is_left_to_the_rules(net, clinic_a, llm_account):
    llm_account("gemini", model="gemini-2.0-flash")
    cannot = recorded("gemini_answer.json", ENTRY_ID=9)
    cannot["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] = {
        "answerable": False,
        "text": "",
        "cited_entry_ids": [],
    }
    net.add(responses.POST, GEMINI_URL, json=cannot)

    assert answer(clinic_a, "tem estacionamento?", entries=[CANCEL]) is None


@pytest.mark.parametrize(
    "text",
    [
        "Tenho um horário às 15h para você.",
        "Pode ser 9h30?",
        "Que tal 10:15 amanhã?",
        "Marquei para as 11, tudo bem?",
        "Fica para 16 horas.",
    ],
)
def test_reject_invented_refuses_a_time_not_offered(text):
    assert reject_invented(text, offered_times=["08:00", "14:00"], known_prices=[]) is None


@pytest.mark.parametrize(
    "text",
    [
        "A consulta custa R$ 180,00.",
        "Sai por R$180.",
        "O pacote fica R$ 1.350,00.",
        "São 90 reais.",
    ],
)
def test_reject_invented_refuses_a_price_not_in_the_catalogue(text):
    assert reject_invented(text, offered_times=[], known_prices=["150.00", Decimal("1200")]) is None


def test_reject_invented_keeps_a_reply_that_only_repeats_what_it_was_given():
    text = "Tenho sexta, 11/12, às 9h ou 14h30. A sessão custa R$ 150,00 (pacote: R$ 1.200,00)."

    assert (
        reject_invented(
            text, offered_times=["09:00", "14:30"], known_prices=[Decimal("150"), "1200.00"]
        )
        == text
    )
    assert invented(text, offered_times=["09:00"], known_prices=["150"]) == [
        "14:30",
        "R$ 1200.00",
    ]


def test_dates_and_quantities_are_not_read_as_times_or_prices():
    text = "No dia 12/03 temos 2 a 5 sessões; são 10 sessões no pacote."

    assert reject_invented(text, offered_times=[], known_prices=[]) == text
