"""What Sofia answers besides booking: safety first (emergency, suicide risk, clinical
questions), prices, package balance, paying by PIX, address and hours, a person on request,
several patients on one phone, a loop handed over, rate limits, WhatsApp titles ≤ 24."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import PatientPackage
from clinic.choices import ConsentPurpose, ConsentStatus
from clinic.messaging.assistant import services as conversations
from clinic.messaging.assistant.engine import CLINICAL_TEXT, TITLE_MAX, title
from clinic.messaging.assistant.models import ConversationMessage, ConversationState
from clinic.messaging.models import ReceivedMessage
from clinic.models import Consent
from tests.assistant.conftest import PHONE, conversation_of
from tests.billing.factories import PackageFactory, PaymentFactory
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db

EMERGENCIES = [
    "estou com uma dor forte no peito",
    "meu pai desmaiou agora",
    "nao consigo respirar direito",
    "falta de ar muito forte",
    "acho que ta tendo um AVC, a boca ficou torta",
    "minha filha esta convulsionando",
    "socorro, meu marido ta sangrando muito",
]
SUICIDE = [
    "nao quero mais viver",
    "to pensando em me matar",
    "tenho vontade de morrer",
    "penso em suicidio",
]
CLINICAL = [
    "posso tomar dipirona com o remedio que a doutora passou?",
    "quantas gotas eu dou pro meu filho?",
    "estou com febre desde ontem, o que pode ser?",
    "qual remedio pra dor nas costas?",
    "é normal sair sangue depois da sessão?",
    "o resultado do meu exame deu alterado, é grave?",
    "sera que eu tenho tendinite?",
]


@pytest.mark.parametrize("text", EMERGENCIES)
def test_an_emergency_gets_samu_at_once_and_alerts_the_clinic(desk, patient, say, text):
    answer = say(text)

    assert "SAMU 192" in answer
    conversation = conversation_of()
    assert conversation.alert is True
    assert conversation.state == ConversationState.WAITING
    assert ReceivedMessage.objects.order_by("-pk").first().needs_reply is True


@pytest.mark.parametrize("text", SUICIDE)
def test_suicide_risk_gets_cvv_188_and_samu(desk, patient, say, text):
    answer = say(text)

    assert "188" in answer and "CVV" in answer and "192" in answer
    assert conversation_of().alert is True


@pytest.mark.parametrize("text", CLINICAL)
def test_a_clinical_question_gets_the_fixed_kind_answer_and_a_person(desk, patient, say, text):
    answer = say(text)

    assert CLINICAL_TEXT in answer
    assert conversation_of().state == ConversationState.WAITING
    assert conversation_of().alert is False


def test_safety_is_decided_even_in_the_middle_of_a_booking(desk, patient, say):
    say("quero marcar fisioterapia")
    assert "SAMU 192" in say("to com dor no peito agora")
    assert conversation_of().dialogue == {}


def test_the_assistant_says_it_is_virtual_once(desk, patient, say):
    assert "assistente virtual" in say("oi")
    assert "assistente virtual" not in say("qual o endereço?")


def test_prices_come_from_the_services(desk, patient, say):
    answer = say("quanto custa?")

    assert "Fisioterapia — R$ 150,00" in answer
    assert "Pilates — R$ 90,00" in answer
    assert "Pilates: R$ 90,00 (60 min)" in say("qual o valor do pilates?")


def test_address_and_hours(desk, patient, say):
    answer = say("onde fica a clinica?")

    assert "Rua das Flores, 100" in answer
    assert "seg a sex, 8h às 12h" in answer


def test_the_package_balance_is_the_patients(desk, patient, say):
    package = PackageFactory(clinic=desk["clinic"], name="Fisio 10 sessões")
    now = timezone.now()
    PatientPackage.objects.create(
        clinic=desk["clinic"],
        patient=patient,
        package=package,
        sessions_total=10,
        sessions_used=3,
        price=Decimal("900"),
        purchased_at=now,
        expires_at=now + timedelta(days=90),
    )

    answer = say("quantas sessoes ainda tenho no meu pacote?")

    assert "Fisio 10 sessões: 7 sessão(ões) restante(s)" in answer


def test_pay_sends_the_open_charges_pix_code_and_link(desk, patient, say):
    PaymentFactory(
        clinic=desk["clinic"],
        patient=patient,
        amount=Decimal("150.00"),
        description="Consulta 05/03",
        pix_payload="00020126580014BR.GOV.BCB.PIX0136abc",
        invoice_url="https://pay.example/i/123",
    )

    answer = say("me manda o pix")

    assert "Consulta 05/03: R$ 150,00" in answer
    assert answer.endswith("00020126580014BR.GOV.BCB.PIX0136abc")  # alone, easy to copy
    assert "https://pay.example/i/123" in answer


def test_with_no_open_charge_it_says_so(desk, patient, say):
    assert "Não encontrei cobranças em aberto" in say("quero pagar")


def test_asking_for_a_person_hands_over(desk, patient, say):
    say("quero falar com uma atendente")

    assert conversation_of().state == ConversationState.WAITING
    assert say("oi?") is None  # silent until someone answers or hands back


def test_several_patients_on_one_phone_are_asked_which(desk, say):
    mother = PatientFactory(clinic=desk["clinic"], full_name="Ana Paula Reis", phone=PHONE)
    PatientFactory(clinic=desk["clinic"], full_name="Pedro Reis", phone=PHONE)

    ask = say("quais minhas consultas?")

    assert "Com quem estou falando?" in ask and "1. Ana Paula Reis" in ask
    assert "não tem consultas marcadas" in say("1")
    assert conversation_of().patient == mother


def test_a_conversation_that_loops_goes_to_a_person(desk, patient, say):
    say("quero marcar")  # which service?
    say("hmm")
    say("sei la")
    answer = say("???")

    assert "chamar alguém da equipe" in answer
    assert conversation_of().state == ConversationState.WAITING
    assert conversation_of().handover_reason == "loop"


def test_opting_out_in_words_revokes_the_consents(desk, patient, say):
    say("não quero mais receber mensagens de vcs")

    latest = Consent.objects.filter(patient=patient, purpose=ConsentPurpose.UTILITY).last()
    assert latest.status == ConsentStatus.REVOKED


def test_over_the_rate_limit_the_assistant_is_silent(desk, patient, say, monkeypatch):
    monkeypatch.setattr(conversations, "RATE_PER_CONVERSATION_MINUTE", 2)
    say("oi")
    say("oi")
    say("oi")

    assert say("oi") is None
    assert ConversationMessage.objects.filter(intent="rate_limited").exists()


def test_titles_are_at_most_24_characters():
    assert title("Sessão de fisioterapia pélvica avançada") == "Sessão de fisioterapia…"
    assert len(title("x" * 60)) == TITLE_MAX
    assert title("Pilates") == "Pilates"


def test_offered_options_fit_whatsapps_titles(desk, patient, say):
    desk["fisio"].name = "Fisioterapia uroginecológica pélvica"
    desk["fisio"].save()
    say("quero marcar")

    offered = ConversationMessage.objects.filter(direction="out").last().options
    assert offered and all(len(option) <= TITLE_MAX for option in offered)
