import pytest
from django.conf import settings
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db


def test_it_reports_ok_when_everything_is_up(client):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "redis"}


@pytest.mark.parametrize("part", ["database", "cache", "broker", "redis"])
def test_it_answers_503_and_names_the_failing_part(part, client, monkeypatch):
    def broken():
        raise ConnectionError("down")

    monkeypatch.setitem(health.CHECKS, part, broken)
    response = client.get(reverse("health"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["failing"] == [part]
    assert body["checks"][part]["status"] == "error"
    assert body["checks"][part]["error"] == "ConnectionError"


def test_it_reports_an_unreachable_broker(client, monkeypatch):
    from kombu import Connection

    from config.celery import app

    # A real connection attempt to a port where nothing listens.
    monkeypatch.setattr(
        app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0", connect_timeout=1)
    )
    response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


#: A Redis that does not answer: nothing listens on port 1.
DEAD_REDIS = "redis://127.0.0.1:1/0"


def test_redis_down_is_a_failure_not_a_silent_fall_back(client, settings):
    settings.REDIS_URL = DEAD_REDIS  # the shared state's Redis (the cache is still local here)

    response = client.get(reverse("health"))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["failing"] == ["redis"]
    assert body["redis"] == "down"
    assert body["checks"]["redis"]["status"] == "error"


def test_without_redis_it_says_so_and_stays_ok(client, settings):
    settings.REDIS_URL = ""

    body = client.get(reverse("health")).json()

    assert body["status"] == "ok"
    assert body["redis"] == "not_configured"
    assert body["checks"]["redis"]["status"] == "not_configured"


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis)")
def test_a_redis_that_answers_is_ok(client):
    body = client.get(reverse("health")).json()
    assert body["redis"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
