"""/metrics: the operator's snapshot (taken every minute) in Prometheus text format."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from clinic.messaging.models import ReceivedMessage
from config.metrics import CACHE_KEY, metrics_snapshot
from integrations.models import ExternalCall

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.CUIDAR_HEALTH_TOKEN = TOKEN
    cache.delete(CACHE_KEY)
    yield
    cache.delete(CACHE_KEY)


def test_it_refuses_anyone_without_the_token_or_an_operator_session(
    client, client_for, receptionist_a
):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client_for(receptionist_a).get("/metrics").status_code == 401


def test_it_serves_the_snapshot_in_prometheus_format(client, clinic_a, patient_a):
    ReceivedMessage.objects.create(
        clinic=clinic_a,
        patient=patient_a,
        channel="whatsapp",
        from_address=patient_a.phone,
        text="Oi",
        source_key="m:1",
        needs_reply=True,
    )
    ExternalCall.objects.create(
        clinic=clinic_a,
        provider="meta_cloud",
        operation="send",
        method="POST",
        host="graph.facebook.com",
        status_code=503,
        succeeded=False,
        latency_ms=120,
        attempt=1,
    )

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE cuidar_messages_unanswered gauge" in text
    assert "cuidar_messages_unanswered 1" in text
    assert "cuidar_provider_error_rate 1.0" in text
    assert "cuidar_outbox_dead_letters 0" in text


def test_the_periodic_snapshot_is_what_is_served(client):
    old = metrics_snapshot(now=timezone.now() - timedelta(minutes=1))
    old["messages"]["queued"] = 7  # what the last run saw
    cache.set(CACHE_KEY, old)

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "cuidar_messages_queued 7" in text


#: A Redis that does not answer: nothing listens on port 1.
DEAD = "redis://127.0.0.1:1/0"


def test_redis_down_is_shown_and_the_metrics_are_still_served(client):
    dead = {  # production: the cache is that Redis too
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD}
    }
    with override_settings(REDIS_URL=DEAD, CACHES=dead):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    text = response.content.decode()
    assert "cuidar_redis_configured 1" in text
    assert "cuidar_redis_up 0" in text
    assert "cuidar_messages_queued 0" in text  # the snapshot, taken without its cache


def test_without_redis_the_metrics_say_it_is_not_configured(client, settings):
    settings.REDIS_URL = ""
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "cuidar_redis_configured 0" in text
    assert "\ncuidar_redis_up " not in text  # no sample: nothing to alert on
