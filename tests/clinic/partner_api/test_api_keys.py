"""API keys: created by the clinic administrator, shown once, stored hashed, revocable."""

import pytest
from django.urls import reverse

from clinic.partner_api.keys import ApiKeyAuthentication, api_key_create
from clinic.partner_api.models import ApiKey, api_key_hash

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_as_a_hash_with_a_visible_prefix(clinic_a):
    key, secret = api_key_create(clinic=clinic_a, name="Lab X", scopes=["patients:read"])

    assert secret.startswith(f"cdr_{key.prefix}_")
    assert key.key_hash == api_key_hash(secret)
    assert secret not in str(ApiKey.objects.values_list(flat=False))


def test_unknown_scopes_are_refused(clinic_a):
    with pytest.raises(ValueError):
        api_key_create(clinic=clinic_a, name="x", scopes=["everything"])


def test_the_administrator_creates_a_key_and_sees_it_once(client_for, admin_a, clinic_a):
    client = client_for(admin_a)

    response = client.post(
        reverse("admin:partner_api_apikey_add"),
        {"name": "Site de marketing", "scopes": ["leads:write", "availability:read"]},
        follow=True,
    )

    key = ApiKey.objects.get()
    assert key.clinic == clinic_a
    assert key.scopes == ["availability:read", "leads:write"]
    shown = [str(m) for m in response.context["messages"]]
    [secret] = [part for m in shown for part in m.split("<code>")[1:]]
    secret = secret.split("</code>")[0]
    assert api_key_hash(secret) == key.key_hash
    page = client.get(reverse("admin:partner_api_apikey_change", args=[key.pk])).content.decode()
    assert secret not in page


def test_a_receptionist_cannot_see_api_keys(client_for, receptionist_a):
    assert (
        client_for(receptionist_a).get(reverse("admin:partner_api_apikey_changelist")).status_code
        == 403
    )


def test_a_revoked_key_stops_working_at_once(client_for, admin_a, clinic_a, rf):
    key, secret = api_key_create(clinic=clinic_a, name="Lab", scopes=["patients:read"])
    request = rf.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert ApiKeyAuthentication().authenticate(request)[1] == key

    client_for(admin_a).post(
        reverse("admin:partner_api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    from rest_framework.exceptions import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        ApiKeyAuthentication().authenticate(request)
