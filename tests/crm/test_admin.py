"""The CRM's admin: the funnel board (counts, filters, moving a card), a lead's page with
its timeline, booking a lead, segments' live count, campaigns' results."""

import pytest
from django.urls import reverse

from crm import services
from crm.choices import LeadStatus
from crm.models import Lead, Segment
from tests.clinic.factories import ConsentFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads_a(clinic_a):
    return [
        services.lead_capture(
            clinic=clinic_a,
            name=f"Lead {i}",
            email=f"l{i}@x.com",
            source="instagram" if i % 2 else "website",
        )[0]
        for i in range(6)
    ]


def test_the_board_counts_each_stage_and_filters_by_source(
    client_for, receptionist_a, leads_a, django_assert_max_num_queries
):
    client = client_for(receptionist_a)
    services.lead_transition(lead=leads_a[0], to=LeadStatus.CONTACTED)
    url = reverse("admin:crm_lead_board")
    with django_assert_max_num_queries(30):  # one per column, whatever the number of leads
        page = client.get(url)
    assert page.status_code == 200
    counts = {c["stage"].value: c["count"] for c in page.context["columns"]}
    assert counts["new"] == 5 and counts["contacted"] == 1
    filtered = client.get(url, {"source": "instagram"})
    assert sum(c["count"] for c in filtered.context["columns"]) == 3
    assert 'src="/static/crm/board.js"' in page.content.decode()
    assert "<script>" not in page.content.decode()  # the staff CSP: no inline script


def test_moving_a_card_answers_json_with_the_new_counts(client_for, receptionist_a, leads_a):
    client = client_for(receptionist_a)
    lead = leads_a[0]
    url = reverse("admin:crm_lead_move", args=[lead.pk])
    response = client.post(url, {"to": "interested"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["counts"]["interested"] == 1
    refused = client.post(url, {"to": "lost"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 409 and refused.json()["error"]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.INTERESTED


def test_the_keyboard_form_moves_a_card_without_javascript(client_for, receptionist_a, leads_a):
    client = client_for(receptionist_a)
    lead = leads_a[1]
    response = client.post(
        reverse("admin:crm_lead_move", args=[lead.pk]), {"to": "lost", "loss_reason": "price"}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.status, lead.loss_reason) == (LeadStatus.LOST, "price")


def test_booking_a_lead_registers_the_patient_and_opens_the_booking_form(
    client_for, receptionist_a, leads_a
):
    client = client_for(receptionist_a)
    no_phone = leads_a[2]
    refused = client.post(reverse("admin:crm_lead_book", args=[no_phone.pk]), follow=True)
    assert "phone" in refused.content.decode() or "telefone" in refused.content.decode()
    lead, _ = services.lead_capture(clinic=no_phone.clinic, name="Com Fone", phone="11911117777")
    response = client.post(reverse("admin:crm_lead_book", args=[lead.pk]))
    lead.refresh_from_db()
    assert lead.patient is not None
    assert response["Location"].endswith(f"?patient={lead.patient.pk}")


def test_the_lead_page_shows_its_timeline_and_logs_a_call(client_for, receptionist_a, leads_a):
    client = client_for(receptionist_a)
    lead = leads_a[3]
    client.post(
        reverse("admin:crm_lead_log", args=[lead.pk]), {"kind": "call", "summary": "Ligou às 10h"}
    )
    page = client.get(reverse("admin:crm_lead_change", args=[lead.pk]))
    assert "Ligou às 10h" in page.content.decode()
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONTACTED  # a call is a contact


def test_the_segment_page_counts_only_people_with_marketing_consent(
    client_for, manager_a, clinic_a
):
    yes, no = (
        PatientFactory(clinic=clinic_a, phone="+5511911110001"),
        PatientFactory(clinic=clinic_a, phone="+5511911110002"),
    )
    ConsentFactory(patient=yes, channel="whatsapp", purpose="marketing", status="granted")
    segment = Segment.objects.create(clinic=clinic_a, name="Todos", channel="whatsapp")
    page = client_for(manager_a).get(reverse("admin:crm_segment_change", args=[segment.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert yes.full_name in html and no.full_name not in html


def test_the_changelist_of_leads_takes_a_fixed_number_of_queries(
    client_for, receptionist_a, clinic_a
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(receptionist_a)
    url = reverse("admin:crm_lead_changelist")
    counts = []
    for many in (3, 30):
        for i in range(len(counts) * 3, many):
            services.lead_capture(clinic=clinic_a, name=f"X{i}", email=f"x{i}@x.com")
        client.get(url)  # the session and the permissions cached
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]  # not one more per lead
    assert Lead.objects.count() == 30
