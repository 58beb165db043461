"""The assistant's knowledge base: entries found by patients' informal questions (no
accents, typos, abbreviations), only the clinic's own and active ones, on both retrieval
paths (PostgreSQL full-text + trigram; the Python scorer elsewhere), and cited back by a
model's answer."""

import pytest

from clinic.messaging import knowledge
from clinic.messaging.knowledge import (
    KnowledgeEntry,
    _search_python,
    knowledge_search,
    knowledge_snippets,
)
from integrations.llm import answer
from integrations.models import ProviderAccount

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(clinic_a):
    def entry(category, title, body, keywords=""):
        return KnowledgeEntry.objects.create(
            clinic=clinic_a, category=category, title=title, body=body, keywords=keywords
        )

    return {
        "payment": entry(
            "payment",
            "Formas de pagamento",
            "Aceitamos PIX, cartão de crédito e de débito e dinheiro. Não aceitamos cheque.",
            "pagar cartao pix credito debito",
        ),
        "cancellation": entry(
            "cancellation",
            "Política de cancelamento",
            "Cancelamentos e remarcações sem custo até 24 horas antes da consulta.",
            "desmarcar remarcar cancelar",
        ),
        "address": entry(
            "address",
            "Endereço e estacionamento",
            "Rua das Flores, 120, sala 3, Centro. Há estacionamento conveniado na esquina.",
            "onde fica localização",
        ),
        "insurance": entry(
            "faq",
            "Vocês aceitam convênio?",
            "Atendemos particular e emitimos recibo para reembolso do seu plano de saúde.",
            "plano de saude unimed amil reembolso",
        ),
    }


QUESTIONS = [
    ("vcs aceitam cartao de credito?", "payment"),
    ("da pra pagar no pix", "payment"),
    ("se eu desmarcar pago multa?", "cancellation"),
    ("qual a politica de cancelameto", "cancellation"),
    ("onde fica a clinica? tem estacionamento", "address"),
    ("qual o endereco", "address"),
    ("aceita unimed?", "insurance"),
    ("atende convenio", "insurance"),
]


def _titles(found):
    return [s.entry.title for s in found]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_the_python_scorer_finds_the_entry_a_patient_means(base, clinic_a, question, expected):
    entries = KnowledgeEntry.objects.for_clinic(clinic_a).filter(active=True)

    found = _search_python(entries, knowledge.words(question), 3)

    assert found, question
    assert found[0].entry == base[expected]
    assert all(0 < s.score <= 1 for s in found)


@pytest.mark.postgres
@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_postgres_full_text_search_finds_the_entry_a_patient_means(
    base, clinic_a, question, expected
):
    found = knowledge_search(clinic=clinic_a, question=question)

    assert found, question
    assert found[0].entry == base[expected]
    assert all(s.score > 0 for s in found)


@pytest.mark.parametrize("question", ["qual o wifi?", "bom dia", "???", ""])
def test_a_question_the_base_does_not_answer_finds_nothing(base, clinic_a, question):
    assert knowledge_search(clinic=clinic_a, question=question) == []


def test_it_never_returns_another_clinics_or_an_inactive_entry(base, clinic_a, clinic_b):
    KnowledgeEntry.objects.create(
        clinic=clinic_b, title="Formas de pagamento B", body="Só dinheiro", keywords="cartao"
    )
    base["payment"].active = False
    base["payment"].save(update_fields=["active"])

    found = knowledge_search(clinic=clinic_a, question="aceitam cartao de credito")

    assert base["payment"] not in [s.entry for s in found]
    assert all(s.entry.clinic_id == clinic_a.pk for s in found)
    assert knowledge_search(clinic=clinic_b, question="aceitam cartao")[0].entry.clinic == clinic_b


def test_it_returns_at_most_the_limit(base, clinic_a):
    found = knowledge_search(
        clinic=clinic_a, question="cartao cancelamento endereco convenio", limit=2
    )

    assert len(found) == 2


