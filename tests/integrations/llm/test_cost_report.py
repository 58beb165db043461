"""The monthly cost report in the admin: per clinic, per month and provider, for managers."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.models import ProviderUsage

pytestmark = pytest.mark.django_db

URL = "/admin/integrations/providerusage/"


def _usage(clinic, when, **fields):
    row = ProviderUsage.objects.create(clinic=clinic, operation="x", **fields)
    ProviderUsage.objects.filter(pk=row.pk).update(created_at=when)
    return row


@pytest.fixture
def costs(clinic_a, clinic_b):
    nov = datetime(2026, 11, 15, 15, tzinfo=UTC)
    dec = datetime(2026, 12, 3, 15, tzinfo=UTC)
    _usage(clinic_a, nov, kind="llm", provider="anthropic", tokens_in=600, cost=Decimal("0.40"))
    _usage(clinic_a, nov, kind="llm", provider="anthropic", tokens_in=400, cost=Decimal("0.35"))
    _usage(clinic_a, nov, kind="whatsapp", provider="meta_cloud", messages=1, cost=Decimal("0.5"))
    _usage(clinic_a, dec, kind="sms", provider="twilio", messages=1, cost=Decimal("0.45"))
    _usage(clinic_b, nov, kind="llm", provider="gemini", tokens_in=9, cost=Decimal("777.77"))


def test_a_manager_sees_each_months_cost_per_provider(costs, client_for, manager_a):
    page = client_for(manager_a).get(URL)

    assert page.status_code == 200
    summary = page.context_data["usage_summary"]
    assert [m["month"].strftime("%Y-%m") for m in summary] == ["2026-12", "2026-11"]
    november = {(line["kind"], line["provider"]): line for line in summary[1]["lines"]}
    assert november[("llm", "anthropic")]["calls"] == 2
    assert november[("llm", "anthropic")]["tokens_in"] == 1000
    assert november[("llm", "anthropic")]["cost"] == Decimal("0.75")
    assert november[("whatsapp", "meta_cloud")]["messages"] == 1
    assert summary[1]["total"] == Decimal("1.25")
    content = page.content.decode()
    assert 'id="usage-by-month"' in content
    assert "gemini" not in content and "777" not in content  # clinic B's costs


def test_the_report_follows_the_lists_filters(costs, client_for, manager_a):
    page = client_for(manager_a).get(URL, {"kind__exact": "llm"})

    summary = page.context_data["usage_summary"]
    assert [(m["month"].month, m["total"]) for m in summary] == [(11, Decimal("0.75"))]


def test_reception_does_not_see_the_costs(costs, client_for, receptionist_a):
    assert client_for(receptionist_a).get(URL).status_code == 403


def test_the_report_reads_a_bounded_number_of_queries(
    costs, client_for, manager_a, django_assert_max_num_queries
):
    client = client_for(manager_a)
    client.get(URL)

    with django_assert_max_num_queries(20):
        client.get(URL)
