"""Every model call's tokens, latency and cost in R$, and every WhatsApp/SMS message's
price, recorded per provider (``ProviderUsage``)."""

from decimal import Decimal

import pytest
import responses

from integrations.base import MessageRequest
from integrations.chains import run_chain
from integrations.llm import extract
from integrations.models import ProviderAccount, ProviderUsage

from .conftest import ANTHROPIC_URL, OPENAI_URL, recorded

pytestmark = pytest.mark.django_db


def test_a_model_call_is_recorded_with_its_tokens_and_cost(net, clinic_a, llm_account):
    account = llm_account(
        "openai_compatible",
        model="gpt-4o-mini",
        price_in_per_million="1.00",
        price_out_per_million="4.00",
    )
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_tool_call.json"))

    extract(clinic_a, "quero marcar")

    row = ProviderUsage.objects.get(clinic=clinic_a)
    assert (row.kind, row.provider, row.account, row.operation) == (
        "llm",
        "openai_compatible",
        account,
        "extract",
    )
    assert (row.model_name, row.tokens_in, row.tokens_out) == ("gpt-4o-mini-2024-07-18", 412, 38)
    # 412 × R$ 1/1M + 38 × R$ 4/1M
    assert row.cost == Decimal("0.000564")


def test_the_configured_price_of_a_model_applies_when_the_account_names_none(
    net, settings, clinic_a, llm_account
):
    settings.CUIDAR_PROVIDER_PRICES = {
        "llm": {"claude-3-5-haiku-20241022": {"in": "5.00", "out": "25.00"}}
    }
    llm_account("openai_compatible", 1, model="gpt-4o-mini")
    llm_account("anthropic", 2, model="claude-3-5-haiku-latest")
    net.add(responses.POST, OPENAI_URL, status=500, json={"error": {"message": "x"}})
    net.add(responses.POST, ANTHROPIC_URL, json=recorded("anthropic_tool_use.json"))

    extract(clinic_a, "desmarcar")

    row = ProviderUsage.objects.get(clinic=clinic_a)  # only the call that answered
    assert row.provider == "anthropic"
    assert (row.tokens_in, row.tokens_out) == (655, 72)
    assert row.cost == Decimal("0.005075")  # 655 × 5 / 1M + 72 × 25 / 1M


def test_a_whatsapp_message_sent_is_recorded_at_its_accounts_price(clinic_a):
    ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="console",
        settings={"price_per_message": "0.35"},
    )

    run_chain(clinic_a, "whatsapp", "send", MessageRequest(to="+5511999990000", text="Oi"))

    row = ProviderUsage.objects.get(clinic=clinic_a)
    assert (row.kind, row.provider, row.messages, row.cost) == (
        "whatsapp",
        "console",
        1,
        Decimal("0.35"),
    )


def test_an_sms_is_priced_from_settings_when_its_account_has_no_price(settings, clinic_a):
    settings.CUIDAR_PROVIDER_PRICES = {"sms": {"console": "0.12"}}

    run_chain(clinic_a, "sms", "send", MessageRequest(to="+5511999990000", text="Oi"))

    row = ProviderUsage.objects.get(clinic=clinic_a)
    assert (row.kind, row.messages, row.cost, row.account) == ("sms", 1, Decimal("0.12"), None)


def test_an_email_is_not_priced(clinic_a):
    run_chain(clinic_a, "email", "send", MessageRequest(to="a@example.com", text="Oi"))

    assert not ProviderUsage.objects.exists()


def test_a_dated_model_name_is_priced_as_the_model_the_account_asked_for(
    net, settings, clinic_a, llm_account
):
    settings.CUIDAR_PROVIDER_PRICES = {"llm": {"gpt-4o-mini": {"in": "1.00", "out": "4.00"}}}
    llm_account("openai_compatible", model="gpt-4o-mini")
    net.add(responses.POST, OPENAI_URL, json=recorded("openai_tool_call.json"))

    extract(clinic_a, "quero marcar")

    row = ProviderUsage.objects.get(clinic=clinic_a)
    assert row.model_name == "gpt-4o-mini-2024-07-18"
    assert row.cost == Decimal("0.000564")
