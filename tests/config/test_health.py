import pytest
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db


def test_it_reports_ok_when_everything_is_up(client):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}


@pytest.mark.parametrize("part", ["database", "cache", "broker"])
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
