"""Idempotency-Key claims of requests whose worker died (gunicorn's timeout, OOM, kill -9).

The worker's death is played by ``SystemExit`` raised inside the view: what gunicorn's
timeout does to a sync worker (SIGABRT → ``sys.exit``), and like SIGKILL it leaves the claim
unanswered. The real SIGKILL is in tests/crash/test_idempotency_crash.py."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from clinic import services
from clinic.models import Patient
from clinic.partner_api.idempotency import _idempotency_claim_take_over, idempotency_claim_ttl
from clinic.partner_api.models import IdempotencyRecord
from tests.clinic.partner_api.helpers import key_client

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"
MARIA = {
    "full_name": "Maria das Dores Silva",
    "cpf": "529.982.247-25",
    "phone": "(11) 98765-4321",
    "birth_date": "1980-05-17",
}


@pytest.fixture
def partner(clinic_a):
    return key_client(clinic_a, "patients:read", "patients:write")


def _post_and_die(partner, monkeypatch, key: str) -> None:
    def killed(**kwargs):
        raise SystemExit(1)

    with monkeypatch.context() as patched:
        patched.setattr(services, "patient_create", killed)
        with pytest.raises(SystemExit):
            partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_claim_bound_is_the_web_worker_timeout_and_a_little(settings):
    settings.CUIDAR_WEB_WORKER_TIMEOUT = 12
    assert timedelta(seconds=12) < idempotency_claim_ttl() <= timedelta(seconds=20)


def test_a_key_whose_worker_died_is_busy_only_until_the_request_could_have_ended(
    partner, monkeypatch, settings
):
    settings.CUIDAR_WEB_WORKER_TIMEOUT = 30
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _post_and_die(partner, monkeypatch, "crash-1")
        assert IdempotencyRecord.objects.get(key="crash-1").in_flight

        clock.shift(timedelta(seconds=20))  # it could still be running: 409, come back later
        busy = partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="crash-1")
        assert busy.status_code == 409
        assert 1 <= int(busy["Retry-After"]) <= idempotency_claim_ttl().total_seconds() - 20

        clock.shift(idempotency_claim_ttl() - timedelta(seconds=20))
        retried = partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="crash-1")
        assert retried.status_code == 201, retried.content
        replayed = partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="crash-1")

    assert replayed.status_code == 201
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == retried.json()
    assert Patient.objects.count() == 1


def test_a_dead_claim_with_another_body_is_still_refused(partner, monkeypatch):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _post_and_die(partner, monkeypatch, "crash-2")
        clock.shift(idempotency_claim_ttl() + timedelta(seconds=1))
        other = partner.post(
            PATIENTS, {**MARIA, "full_name": "Outra"}, format="json", HTTP_IDEMPOTENCY_KEY="crash-2"
        )
    assert other.status_code == 422
    assert not Patient.objects.exists()


def test_of_two_retries_racing_for_a_dead_claim_only_one_runs(partner, monkeypatch):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _post_and_die(partner, monkeypatch, "crash-3")
        clock.shift(idempotency_claim_ttl() + timedelta(seconds=1))
        first, second = (IdempotencyRecord.objects.get(key="crash-3") for _ in range(2))
        assert _idempotency_claim_take_over(first) is True
        assert _idempotency_claim_take_over(second) is False
        loser = partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="crash-3")
    assert loser.status_code == 409


def test_a_worker_killed_after_the_work_but_before_the_answer_lets_no_retry_do_it_twice(
    partner, monkeypatch
):
    original = services.patient_create

    def created_then_killed(**kwargs):
        original(**kwargs)
        raise SystemExit(1)  # the patient is written; the answer is never stored

    with time_machine.travel(timezone.now(), tick=False) as clock:
        with monkeypatch.context() as patched:
            patched.setattr(services, "patient_create", created_then_killed)
            with pytest.raises(SystemExit):
                partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="late-1")
        clock.shift(idempotency_claim_ttl() + timedelta(seconds=1))
        retried = partner.post(PATIENTS, MARIA, format="json", HTTP_IDEMPOTENCY_KEY="late-1")

    assert retried.status_code == 201
    assert Patient.objects.count() == 1  # the killed request's patient died with it


def test_a_post_that_waits_on_a_partner_holds_no_transaction_for_its_key(
    clinic_a, monkeypatch, django_capture_on_commit_callbacks
):
    """A ping waits on the partner's URL: not in the web request (which holds the key's
    transaction) but in a worker, after the commit, outside any transaction."""
    from django.db import connection

    from integrations import subscriptions

    integrator = key_client(clinic_a, "webhooks:manage")
    sub = subscriptions.subscription_create(
        clinic=clinic_a,
        name="CRM",
        url="https://crm.example.com/hook",
        event_types=["patient.created"],
    )
    depth = []

    def ping(subscription):
        depth.append(len(connection.atomic_blocks))
        return True, "ok"

    monkeypatch.setattr(subscriptions, "subscription_ping", ping)
    baseline = len(connection.atomic_blocks)  # the test's own transaction
    with django_capture_on_commit_callbacks() as queued:
        assert integrator.post(f"/api/v1/webhooks/{sub.pk}/ping/").status_code == 202
        answer = integrator.post(f"/api/v1/webhooks/{sub.pk}/ping/", HTTP_IDEMPOTENCY_KEY="ping-1")
        assert answer.status_code == 202
    assert depth == []  # the web requests never waited on the partner
    for callback in queued:
        callback()  # the worker: the newer request supersedes the older
    assert depth == [baseline]  # no transaction around the partner's call
