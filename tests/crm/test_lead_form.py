"""The public lead form: capture with attribution, spam refused, clear field errors."""

import pytest

from crm.choices import LeadSource
from crm.models import Interaction, Lead
from crm.public import RATE_LIMIT
from integrations.models import Event

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Joana Prado",
    "phone": "(11) 98765-4321",
    "email": "Joana@Example.com",
    "interest_type": "dor_lombar",
    "message": "Quero uma avaliação",
    "marketing_consent": "on",
    "utm_source": "instagram",
    "utm_medium": "social",
    "utm_campaign": "verao",
    "referrer": "https://instagram.com/",
    "landing_page": "https://clinica.example/avaliacao?utm_source=instagram",
}


def test_the_form_works_without_javascript_and_keeps_the_utm_of_the_page(client, form_url):
    page = client.get(form_url + "?utm_source=google&utm_campaign=dor&gclid=abc")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="utm_campaign" value="dor"' in html
    assert 'name="gclid" value="abc"' in html
    assert "<script" not in html  # nothing to run: it is a plain form
    assert "frame-ancestors https:" in page["Content-Security-Policy"]
    assert "X-Frame-Options" not in page


def test_a_visitor_becomes_a_lead_with_first_touch_attribution_and_consent(
    client, form_url, clinic_a
):
    response = client.post(form_url, GOOD)
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    lead = Lead.objects.get()
    assert lead.clinic == clinic_a
    assert (lead.phone, lead.email) == ("+5511987654321", "joana@example.com")
    assert lead.source == LeadSource.INSTAGRAM
    assert (lead.utm_campaign, lead.referrer) == ("verao", "https://instagram.com/")
    assert lead.marketing_consent and lead.marketing_consent_at
    assert lead.interest_type == "dor_lombar"
    assert Interaction.objects.get(lead=lead).kind == "form"


def test_a_referral_link_makes_a_referral_lead_and_tells_loyalty_the_code(client, form_url):
    client.post(form_url + "?ref=ANA2026", {**GOOD, "ref": "ANA2026"})
    lead = Lead.objects.get()
    assert (lead.source, lead.referral_code) == (LeadSource.REFERRAL, "ANA2026")
    event = Event.objects.get(event_type="lead.created")
    assert event.payload["referral_code"] == "ANA2026"


def test_the_honeypot_refuses_a_bot_silently(client, form_url):
    response = client.post(form_url, {**GOOD, "website": "http://spam.example"})
    assert response.status_code == 302  # the bot sees a thank-you
    assert Lead.objects.count() == 0


def test_the_rate_limit_refuses_a_flood_from_one_address(client, form_url):
    for i in range(RATE_LIMIT):
        assert (
            client.post(form_url, {**GOOD, "email": f"p{i}@x.com", "phone": ""}).status_code == 302
        )
    response = client.post(form_url, {**GOOD, "email": "flood@x.com", "phone": ""})
    assert response.status_code == 429
    assert "Too many" in response.content.decode() or "Muitas" in response.content.decode()
    assert Lead.objects.count() == RATE_LIMIT


def test_bad_input_comes_back_with_field_messages_and_nothing_stored(client, form_url):
    response = client.post(form_url, {**GOOD, "name": "", "phone": "12", "email": "nope"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"name", "phone", "email"}
    assert "area code" in errors["phone"][0] or "DDD" in errors["phone"][0]
    assert Lead.objects.count() == 0


def test_without_phone_or_email_the_phone_field_says_why(client, form_url):
    response = client.post(form_url, {**GOOD, "phone": "", "email": ""})
    assert response.status_code == 400
    assert "phone" in response.context["form"].errors


def test_an_unknown_form_key_is_not_found(client, marketing_a):
    assert client.get("/crm/form/nope/").status_code == 404
