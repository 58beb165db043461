"""Partner API: leads (``POST /api/v1/leads/``)."""

import pytest
from rest_framework.test import APIClient

from crm.models import Lead, LeadStatus
from integrations.models import Event
from tests.clinic.partner_api.helpers import key_client

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"
PROBLEM = "application/problem+json"
FORM = {
    "name": "Joana Prado",
    "phone": "(11) 98765-4321",
    "email": "joana@example.com",
    "message": "Quero marcar uma avaliação.",
    "source": "website",
    "utm_source": "instagram",
    "utm_medium": "social",
    "utm_campaign": "verao-2026",
    "utm_term": "fisioterapia",
    "utm_content": "story-1",
    "landing_page": "https://clinica.example/avaliacao?utm_source=instagram",
}


@pytest.fixture
def site_a(clinic_a):
    return key_client(clinic_a, "leads:write")


def test_it_records_a_lead_with_its_utm_attribution(site_a, clinic_a):
    response = site_a.post(LEADS, FORM, format="json")

    assert response.status_code == 201, response.content
    lead = Lead.objects.get()
    assert lead.clinic == clinic_a
    assert lead.status == LeadStatus.NEW
    assert lead.phone == "+5511987654321"
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == (
        "instagram",
        "social",
        "verao-2026",
    )
    assert (lead.utm_term, lead.utm_content) == ("fisioterapia", "story-1")
    assert lead.landing_page == FORM["landing_page"]
    body = response.json()
    assert body["id"] == lead.pk
    assert body["status"] == "new"
    assert body["utm_campaign"] == "verao-2026"


def test_it_publishes_lead_created_with_ids_only(site_a, clinic_a):
    site_a.post(LEADS, FORM, format="json")
    event = Event.objects.get(event_type="lead.created")
    assert event.clinic == clinic_a
    # Ids and codes only: loyalty credits the referral from `referral_code` (issue 25).
    assert event.payload == {
        "lead_id": Lead.objects.get().pk,
        "source": "website",
        "referral_code": "",
    }


def test_a_lead_needs_only_a_name_and_one_way_to_reach_them(site_a):
    response = site_a.post(LEADS, {"name": "Só E-mail", "email": "so@example.com"}, format="json")
    assert response.status_code == 201
    assert Lead.objects.get().phone == ""


def test_a_lead_without_phone_or_email_is_refused(site_a):
    response = site_a.post(LEADS, {"name": "Sem Contato"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert "phone" in response.json()["errors"]
    assert not Lead.objects.exists()


def test_invalid_fields_are_field_errors(site_a):
    response = site_a.post(
        LEADS,
        {"name": "", "phone": "123", "email": "nope", "landing_page": "not a url"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"name", "email", "landing_page"}


def test_an_invalid_phone_is_refused_by_the_model(site_a):
    response = site_a.post(LEADS, {"name": "Fulano", "phone": "123"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"phone"}
    assert not Event.objects.exists()


def test_the_clinic_comes_from_the_key_not_from_the_body(site_a, clinic_a, clinic_b):
    site_a.post(LEADS, {**FORM, "clinic": clinic_b.pk}, format="json")
    assert Lead.objects.get().clinic == clinic_a


def test_a_replayed_post_records_one_lead(site_a):
    first = site_a.post(LEADS, FORM, format="json", HTTP_IDEMPOTENCY_KEY="form-1")
    again = site_a.post(LEADS, FORM, format="json", HTTP_IDEMPOTENCY_KEY="form-1")
    assert again.json() == first.json()
    assert Lead.objects.count() == 1
    assert Event.objects.filter(event_type="lead.created").count() == 1


def test_leads_are_write_only(site_a):
    assert site_a.get(LEADS).status_code in (403, 405)


def test_a_key_without_the_scope_gets_403(clinic_a):
    response = key_client(clinic_a, "patients:write").post(LEADS, FORM, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert not Lead.objects.exists()


def test_no_key_gets_401(db):
    response = APIClient().post(LEADS, FORM, format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_staff_sessions_cannot_create_leads(receptionist_a):
    client = APIClient()
    client.force_login(receptionist_a)
    assert client.post(LEADS, FORM, format="json").status_code == 403


# --- Reading and moving leads (issue 23) ----------------------------------------------------
def test_a_second_post_of_the_same_person_updates_the_lead_instead_of_duplicating(site_a):
    site_a.post(LEADS, FORM, format="json")
    again = site_a.post(LEADS, {**FORM, "email": "", "utm_campaign": "outono"}, format="json")
    assert again.status_code == 201
    lead = Lead.objects.get()
    assert lead.utm_campaign == "verao-2026"  # the first touch stays
    assert lead.last_touch["utm_campaign"] == "outono"


def test_leads_are_read_with_leads_read_and_only_the_keys_clinic(clinic_a, clinic_b):
    from crm.services import lead_capture

    mine, _ = lead_capture(clinic=clinic_a, name="Ana", email="ana@x.com")
    lead_capture(clinic=clinic_b, name="Bia", email="bia@x.com")
    reader = key_client(clinic_a, "leads:read")
    listed = reader.get(LEADS)
    assert listed.status_code == 200, listed.content
    assert [row["id"] for row in listed.json()["results"]] == [mine.pk]
    assert reader.get(f"{LEADS}{mine.pk}/").json()["temperature"] == "cold"
    other = Lead.objects.get(clinic=clinic_b)
    assert reader.get(f"{LEADS}{other.pk}/").status_code == 404
    assert key_client(clinic_a, "leads:write").get(LEADS).status_code == 403


def test_a_partner_moves_a_lead_through_the_funnel_and_bad_moves_are_problems(clinic_a):
    from crm.services import lead_capture

    lead, _ = lead_capture(clinic=clinic_a, name="Ana", email="ana@x.com")
    writer = key_client(clinic_a, "leads:write")
    moved = writer.patch(f"{LEADS}{lead.pk}/", {"status": "contacted"}, format="json")
    assert moved.status_code == 200, moved.content
    assert moved.json()["status"] == "contacted"
    refused = writer.patch(f"{LEADS}{lead.pk}/", {"status": "lost"}, format="json")
    assert refused.status_code == 409
    assert refused["Content-Type"].startswith(PROBLEM)
    assert "loss_reason" in refused.json().get("errors", refused.json())
    assert (
        key_client(clinic_a, "leads:read")
        .patch(f"{LEADS}{lead.pk}/", {"status": "interested"}, format="json")
        .status_code
        == 403
    )
