"""A clinic switches a language model on in the admin, as any other provider account."""

import pytest
from django.urls import reverse

from integrations.llm import llm_enabled
from integrations.models import ProviderAccount

pytestmark = pytest.mark.django_db

ADD = reverse("admin:integrations_provideraccount_add")


def _form(**overrides):
    data = {
        "kind": "llm",
        "provider": "anthropic",
        "label": "Claude",
        "priority": "1",
        "enabled": "on",
        "settings": '{"model": "claude-3-5-haiku-latest", "price_in_per_million": "5.00"}',
        "new_credentials": '{"api_key": "sk-ant-typed-123456"}',
    }
    data.update(overrides)
    return data


def test_a_clinic_administrator_switches_a_model_on(clinic_a, clinic_b, admin_a, client_for):
    assert llm_enabled(clinic_a) is False

    response = client_for(admin_a).post(ADD, _form())

    assert response.status_code == 302
    account = ProviderAccount.objects.get()
    assert (account.clinic, account.kind, account.provider) == (clinic_a, "llm", "anthropic")
    assert account.credentials == {"api_key": "sk-ant-typed-123456"}
    assert llm_enabled(clinic_a) is True
    assert llm_enabled(clinic_b) is False


def test_the_add_page_lists_the_model_providers(admin_a, client_for):
    content = client_for(admin_a).get(ADD).content.decode()

    for label in ("Anthropic Messages (Claude)", "Google Gemini (generateContent)"):
        assert label in content


def test_an_unknown_credential_key_is_refused(admin_a, client_for):
    response = client_for(admin_a).post(ADD, _form(new_credentials='{"token": "x-123456"}'))

    assert response.status_code == 200
    assert not ProviderAccount.objects.exists()
    assert "api_key" in str(response.context["adminform"].form.errors["new_credentials"])
