"""Chains: a clinic's providers for a kind, tried in order through their breakers."""

import logging
import uuid
from datetime import UTC, datetime

import pytest
import requests
import responses
import time_machine

from integrations import breakers, registry
from integrations.base import (
    ChainFailed,
    ChainOutcomeUnknown,
    MessageRequest,
    MessageResult,
    MessagingProvider,
    PermanentProviderError,
)
from integrations.chains import Outcome, chain_for, run_chain
from integrations.models import ConsoleRecord, ProviderAccount

pytestmark = pytest.mark.django_db

PRIMARY_URL = "https://primary.example/v1/messages"
SECONDARY_URL = "https://secondary.example/v1/messages"
SECRET = "primary-api-key-5566"


class PrimarySms(MessagingProvider):
    kind = "sms"
    name = "test_primary"
    credentials_schema = {"api_key": "API key"}
    url = PRIMARY_URL

    def send(self, message: MessageRequest) -> MessageResult:
        # One attempt per send, so "five failures" means five sends.
        response = self.request(
            "POST",
            self.url,
            operation="send",
            json={"to": message.to},
            headers={"Authorization": f"Bearer {self.credentials.get('api_key', '')}"},
            retry=False,
        )
        return MessageResult(provider_message_id=response.json()["id"])


class SecondarySms(PrimarySms):
    name = "test_secondary"
    url = SECONDARY_URL


class BuggySms(MessagingProvider):
    kind = "sms"
    name = "test_buggy"

    def send(self, message):
        raise KeyError("a bug, not a provider failure")


@pytest.fixture(autouse=True)
def fresh_breakers(settings):
    settings.CUIDAR_BREAKER_NAMESPACE = f"test-{uuid.uuid4().hex}"
    breakers.reset_breakers()
    for cls in (PrimarySms, SecondarySms, BuggySms):
        registry.register(cls)
    yield
    for cls in (PrimarySms, SecondarySms, BuggySms):
        registry._registry.pop((cls.kind, cls.name), None)
    breakers.reset_breakers()


@pytest.fixture
def chain(clinic_a):
    primary = ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="sms",
        provider="test_primary",
        priority=1,
        credentials={"api_key": SECRET},
    )
    secondary = ProviderAccount.objects.create(
        clinic=clinic_a, kind="sms", provider="test_secondary", priority=2
    )
    return primary, secondary


def send(clinic):
    return run_chain(clinic, "sms", "send", MessageRequest(to="+5511999990000", text="Oi"))


def primary_calls():
    return sum(1 for c in responses.calls if c.request.url == PRIMARY_URL)


def test_chain_for_lists_enabled_accounts_by_priority_then_id_in_one_query(
    clinic_a, clinic_b, django_assert_num_queries
):
    late = ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="b", priority=5)
    first = ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="a", priority=1)
    tie = ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="c", priority=5)
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="d", enabled=False)
    ProviderAccount.objects.create(clinic=clinic_a, kind="email", provider="e")
    ProviderAccount.objects.create(clinic=clinic_b, kind="sms", provider="f", priority=0)

    with django_assert_num_queries(1):
        accounts = chain_for(clinic_a, "sms")

    assert accounts == [first, late, tie]


def test_chain_for_falls_back_to_unsaved_console_accounts(clinic_a):
    (account,) = chain_for(clinic_a, "whatsapp")

    assert account.pk is None
    assert (account.clinic_id, account.kind, account.provider) == (
        clinic_a.pk,
        "whatsapp",
        "console",
    )
    assert account.credentials == {}


def test_chain_for_takes_the_defaults_from_settings(clinic_a, settings):
    settings.CUIDAR_DEFAULT_PROVIDERS = {"sms": ["test_primary", "console"]}

    assert [a.provider for a in chain_for(clinic_a, "sms")] == ["test_primary", "console"]
    assert [a.provider for a in chain_for(clinic_a, "email")] == ["console"]


def test_run_chain_returns_the_first_success(clinic_a, chain):
    with responses.RequestsMock() as mock:
        mock.post(PRIMARY_URL, json={"id": "p-1"})

        result = send(clinic_a)

    assert result.value.provider_message_id == "p-1"
    assert result.account == chain[0]
    assert result.provider == "test_primary"
    assert result.tried == [("test_primary", Outcome.SUCCEEDED)]


def test_run_chain_serves_unconfigured_clinics_from_the_console(clinic_a):
    result = run_chain(clinic_a, "whatsapp", "send", MessageRequest(to="+5511999990000", text="Oi"))

    assert result.provider == "console"
    assert result.value.provider_message_id.startswith("console-")
    assert ConsoleRecord.objects.get().clinic_id == clinic_a.pk


