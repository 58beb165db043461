"""Patients talk to Sofia through Meta's signed WhatsApp webhook, end to end: book,
reschedule, cancel; a new number gives name and CPF and books; two conversations race
for one slot; a receptionist takes over and the assistant stays silent; replies to a
reminder work as before."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from clinic.choices import ReplyAction
from clinic.management.commands.seed_demo import cpf_with_check_digits
from clinic.messaging.assistant import services as conversations
from clinic.messaging.assistant.models import ConversationMessage, ConversationState
from clinic.messaging.models import ReceivedMessage
from clinic.models import Patient
from scheduling import services as scheduling
from scheduling.choices import AppointmentStatus, Channel
from scheduling.models import Appointment
from tests.assistant.conftest import conversation_of, sent_texts
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")


def local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=SP)


@pytest.fixture
def book(desk, django_capture_on_commit_callbacks):
    """Reception books (committed, so its events go out as they would)."""

    def make(patient, start):
        with django_capture_on_commit_callbacks(execute=True):
            return scheduling.appointment_book(
                clinic=desk["clinic"],
                patient=patient,
                professional=desk["ana"],
                service=desk["fisio"],
                start=start,
            )

    return make


def test_a_known_patient_books_by_conversation_with_the_date_echoed_back(desk, patient, say, sent):
    first = say("oi, qro marcar fisioterapia sexta de manha")

    assert "assistente virtual" in first
    assert "Com qual profissional?" in first and "Qualquer um" in first
    offer = say("com a Ana")
    assert "sexta, 13/03, 8h" in offer
    confirm = say("1")
    assert confirm.startswith("Confirma Fisioterapia com Dra. Ana Souza em sexta, 13/03, 8h?")
    done = say("sim")

    assert "agendada para sexta, 13/03, 8h" in done
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.start == local(2026, 3, 13, 8)
    assert appointment.professional == desk["ana"]
    assert appointment.booked_via == Channel.WHATSAPP
    # Every answer went out through Meta, in order.
    assert sent_texts(sent)[-1] == done
    assert conversation_of().dialogue == {}


def test_a_patient_reschedules_to_an_exact_time(desk, patient, say, book):
    appointment = book(patient, local(2026, 3, 13, 9))

    ask = say("preciso remarcar minha consulta")
    assert "sexta, 13/03, 9h" in ask
    confirm = say("segunda que vem às 10h")
    assert "Remarcar para Fisioterapia com Dra. Ana Souza em segunda, 16/03, 10h?" in confirm
    done = say("sim")

    assert "remarcada para segunda, 16/03, 10h" in done
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.RESCHEDULED
    new = Appointment.objects.get(patient=patient, status=AppointmentStatus.SCHEDULED)
    assert new.start == local(2026, 3, 16, 10)


def test_a_patient_cancels_after_confirming(desk, patient, say, book):
    appointment = book(patient, local(2026, 3, 16, 9))

    ask = say("quero cancelar")
    assert "Cancelar Fisioterapia de segunda, 16/03, 9h?" in ask
    done = say("sim")

    assert "Consulta cancelada" in done
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_via == Channel.WHATSAPP


def test_a_new_number_gives_name_and_a_valid_cpf_and_books(desk, say):
    phone = "+5511912345678"
    cpf = cpf_with_check_digits(__import__("random").Random(7))

    consent = say("quero agendar pilates amanhã 9h", phone=phone)
    assert "LGPD" in consent and "nome completo" in consent
    assert say("João da Silva", phone=phone).startswith("Obrigada! Agora o seu CPF")
    assert "não é válido" in say("123.456.789-00", phone=phone)
    confirm = say(cpf, phone=phone)

    assert "Confirma Pilates com Dra. Ana Souza em quinta, 12/03, 9h?" in confirm
    say("sim", phone=phone)
    patient = Patient.objects.get(cpf=cpf)
    assert patient.full_name == "João Da Silva" or patient.full_name == "João da Silva"
    assert Appointment.objects.get(patient=patient).start == local(2026, 3, 12, 9)
    assert conversation_of(phone).patient == patient


def test_two_conversations_racing_for_one_slot_book_once_and_the_loser_gets_the_next(
    desk, patient, say
):
    other = PatientFactory(clinic=desk["clinic"], full_name="Carla Dias", phone="+5511955554444")
    for phone in (patient.phone, other.phone):
        say("quero marcar pilates quinta as 9h", phone=phone)  # both offered 12/03 9h

    won = say("sim", phone=patient.phone)
    lost = say("sim", phone=other.phone)

    assert "agendada" in won
    assert lost.startswith("Esse horário acabou de ser ocupado")
    assert "quinta, 12/03, 9h\n" not in lost  # the taken time is not offered again
    assert Appointment.objects.filter(start=local(2026, 3, 12, 9)).count() == 1
    assert "2. quinta, 12/03, 10h\n" in lost  # the nearest free times that day
    # The loser picks one of them and books it.
    say("2", phone=other.phone)
    say("sim", phone=other.phone)
    assert Appointment.objects.get(patient=other).start == local(2026, 3, 12, 10)


def test_a_receptionist_takes_over_and_the_assistant_stays_silent(
    desk, patient, say, receptionist_a
):
    say("oi")
    conversation = conversation_of()
    conversations.conversation_take_over(conversation=conversation, by=receptionist_a)

    assert say("quero marcar uma consulta") is None
    received = ReceivedMessage.objects.order_by("-pk").first()
    assert received.needs_reply is True
    conversations.conversation_hand_back(conversation=conversation, by=receptionist_a)
    assert "Qual serviço" in say("quero marcar uma consulta")


def test_a_reply_to_a_reminder_still_confirms_with_the_assistant_on(desk, patient, say, book):
    appointment = book(patient, local(2026, 3, 13, 9))

    say("1")

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED
    received = ReceivedMessage.objects.order_by("-pk").first()
    assert received.action == ReplyAction.CONFIRMED
    # On the conversation's timeline too.
    assert ConversationMessage.objects.filter(conversation=conversation_of()).count() == 2


def test_with_the_assistant_off_nothing_answers_and_reception_sees_it(desk, patient, say):
    desk["clinic"].assistantsettings_set.update(enabled=False) if hasattr(
        desk["clinic"], "assistantsettings_set"
    ) else None
    from clinic.messaging.assistant.models import AssistantSettings

    AssistantSettings.objects.filter(clinic=desk["clinic"]).update(enabled=False)

    assert say("quero marcar") is None
    received = ReceivedMessage.objects.order_by("-pk").first()
    assert (received.action, received.needs_reply) == (ReplyAction.NONE, True)
    assert conversation_of().state == ConversationState.ASSISTANT
