"""/health/integrations and the admin index at a glance."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.choices import DeliveryStatus
from integrations.health import integrations_health, p95
from integrations.models import Delivery, Event, ExternalCall, ProviderAccount

pytestmark = pytest.mark.django_db

URL = reverse("health-integrations")


def calls(clinic, account, *, ok, failed=0, latency=100, provider="evolution"):
    for n in range(ok + failed):
        ExternalCall.objects.create(
            clinic=clinic,
            account=account,
            provider=provider,
            operation="send",
            method="POST",
            host="evo.example",
            status_code=200 if n < ok else 500,
            succeeded=n < ok,
            latency_ms=latency + n,
            error_class="" if n < ok else "TransientProviderError",
            error_message="" if n < ok else "HTTP 500",
        )


def dead(clinic, n):
    event = Event.objects.create(clinic=clinic, event_type="slot.freed")
    for i in range(n):
        Delivery.objects.create(
            event=event,
            clinic=clinic,
            event_type="slot.freed",
            subscriber=f"handler:x{i}",
            status=DeliveryStatus.DEAD,
        )


def test_p95_is_the_nearest_rank():
    assert p95([]) is None
    assert p95(list(range(1, 101))) == 95
    assert p95([7]) == 7


def test_it_reports_each_account_with_success_rate_p95_and_last_error(clinic_a):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="evolution")
    calls(clinic_a, account, ok=18, failed=2)
    ExternalCall.objects.filter(succeeded=True).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    calls(clinic_a, account, ok=19, failed=1)
    report = integrations_health(clinic_ids=[clinic_a.pk])
    [row] = report["providers"]
    assert row["calls_last_hour"] == 20 + 2  # the 2 old failures are still within the hour
    assert row["circuit"] == "closed"
    assert row["p95_latency_ms"] is not None
    assert row["last_error"] == "TransientProviderError: HTTP 500"
    assert row["success_rate"] == pytest.approx(19 / 22, abs=1e-3)


@pytest.mark.parametrize(
    ("dead_letters", "status"), [(0, "ok"), (10, "degraded"), (50, "critical")]
)
def test_dead_letters_raise_the_level_at_the_design_thresholds(clinic_a, dead_letters, status):
    dead(clinic_a, dead_letters)
    report = integrations_health(clinic_ids=[clinic_a.pk])
    assert report["outbox"]["dead_letters"]["value"] == dead_letters
    assert report["status"] == status


def test_a_high_error_rate_is_critical(clinic_a):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="twilio")
    calls(clinic_a, account, ok=8, failed=2, provider="twilio")
    report = integrations_health(clinic_ids=[clinic_a.pk])
    assert report["outbox"]["error_rate"]["value"] == 0.2
    assert report["outbox"]["error_rate"]["level"] == "critical"


def test_anonymous_requests_are_refused(client):
    assert client.get(URL).status_code == 401


def test_a_monitor_with_the_health_token_sees_everything(client, settings, clinic_a, clinic_b):
    settings.CUIDAR_HEALTH_TOKEN = "monitor-token-123"
    dead(clinic_a, 1)
    dead(clinic_b, 2)
    response = client.get(URL, headers={"Authorization": "Bearer monitor-token-123"})
    assert response.status_code == 200
    assert response.json()["outbox"]["dead_letters"]["value"] == 3
    wrong = client.get(URL, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_staff_see_only_their_clinics(clinic_a, clinic_b, manager_a, client_for):
    ProviderAccount.objects.create(clinic=clinic_b, kind="sms", provider="twilio")
    dead(clinic_b, 60)
    response = client_for(manager_a).get(URL)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["providers"] == []


def test_the_admin_index_shows_the_integrations_at_a_glance(clinic_a, manager_a, client_for):
    dead(clinic_a, 12)
    response = client_for(manager_a).get(reverse("admin:index"))
    assert response.context["integrations"]["status"] == "degraded"
    assert "dead letters" in response.content.decode() or "mensagens mortas" in (
        response.content.decode()
    )
