"""Messaging in the admin: the clinic's texts with a preview, the messages sent and
received, the unanswered inbox and the patient's timeline — each limited to the clinic."""

import pytest
from django.urls import reverse

from clinic import services
from clinic.choices import (
    ConsentPurpose,
    ConsentStatus,
    ContactChannel,
    MessageStatus,
)
from clinic.messaging.models import MessageTemplate, OutboundMessage, ReceivedMessage
from clinic.messaging.services import message_send
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db


def received(clinic, patient=None, text="Oi, tudo bem?", **fields):
    fields.setdefault("needs_reply", True)
    return ReceivedMessage.objects.create(
        clinic=clinic,
        patient=patient,
        channel="whatsapp",
        from_address=patient.phone if patient else "+5521999990000",
        text=text,
        source_key=f"test:{ReceivedMessage.objects.count()}:{text}",
        **fields,
    )


def sent_to(patient, key="k", text="Olá"):
    return message_send(
        clinic=patient.clinic,
        patient=patient,
        template="mensagem_livre",
        context={"text": text},
        idempotency_key=key,
    )


# --- Templates ------------------------------------------------------------------------------
def test_a_manager_rewords_a_template_and_an_unknown_variable_is_a_form_error(
    client_for, manager_a, clinic_a
):
    client = client_for(manager_a)
    url = reverse("admin:messaging_messagetemplate_add")

    page = client.get(url, {"name": "lembrete_consulta"})
    assert page.status_code == 200
    assert "Lembramos da sua consulta" in page.content.decode()  # starts from the default

    refused = client.post(
        url,
        {
            "name": "lembrete_consulta",
            "body": "Oi {{ cpf }}",
            "meta_language": "pt_BR",
            "is_active": "on",
        },
    )
    assert refused.status_code == 200
    assert "{{ cpf }}" in refused.content.decode()
    assert not MessageTemplate.objects.exists()

    saved = client.post(
        url,
        {
            "name": "lembrete_consulta",
            "body": "Oi {{ first_name }}, até {{ date }}!",
            "meta_language": "pt_BR",
            "is_active": "on",
        },
    )
    assert saved.status_code == 302
    assert MessageTemplate.objects.get().clinic == clinic_a


def test_the_live_preview_renders_sample_data_or_says_what_is_wrong(client_for, manager_a):
    client = client_for(manager_a)
    url = reverse("admin:messaging_messagetemplate_preview")

    good = client.post(url, {"name": "confirmacao", "body": "Oi {{ first_name }} às {{ time }}"})
    assert good.json() == {"errors": [], "body": "Oi Maria às 14:30", "subject": ""}
    bad = client.post(url, {"name": "confirmacao", "body": "{{ cpf }}"}).json()
    assert bad["body"] == "" and "{{ cpf }}" in bad["errors"][0]


def test_a_receptionist_reads_the_texts_but_cannot_change_them(client_for, receptionist_a):
    client = client_for(receptionist_a)

    assert client.get(reverse("admin:messaging_messagetemplate_changelist")).status_code == 200
    assert client.get(reverse("admin:messaging_messagetemplate_add")).status_code == 403
    assert client.post(reverse("admin:messaging_messagetemplate_preview"), {}).status_code == 403


def test_the_template_list_shows_the_catalogue_and_hides_other_clinics_texts(
    client_for, manager_a, clinic_b
):
    MessageTemplate.objects.create(clinic=clinic_b, name="aniversario", body="Parabéns da Beta")

    page = client_for(manager_a).get(reverse("admin:messaging_messagetemplate_changelist"))

    html = page.content.decode()
    assert "lembrete_consulta_v2" in html and "codigo_acesso" in html
    assert "Parabéns da Beta" not in html
    assert page.context["cl"].result_count == 0


def test_marking_answered_takes_messages_out_of_the_inbox(
    client_for, receptionist_a, clinic_a, patient_a
):
    message = received(clinic_a, patient_a)

    response = client_for(receptionist_a).post(
        reverse("admin:messaging_receivedmessage_changelist"),
        {"action": "mark_answered", "_selected_action": [message.pk]},
    )

    assert response.status_code == 302
    message.refresh_from_db()
    assert message.answered_by == receptionist_a
    assert not message.is_unanswered


