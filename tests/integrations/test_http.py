"""integrations.http: timeouts, retries, Retry-After, idempotency, the call log, and no
secrets anywhere."""

import logging
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
import time_machine

from integrations import http
from integrations.base import (
    OutcomeUnknownError,
    PermanentProviderError,
    TransientProviderError,
)
from integrations.models import ExternalCall

pytestmark = pytest.mark.django_db

TOKEN = "zapi-Secr3t-T0ken-998877"
# Z-API puts its token in the path: the URL itself is a secret.
ZAPI_URL = f"https://api.z-api.io/instances/3C0FFEE/token/{TOKEN}/send-text"
URL = "https://api.example.com/v1/messages?access_token=" + TOKEN


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    """Backoff waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(http, "_sleep", recorded.append)
    return recorded


def call(url=URL, **kwargs):
    kwargs.setdefault("provider", "zapi")
    kwargs.setdefault("operation", "send")
    kwargs.setdefault("secrets", [TOKEN])
    return http.request(kwargs.pop("method", "POST"), url, **kwargs)


@responses.activate
def test_it_returns_a_2xx_response_and_records_one_call(clinic_a):
    responses.post(ZAPI_URL, json={"messageId": "abc"}, status=201)

    response = call(ZAPI_URL, clinic_id=clinic_a.pk, json={"phone": "5511999990000"})

    assert response.json() == {"messageId": "abc"}
    row = ExternalCall.objects.get()
    assert (row.clinic_id, row.provider, row.operation, row.method) == (
        clinic_a.pk,
        "zapi",
        "send",
        "POST",
    )
    assert (row.status_code, row.succeeded, row.attempt, row.error_class) == (201, True, 1, "")
    assert row.host == "api.z-api.io"  # never the path, which holds the token
    assert len(row.correlation_id) == 32


@responses.activate
def test_it_uses_the_default_timeout_from_settings(settings):
    settings.CUIDAR_HTTP_TIMEOUT = (1.5, 4)
    responses.get(URL, json={})

    call(method="GET")

    assert responses.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)


@responses.activate
def test_it_uses_connect_3_05_and_read_10_seconds_by_default(settings):
    del settings.CUIDAR_HTTP_TIMEOUT
    responses.get(URL, json={})

    call(method="GET")

    assert responses.calls[0].request.req_kwargs["timeout"] == (3.05, 10.0)


@responses.activate
def test_it_sends_the_same_idempotency_key_and_correlation_id_on_every_attempt(waits):
    responses.post(URL, status=502)
    responses.post(URL, json={"id": 1})

    call(idempotency_key="charge-42", idempotency_header="Idempotency-Key", correlation_id="c-1")

    headers = [c.request.headers for c in responses.calls]
    assert len(headers) == 2
    assert [h["Idempotency-Key"] for h in headers] == ["charge-42", "charge-42"]
    assert [h["X-Correlation-Id"] for h in headers] == ["c-1", "c-1"]
    assert list(ExternalCall.objects.order_by("attempt").values_list("attempt", "status_code")) == [
        (1, 502),
        (2, 200),
    ]


@responses.activate
def test_it_sends_no_idempotency_header_when_the_provider_takes_none():
    responses.post(URL, json={})

    call(idempotency_key="charge-42", idempotency_header=None)

    assert "charge-42" not in responses.calls[0].request.headers.values()


@responses.activate
def test_it_retries_timeouts_with_backoff(waits):
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    responses.post(URL, body=requests.ConnectTimeout("connect timed out"))
    responses.post(URL, json={"ok": True})

    response = call()

    assert response.status_code == 200
    assert len(responses.calls) == 3
    assert len(waits) == 2
    assert all(0 <= w <= 8 for w in waits)
    rows = list(ExternalCall.objects.order_by("attempt"))
    assert [(r.attempt, r.error_class, r.succeeded) for r in rows] == [
        (1, "ReadTimeout", False),
        (2, "ConnectTimeout", False),
        (3, "", True),
    ]


@responses.activate
def test_it_gives_up_after_max_attempts_with_a_transient_error():
    responses.post(URL, status=503)

    with pytest.raises(TransientProviderError) as caught:
        call(max_attempts=3)

    assert len(responses.calls) == 3
    assert caught.value.http_status == 503
    assert not caught.value.permanent
    assert "3 attempts" in str(caught.value)
    assert ExternalCall.objects.filter(succeeded=False).count() == 3


@responses.activate
def test_it_makes_exactly_one_attempt_without_retry():
    responses.post(URL, status=503)

    with pytest.raises(TransientProviderError):
        call(retry=False)

    assert len(responses.calls) == 1


@responses.activate
def test_it_waits_for_retry_after_seconds_on_429(waits):
    responses.post(URL, status=429, headers={"Retry-After": "7"})
    responses.post(URL, json={"ok": True})

    assert call().status_code == 200

    assert waits == [7.0]
    assert ExternalCall.objects.get(attempt=1).error_class == "RateLimited"


@responses.activate
def test_it_reads_retry_after_as_an_http_date(waits):
    now = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        responses.post(
            URL, status=429, headers={"Retry-After": format_datetime(now + timedelta(seconds=12))}
        )
        responses.post(URL, json={})
        call()

    assert waits == [12.0]


@responses.activate
def test_it_stops_at_once_when_retry_after_is_beyond_the_cap(settings, waits):
    settings.CUIDAR_HTTP_RETRY_AFTER_CAP = 30
    responses.post(URL, status=429, headers={"Retry-After": "120"})

    with pytest.raises(TransientProviderError) as caught:
        call()

    assert len(responses.calls) == 1
    assert waits == []
    assert caught.value.retry_after == 120.0  # the caller reschedules itself
    assert caught.value.http_status == 429


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_it_never_retries_a_4xx_other_than_429(status):
    responses.post(URL, status=status, json={"error": "invalid phone", "echo": TOKEN})

    with pytest.raises(PermanentProviderError) as caught:
        call()

    assert len(responses.calls) == 1
    assert caught.value.permanent
    assert caught.value.http_status == status
    assert caught.value.detail == {"error": "invalid phone", "echo": "***"}
    assert ExternalCall.objects.get().error_class == "ClientError"


@responses.activate
def test_it_gives_the_text_of_a_non_json_4xx_as_detail():
    responses.post(URL, status=400, body=f"bad token {TOKEN}")

    with pytest.raises(PermanentProviderError) as caught:
        call()

    assert caught.value.detail == "bad token ***"


@responses.activate
def test_it_keeps_secrets_out_of_the_call_log_the_logs_and_the_errors(caplog):
    caplog.set_level(logging.DEBUG)
    # requests puts the URL (here with the token in its path) in its exception messages.
    leaky = requests.ConnectionError(
        "HTTPSConnectionPool(host='api.z-api.io', port=443): Max retries exceeded with url: "
        f"/instances/3C0FFEE/token/{TOKEN}/send-text (Caused by NewConnectionError)"
    )
    responses.post(ZAPI_URL, body=leaky)

    with pytest.raises(TransientProviderError) as caught:
        call(ZAPI_URL, headers={"Client-Token": TOKEN}, json={"text": "Olá"})

    assert len(responses.calls) == 3
    rows = list(ExternalCall.objects.values())
    assert len(rows) == 3
    assert TOKEN not in repr(rows)
    assert "3C0FFEE" not in repr(rows)  # the path goes, not only the secret
    assert rows[0]["error_class"] == "ConnectionError"
    assert "Max retries exceeded" in rows[0]["error_message"]
    assert TOKEN not in caplog.text
    assert "api.z-api.io" in caplog.text  # it did log the failures
    rendered = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in rendered
    assert TOKEN not in repr(caught.value.args)


@responses.activate
def test_it_truncates_error_messages_to_500_characters():
    responses.post(URL, body=requests.ConnectionError("x" * 2000))

    with pytest.raises(TransientProviderError):
        call(retry=False)

    assert len(ExternalCall.objects.get().error_message) == 500


def test_redact_replaces_every_secret_but_ignores_short_values():
    text = "token=abcd1234 key=xyz pass=p%40ss%2Fword plain=p@ss/word"

    assert (
        http.redact(text, ["abcd1234", "xyz", "p@ss/word", ""])
        == "token=*** key=xyz pass=*** plain=***"
    )


def test_redact_replaces_a_longer_secret_whole_when_it_contains_a_shorter_one():
    assert http.redact("Bearer abcd-efgh", ["abcd", "abcd-efgh"]) == "Bearer ***"


def test_parse_retry_after_understands_seconds_dates_and_nonsense():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert http.parse_retry_after("3") == 3.0
    assert http.parse_retry_after(format_datetime(now + timedelta(seconds=5)), now=now) == 5.0
    assert http.parse_retry_after(format_datetime(now - timedelta(seconds=5)), now=now) == 0.0
    assert http.parse_retry_after("soon") is None
    assert http.parse_retry_after(None) is None


# --- Sent, but no answer --------------------------------------------------------------------
@responses.activate
def test_a_read_timeout_is_an_unknown_outcome_not_a_failure():
    responses.post(URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(OutcomeUnknownError):
        call(retry=False)


@responses.activate
def test_a_connection_dropped_after_sending_is_an_unknown_outcome():
    responses.post(
        URL,
        body=requests.ConnectionError(
            "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
        ),
    )

    with pytest.raises(OutcomeUnknownError):
        call(retry=False)


@pytest.mark.parametrize(
    "error",
    [requests.ConnectTimeout("connect timed out"), requests.ConnectionError("refused")],
)
@responses.activate
def test_a_connection_never_made_sent_nothing(error):
    responses.post(URL, body=error)

    with pytest.raises(TransientProviderError) as caught:
        call(retry=False)

    assert not isinstance(caught.value, OutcomeUnknownError)


@responses.activate
def test_retries_that_end_refused_still_report_that_an_earlier_try_may_have_arrived():
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    responses.post(URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(OutcomeUnknownError, match="gave up after 2 attempts"):
        call(max_attempts=2)
