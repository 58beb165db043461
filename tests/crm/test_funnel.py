"""The funnel: one lead per person whatever the channel, conversion by the scheduling
events, the timeline, the state machine, round-robin owners."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.choices import MembershipRole
from crm import selectors, services
from crm.choices import InteractionKind, LeadSource, LeadStatus
from crm.exceptions import InvalidLeadTransition
from crm.models import Interaction, Lead
from integrations.models import Event, ProviderAccount
from scheduling import services as scheduling
from tests.clinic.factories import MembershipFactory, PatientFactory, ProfessionalFactory
from tests.scheduling.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def whatsapp_from(client, account, phone, text, message_id):
    url = reverse("webhooks:receive", args=[account.provider, account.webhook_token])
    body = {"id": message_id, "from": phone, "to": "+5511888880000", "text": text}
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def whatsapp_a(clinic_a):
    return ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="console")


def test_form_then_whatsapp_then_booking_is_one_converted_lead_with_its_timeline(
    client, clinic_a, form_url, whatsapp_a, receptionist_a, django_capture_on_commit_callbacks
):
    # 1. The form on the clinic's site. Each step commits, as each request does in
    # production: an event published in an uncommitted step would hold back the outbox's
    # dispatch of the next one (one dispatch per transaction).
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            form_url + "?utm_source=instagram",
            {
                "name": "Joana Prado",
                "phone": "(11) 98765-4321",
                "utm_source": "instagram",
                "marketing_consent": "on",
            },
        )
    # 2. WhatsApp from the same number, written the 8-digit way WhatsApp sometimes reports.
    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_from(client, whatsapp_a, "+551187654321", "Oi, quero marcar", "w1")
    with django_capture_on_commit_callbacks(execute=True):  # redelivered: nothing more
        whatsapp_from(client, whatsapp_a, "+551187654321", "Oi, quero marcar", "w1")
    lead = Lead.objects.get()
    assert lead.source == LeadSource.INSTAGRAM  # first touch kept
    assert lead.interaction_count == 2

    # 3. Reception registers and books her; 4. she comes.
    with django_capture_on_commit_callbacks(execute=True):
        patient = services.lead_patient_create(lead=lead, by=receptionist_a)
        service = ServiceFactory(clinic=clinic_a)
        professional = ProfessionalFactory(clinic=clinic_a)
        appointment = scheduling.appointment_book(
            clinic=clinic_a,
            patient=patient,
            professional=professional,
            service=service,
            start=timezone.now() + timedelta(days=1),
            booked_by=receptionist_a,
        )
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SCHEDULED
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.appointment_check_in(appointment=appointment)
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.appointment_start(appointment=appointment)
        scheduling.appointment_complete(appointment=appointment)

    lead.refresh_from_db()
    assert Lead.objects.count() == 1
    assert lead.status == LeadStatus.CONVERTED and lead.converted_at
    assert lead.patient == patient
    assert Event.objects.filter(event_type="lead.converted").count() == 1
    recorded = set(Interaction.objects.filter(lead=lead).values_list("kind", flat=True))
    assert {
        InteractionKind.FORM,
        InteractionKind.MESSAGE,
        InteractionKind.BOOKING,
        InteractionKind.ATTENDED,
        InteractionKind.STAGE,
    } <= recorded
    # The WhatsApp message shows once on the timeline, not once per app.
    timeline = selectors.timeline(clinic=clinic_a, lead=lead)
    said = [e for e in timeline if e.direction == "inbound" and "quero marcar" in e.summary]
    assert len(said) == 1


def test_an_unknown_number_on_whatsapp_becomes_a_lead_once(
    client, clinic_a, whatsapp_a, django_capture_on_commit_callbacks
):
    for message_id in ("a", "b"):
        with django_capture_on_commit_callbacks(execute=True):
            whatsapp_from(client, whatsapp_a, "+5511911112222", "Olá", message_id)
    lead = Lead.objects.get()
    assert (lead.source, lead.phone) == (LeadSource.WHATSAPP, "+5511911112222")
    assert lead.interaction_count == 2


def test_a_patient_writing_is_no_lead(
    client, clinic_a, whatsapp_a, django_capture_on_commit_callbacks
):
    PatientFactory(clinic=clinic_a, phone="+5511911113333")
    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_from(client, whatsapp_a, "+5511911113333", "Oi", "p1")
    assert Lead.objects.count() == 0


def test_sair_withdraws_a_leads_marketing_consent(
    client, clinic_a, whatsapp_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # committed, as in production
        lead, _ = services.lead_capture(
            clinic=clinic_a, name="Ana", phone="11911114444", marketing_consent=True
        )
    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_from(client, whatsapp_a, "+5511911114444", "SAIR", "s1")
    lead.refresh_from_db()
    assert not lead.marketing_consent


def test_phone_and_email_leads_of_one_person_merge_without_losing_interactions(clinic_a):
    by_phone, _ = services.lead_capture(clinic=clinic_a, name="Ana", phone="11911115555")
    services.lead_capture(clinic=clinic_a, name="Ana", email="ana@x.com")
    merged, created = services.lead_capture(
        clinic=clinic_a, name="Ana", phone="11911115555", email="ANA@x.com"
    )
    assert not created
    assert merged.pk == by_phone.pk
    assert Lead.objects.count() == 1
    merged.refresh_from_db()
    assert merged.email == "ana@x.com"
    assert Interaction.objects.filter(lead=merged).count() == 3


def test_a_lead_is_linked_to_the_patient_with_the_same_cpf(clinic_a):
    patient = PatientFactory(clinic=clinic_a, cpf="52998224725", phone="")
    lead, _ = services.lead_capture(
        clinic=clinic_a, name="Ana", email="ana@x.com", cpf="529.982.247-25"
    )
    assert lead.patient == patient


def test_the_funnel_refuses_a_move_it_does_not_declare(clinic_a):
    lead, _ = services.lead_capture(clinic=clinic_a, name="Ana", email="ana@x.com")
    services.lead_transition(lead=lead, to=LeadStatus.LOST, loss_reason="price")
    with pytest.raises(InvalidLeadTransition):
        services.lead_transition(lead=lead, to=LeadStatus.NEW)
    with pytest.raises(InvalidLeadTransition):
        other, _ = services.lead_capture(clinic=clinic_a, name="Bia", email="bia@x.com")
        services.lead_transition(lead=other, to=LeadStatus.LOST)  # no reason


def test_leads_are_assigned_round_robin_among_sales_staff(clinic_a):
    users = [
        MembershipFactory(clinic=clinic_a, role=role).user
        for role in (
            MembershipRole.RECEPTIONIST,
            MembershipRole.MANAGER,
            MembershipRole.RECEPTIONIST,
        )
    ]
    MembershipFactory(clinic=clinic_a, role=MembershipRole.PROFESSIONAL)  # not sales
    owners = [
        services.lead_capture(clinic=clinic_a, name=f"L{i}", email=f"l{i}@x.com")[0].owner_id
        for i in range(6)
    ]
    ids = sorted(u.pk for u in users)
    assert owners == ids + ids


def test_never_converted_leads_are_anonymised_after_two_years(clinic_a):
    old, _ = services.lead_capture(clinic=clinic_a, name="Velha", email="v@x.com")
    kept, _ = services.lead_capture(clinic=clinic_a, name="Nova", email="n@x.com")
    Lead.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=731))
    assert services.leads_retention_anonymise(clinic=clinic_a) == 1
    old.refresh_from_db()
    kept.refresh_from_db()
    assert (old.name, old.email) == (services.ANONYMISED_NAME, "")
    assert kept.email == "n@x.com"