def test_messages_sent_are_read_only(client_for, receptionist_a, patient_a):
    message = sent_to(patient_a)
    client = client_for(receptionist_a)

    page = client.get(reverse("admin:messaging_outboundmessage_change", args=[message.pk]))
    assert page.status_code == 200
    assert client.get(reverse("admin:messaging_outboundmessage_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:messaging_outboundmessage_delete", args=[message.pk])
        ).status_code
        == 403
    )


def test_the_changelists_run_a_constant_number_of_queries(
    client_for, receptionist_a, clinic_a, django_assert_max_num_queries
):
    client = client_for(receptionist_a)
    for index in range(3):
        patient = PatientFactory(clinic=clinic_a)
        received(clinic_a, patient)
        sent_to(patient, key=f"few-{index}")
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("admin:messaging_receivedmessage_changelist"))
        client.get(reverse("admin:messaging_outboundmessage_changelist"))
    for index in range(20):
        patient = PatientFactory(clinic=clinic_a)
        received(clinic_a, patient)
        sent_to(patient, key=f"many-{index}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("admin:messaging_receivedmessage_changelist"))
        client.get(reverse("admin:messaging_outboundmessage_changelist"))


# --- Timeline -------------------------------------------------------------------------------
def test_the_timeline_shows_both_directions_and_a_reply_answers_the_inbox(
    client_for, receptionist_a, clinic_a, django_capture_on_commit_callbacks
):
    patient = PatientFactory(clinic=clinic_a, phone="+5511981234567")
    services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    question = received(clinic_a, patient, text="Vocês atendem sábado?")
    sent_to(patient, key="lembrete", text="Lembrete da consulta")
    client = client_for(receptionist_a)
    url = reverse("admin:messaging_patient_messages", args=[patient.pk])

    page = client.get(url)
    html = page.content.decode()
    assert "Vocês atendem sábado?" in html and "Lembrete da consulta" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"text": "Atendemos sim, das 8h às 12h."})
    assert response.status_code == 302
    answer = OutboundMessage.objects.get(sent_by=receptionist_a)
    assert answer.body == "Atendemos sim, das 8h às 12h."
    assert answer.in_reply_to == question
    assert answer.status == "sent"
    question.refresh_from_db()
    assert not question.is_unanswered


def test_the_patient_page_links_to_the_timeline(client_for, receptionist_a, patient_a):
    page = client_for(receptionist_a).get(
        reverse("admin:clinic_patient_change", args=[patient_a.pk])
    )
    assert reverse("admin:messaging_patient_messages", args=[patient_a.pk]) in page.content.decode()


def test_the_dashboard_counts_unanswered_messages(client_for, receptionist_a, clinic_a, patient_a):
    received(clinic_a, patient_a)
    received(clinic_a, patient_a, text="outra")

    page = client_for(receptionist_a).get(reverse("admin:index"))

    assert page.context["dashboard"]["unanswered_messages"] == 2
    assert "unanswered" in page.content.decode() or "sem resposta" in page.content.decode()


# --- Uncertain sends ------------------------------------------------------------------------
def test_reception_sees_how_many_messages_may_not_have_arrived_in_its_clinic_only(
    client_for, receptionist_a, patient_a, patient_b
):
    for key, patient in (("u1", patient_a), ("u2", patient_a), ("u3", patient_b)):
        message = sent_to(patient, key=key)
        OutboundMessage.objects.filter(pk=message.pk).update(status=MessageStatus.UNCERTAIN)
    client = client_for(receptionist_a)

    for name in ("outboundmessage", "receivedmessage"):  # messages sent, and the inbox
        page = client.get(reverse(f"admin:messaging_{name}_changelist")).content.decode()
        assert "2 mensagens podem não ter chegado" in page
        assert "?status__exact=uncertain" in page

    listed = client.get(
        reverse("admin:messaging_outboundmessage_changelist"), {"status__exact": "uncertain"}
    )
    assert listed.context["cl"].result_count == 2
