"""Reception sees a conversation's timeline and takes it over with one click; managers
switch the assistant on. Queries of the list are bounded."""

import pytest
from django.urls import reverse

from clinic.messaging.assistant import services as conversations
from clinic.messaging.assistant.models import (
    AssistantSettings,
    Conversation,
    ConversationMessage,
    ConversationState,
)
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db


def conversation(clinic, n=0):
    found = Conversation.objects.create(
        clinic=clinic,
        channel="whatsapp",
        phone=f"+55119{81234560 + n}",
        patient=PatientFactory(clinic=clinic),
    )
    for text in ("quero marcar", "Qual serviço?"):
        ConversationMessage.objects.create(
            clinic=clinic,
            conversation=found,
            direction="in",
            author="contact",
            text=f"{text} #{n}",
        )
    return found


def test_reception_reads_the_timeline_and_takes_over_in_one_click(
    clinic_a, receptionist_a, client_for
):
    client = client_for(receptionist_a)
    talk = conversation(clinic_a)
    page = reverse("admin:messaging_conversation_change", args=[talk.pk])

    shown = client.get(page)
    taken = client.post(reverse("admin:messaging_conversation_take_over", args=[talk.pk]))

    assert shown.status_code == 200
    assert "quero marcar #0" in shown.content.decode()
    assert "Assumir" in shown.content.decode() or "Take over" in shown.content.decode()
    assert taken.status_code == 302
    talk.refresh_from_db()
    assert talk.state == ConversationState.HUMAN
    assert talk.taken_over_by == receptionist_a


def test_reception_writes_in_the_conversation_and_it_is_queued(
    clinic_a, receptionist_a, client_for, django_capture_on_commit_callbacks
):
    talk = conversation(clinic_a)
    client = client_for(receptionist_a)

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            reverse("admin:messaging_conversation_reply", args=[talk.pk]),
            {"text": "Oi! Aqui é a Júlia, da recepção."},
        )

    reply = ConversationMessage.objects.filter(conversation=talk, direction="out").get()
    assert (reply.author, reply.sent_by, reply.status) == ("staff", receptionist_a, "queued")
    talk.refresh_from_db()
    assert talk.state == ConversationState.HUMAN


def test_a_take_over_is_a_post(clinic_a, receptionist_a, client_for):
    talk = conversation(clinic_a)

    answer = client_for(receptionist_a).get(
        reverse("admin:messaging_conversation_take_over", args=[talk.pk])
    )

    assert answer.status_code == 405
    talk.refresh_from_db()
    assert talk.state == ConversationState.ASSISTANT


def test_the_list_reads_a_bounded_number_of_queries(
    clinic_a, receptionist_a, client_for, django_assert_max_num_queries
):
    for n in range(15):
        conversation(clinic_a, n)
    client = client_for(receptionist_a)

    with django_assert_max_num_queries(20):
        listed = client.get(reverse("admin:messaging_conversation_changelist"))

    assert listed.status_code == 200


def test_a_manager_switches_the_assistant_on(clinic_a, manager_a, client_for):
    client = client_for(manager_a)

    added = client.post(
        reverse("admin:messaging_assistantsettings_add"),
        {
            "clinic": clinic_a.pk,
            "enabled": "on",
            "name": "Sofia",
            "consent_text": "Seus dados…",
            "hours_text": "seg a sex",
            "human_timeout_hours": 12,
            "quiet_start": "21:00",
            "quiet_end": "08:00",
        },
    )

    assert added.status_code == 302, added.content.decode()[:2000]
    assert AssistantSettings.objects.get(clinic=clinic_a).enabled is True
    assert conversations.assistant_is_on(clinic_a)