@responses.activate
def test_five_500s_open_the_breaker_and_the_next_provider_serves_until_a_trial_succeeds(
    clinic_a, chain
):
    failing = responses.post(PRIMARY_URL, status=500)
    responses.post(SECONDARY_URL, json={"id": "s-1"})

    with time_machine.travel(datetime(2026, 5, 4, 9, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(5):
            assert send(clinic_a).provider == "test_secondary"
        assert primary_calls() == 5

        sixth = send(clinic_a)
        assert primary_calls() == 5  # the open breaker kept it off the network
        assert sixth.provider == "test_secondary"
        assert sixth.tried == [
            ("test_primary", Outcome.CIRCUIT_OPEN),
            ("test_secondary", Outcome.SUCCEEDED),
        ]

        clock.shift(59)
        send(clinic_a)
        assert primary_calls() == 5

        clock.shift(1)
        responses.replace(responses.POST, PRIMARY_URL, json={"id": "p-back"})
        trial = send(clinic_a)
        assert primary_calls() == 6  # exactly one trial call
        assert trial.provider == "test_primary"
        assert breakers.breaker_state(clinic_id=clinic_a.pk, account_key=str(chain[0].pk)) == (
            "closed"
        )

        send(clinic_a)
        assert primary_calls() == 7
    assert failing.call_count == 5


@responses.activate
def test_a_failed_trial_keeps_the_provider_skipped_for_another_period(clinic_a, chain):
    responses.post(PRIMARY_URL, status=503)
    responses.post(SECONDARY_URL, json={"id": "s-1"})

    with time_machine.travel(datetime(2026, 5, 4, 9, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(5):
            send(clinic_a)
        clock.shift(60)
        send(clinic_a)
        send(clinic_a)

        assert primary_calls() == 6
        key = str(chain[0].pk)
        assert breakers.breaker_state(clinic_id=clinic_a.pk, account_key=key) == "open"


@responses.activate
def test_a_400_never_trips_the_breaker(clinic_a, chain):
    responses.post(PRIMARY_URL, status=400, json={"error": "invalid number"})
    responses.post(SECONDARY_URL, json={"id": "s-1"})

    for _ in range(8):
        result = send(clinic_a)
        assert result.tried == [("test_primary", Outcome.FAILED), ("test_secondary", "succeeded")]

    assert primary_calls() == 8
    assert breakers.breaker_state(clinic_id=clinic_a.pk, account_key=str(chain[0].pk)) == "closed"


@responses.activate
def test_it_raises_chain_failed_with_every_providers_error(clinic_a, chain, caplog):
    responses.post(PRIMARY_URL, status=503, body=f"upstream said {SECRET}")
    responses.post(SECONDARY_URL, status=401, json={"error": "bad key"})

    with pytest.raises(ChainFailed) as caught:
        send(clinic_a)

    errors = caught.value.errors
    assert [(name, e.http_status) for name, e in errors] == [
        ("test_primary", 503),
        ("test_secondary", 401),
    ]
    assert not caught.value.permanent  # one of them may recover: the work stays queued
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
    assert "test_primary failed" in caplog.text


def test_it_skips_a_provider_nobody_installed(clinic_a):
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="gone", priority=1)
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="console", priority=2)

    result = send(clinic_a)

    assert result.provider == "console"
    assert result.tried == [("gone", Outcome.UNKNOWN_PROVIDER), ("console", Outcome.SUCCEEDED)]


def test_when_every_provider_is_unknown_the_failure_is_permanent(clinic_a):
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="gone")

    with pytest.raises(ChainFailed) as caught:
        send(clinic_a)

    assert caught.value.permanent
    assert isinstance(caught.value.errors[0][1], PermanentProviderError)


def test_a_bug_in_a_provider_propagates_instead_of_falling_back(clinic_a):
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="test_buggy", priority=1)
    ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="console", priority=2)

    with pytest.raises(KeyError):
        send(clinic_a)

    assert not ConsoleRecord.objects.exists()


@responses.activate
def test_each_clinic_has_its_own_breaker(clinic_a, clinic_b, chain, caplog):
    caplog.set_level(logging.INFO)
    responses.post(PRIMARY_URL, status=500)
    responses.post(SECONDARY_URL, json={"id": "s-1"})
    for _ in range(5):
        send(clinic_a)
    ProviderAccount.objects.create(clinic=clinic_b, kind="sms", provider="test_primary")

    with pytest.raises(ChainFailed):
        send(clinic_b)  # B's own account was tried: A's open breaker is not B's

    assert primary_calls() == 6


# --- Unknown outcomes -----------------------------------------------------------------------
@responses.activate
def test_a_read_timeout_stops_the_chain_instead_of_sending_through_the_next_provider(
    clinic_a, chain
):
    responses.post(PRIMARY_URL, body=requests.ReadTimeout("read timed out"))
    responses.post(SECONDARY_URL, json={"id": "s-1"}, status=201)

    with pytest.raises(ChainOutcomeUnknown) as caught:
        send(clinic_a)

    assert caught.value.provider == "test_primary"
    assert caught.value.account == chain[0]
    assert caught.value.tried == [("test_primary", Outcome.UNKNOWN)]
    assert not any(c.request.url == SECONDARY_URL for c in responses.calls)
    assert SECRET not in str(caught.value)


@responses.activate
def test_a_refused_connection_sent_nothing_so_the_next_provider_serves(clinic_a, chain):
    responses.post(PRIMARY_URL, body=requests.ConnectionError("[Errno 111] Connection refused"))
    responses.post(SECONDARY_URL, json={"id": "s-1"}, status=201)

    result = send(clinic_a)

    assert result.provider == "test_secondary"


@responses.activate
def test_the_caller_learns_which_provider_is_about_to_be_called(clinic_a, chain):
    responses.post(PRIMARY_URL, status=503)
    responses.post(SECONDARY_URL, json={"id": "s-1"}, status=201)
    called = []

    run_chain(
        clinic_a,
        "sms",
        "send",
        MessageRequest(to="+5511999990000", text="Oi"),
        before_call=lambda account: called.append(account.provider),
    )

    assert called == ["test_primary", "test_secondary"]