def test_it_reads_the_base_in_one_query(base, clinic_a, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        knowledge_search(clinic=clinic_a, question="aceitam cartao")


def test_a_models_answer_cites_the_entries_found(base, clinic_a):
    ProviderAccount.objects.create(clinic=clinic_a, kind="llm", provider="console")
    found = knowledge_search(clinic=clinic_a, question="se eu desmarcar pago multa?")

    reply = answer(clinic_a, "se eu desmarcar pago multa?", entries=knowledge_snippets(found))

    assert reply.cited_entry_ids == [base["cancellation"].pk]
    assert "24 horas" in reply.text


# --- Admin ----------------------------------------------------------------------------------
def test_staff_edit_only_their_clinics_entries(base, clinic_b, client_for, manager_a):
    other = KnowledgeEntry.objects.create(clinic=clinic_b, title="Wi-fi", body="senha 1234")
    client = client_for(manager_a)

    listing = client.get("/admin/messaging/knowledgeentry/")
    assert listing.status_code == 200
    assert "Política de cancelamento" in listing.content.decode()
    assert "Wi-fi" not in listing.content.decode()
    assert client.get(f"/admin/messaging/knowledgeentry/{other.pk}/change/").status_code in (
        302,
        404,
    )


def test_the_admin_search_box_finds_what_the_assistant_would(base, client_for, manager_a):
    client = client_for(manager_a)

    page = client.get("/admin/messaging/knowledgeentry/", {"q": "vcs aceitam cartao?"})

    content = page.content.decode()
    assert "Formas de pagamento" in content
    assert "Endereço e estacionamento" not in content


def test_the_changelist_reads_a_bounded_number_of_queries(
    base, client_for, manager_a, django_assert_max_num_queries
):
    client = client_for(manager_a)
    client.get("/admin/messaging/knowledgeentry/")  # warm the session and permissions

    with django_assert_max_num_queries(20):
        client.get("/admin/messaging/knowledgeentry/")


# --- The reply the assistant sends ------------------------------------------------------------
def test_without_a_model_the_best_entry_answers_as_it_is(base, clinic_a):
    reply = knowledge.knowledge_reply(clinic=clinic_a, question="vcs aceitam cartao de credito?")

    assert (reply.by, reply.cited_entry_ids) == ("rules", [base["payment"].pk])
    assert reply.text == base["payment"].body


def test_with_a_model_the_reply_is_its_grounded_answer(base, clinic_a):
    ProviderAccount.objects.create(clinic=clinic_a, kind="llm", provider="console")

    reply = knowledge.knowledge_reply(clinic=clinic_a, question="se eu desmarcar pago multa?")

    assert (reply.by, reply.provider) == ("llm", "console")
    assert reply.cited_entry_ids == [base["cancellation"].pk]


def test_a_model_failing_leaves_the_rules_answer(base, clinic_a, monkeypatch):
    ProviderAccount.objects.create(clinic=clinic_a, kind="llm", provider="console")
    monkeypatch.setattr(knowledge, "answer", lambda *args, **kwargs: None)

    reply = knowledge.knowledge_reply(clinic=clinic_a, question="qual o endereco")

    assert (reply.by, reply.cited_entry_ids) == ("rules", [base["address"].pk])


def test_a_question_the_base_does_not_answer_gets_no_reply(base, clinic_a):
    assert knowledge.knowledge_reply(clinic=clinic_a, question="qual a senha do wifi") is None


@pytest.mark.postgres
def test_postgres_a_weak_match_is_not_sent_as_the_rules_answer(base, clinic_a):
    # "atendem sábado" shares only a near word with the insurance entry's title.
    assert knowledge.knowledge_reply(clinic=clinic_a, question="vcs atendem sabado") is None


@pytest.mark.postgres
def test_postgres_without_a_model_the_best_entry_answers(base, clinic_a):
    reply = knowledge.knowledge_reply(clinic=clinic_a, question="tem estacionamento?")

    assert (reply.by, reply.cited_entry_ids) == ("rules", [base["address"].pk])
