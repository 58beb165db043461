"""The only way out to the network.

Every provider adapter calls :func:`request` (through ``Provider.request``). It sets
timeouts, retries transient failures with exponential backoff and jitter, honours
``Retry-After``, sends the idempotency key and a correlation id, and writes one
``ExternalCall`` row per attempt. It never stores or logs bodies, paths, queries or secrets:
paths and queries can hold tokens (Z-API puts its token in the path), and ``requests``
exceptions embed the whole URL in their message, so every text that leaves this module goes
through :func:`redact`.

Tests stub the network with ``responses``; ``_sleep`` is the one seam for the backoff
waits.
"""

from __future__ import annotations

import email.utils
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests
from django.conf import settings
from django.db import DatabaseError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .base import (
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

logger = logging.getLogger(__name__)

#: One session per process: connection pooling and keep-alive across calls.
session = requests.Session()

DEFAULT_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds
#: A ``Retry-After`` longer than this is not slept through here: the caller reschedules.
DEFAULT_RETRY_AFTER_CAP = 30.0
#: Exponential backoff with full jitter between attempts: 0.5 s, 1 s, 2 s … at most 8 s.
_backoff = wait_random_exponential(multiplier=0.5, max=8)

REDACTED = "***"
#: Shorter "secrets" (empty strings, flags like "1") would redact half of every message.
MIN_SECRET_LENGTH = 4
ERROR_MESSAGE_MAX = 500
DETAIL_MAX = 2000


def _sleep(seconds: float) -> None:
    """Wait between attempts (tests replace this to record waits instead of sleeping)."""
    time.sleep(seconds)


def redact(text: Any, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (of at least 4 characters) replaced by ``***``, also in
    its URL-encoded forms (a secret in a path or query shows up percent-encoded in
    ``requests``' exception messages)."""
    text = str(text)
    variants: set[str] = set()
    for secret in secrets:
        secret = str(secret or "")
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        variants.update({secret, quote(secret, safe=""), quote(secret), quote_plus(secret)})
    # Longest first, so a secret containing another is replaced whole.
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return text


def _redact_data(data: Any, secrets: list[str]) -> Any:
    """Redact every string inside parsed JSON (keys included)."""
    if isinstance(data, dict):
        return {redact(k, secrets): _redact_data(v, secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_data(v, secrets) for v in data]
    if isinstance(data, str):
        return redact(data, secrets)
    return data


def _host(url: str) -> str:
    """Host (and port) only: never the user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return host


def _scrub_url(text: str, url: str) -> str:
    """Remove the URL's path and query from a message (``requests`` exceptions quote
    ``url: /path?query``), whatever the secrets list says."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    for fragment in (url, path_and_query, parts.path):
        if fragment and fragment != "/":
            text = text.replace(fragment, "/[path]")
    return text


def request_may_have_arrived(exc: BaseException) -> bool:
    """Whether a failed call may still have taken effect at the provider: the request was
    sent and the answer lost (a read timeout, a connection aborted or reset mid-exchange).
    A connect timeout, a refused connection, a failed name lookup or TLS handshake mean
    nothing was sent. Follows ``__cause__``/``__context__`` (SDKs wrap requests' errors)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, requests.ReadTimeout):
            return True
        if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
            return False
        if isinstance(exc, requests.ConnectionError):
            text = str(exc)
            return "Connection aborted" in text or "Connection reset" in text
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _default_timeout() -> tuple[float, float]:
    value = getattr(settings, "CUIDAR_HTTP_TIMEOUT", DEFAULT_TIMEOUT)
    if isinstance(value, int | float):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (at - now).total_seconds())


def _parse_detail(response: requests.Response, secrets: list[str]) -> Any:
    """A 4xx body, for the caller to explain the refusal: parsed JSON or text, redacted."""
    try:
        return _redact_data(response.json(), secrets)
    except ValueError:
        return redact(response.text[:DETAIL_MAX], secrets)


def _record(**fields) -> None:
    """One ``ExternalCall`` row.

    Written with the default connection, so a row written inside a caller's
    ``transaction.atomic`` block rolls back with it: a call made from a transaction that
    fails later leaves no trace here (its log line stays). A failed write never hides the
    provider's answer.
    """
    from .models import ExternalCall

    try:
        ExternalCall.objects.create(**fields)
    except DatabaseError as exc:
        logger.warning("external call not recorded: %s", exc.__class__.__name__)


def record_external_call(**fields) -> None:
    """One ``ExternalCall`` row for a call that did not go through :func:`request`
    (an SDK with its own HTTP session, e.g. anymail's ESP backends). Same fields as the
    model; ``attempt`` defaults to 1, ``method`` to POST, and the error message is cut to
    the column's size. The caller redacts it (:func:`redact`) first."""
    fields.setdefault("attempt", 1)
    fields.setdefault("method", "POST")
    fields.setdefault("correlation_id", uuid.uuid4().hex)
    fields["error_message"] = str(fields.get("error_message") or "")[:ERROR_MESSAGE_MAX]
    _record(**fields)


def request(
    method: str,
    url: str,
    *,
    provider: str,
    operation: str,
    clinic_id: int | None = None,
    account_id: int | None = None,
    idempotency_key: str | None = None,
    idempotency_header: str | None = None,
    secrets: Iterable[str] = (),
    timeout: tuple[float, float] | None = None,
    retry: bool = True,
    max_attempts: int = 3,
    correlation_id: str | None = None,
    **requests_kwargs,
) -> requests.Response:
    """Make one outbound HTTP call for ``provider.operation`` and return its response.

    - 2xx/3xx: the response is returned.
    - 4xx other than 429: ``PermanentProviderError`` (``http_status``, redacted ``detail``),
      never retried.
    - A read timeout or a connection dropped after the request went out raises
      ``OutcomeUnknownError`` (a ``TransientProviderError``): the provider may have acted.
    - Connection errors, timeouts, 5xx and 429: retried up to ``max_attempts`` (one attempt
      with ``retry=False``), with exponential backoff and jitter, or after ``Retry-After``
      when the provider sends one; then ``TransientProviderError``. A ``Retry-After`` longer
      than ``CUIDAR_HTTP_RETRY_AFTER_CAP`` stops at once with ``retry_after`` set, so the
      caller reschedules instead of holding a worker.

    The same idempotency key (in ``idempotency_header``) and ``X-Correlation-Id`` go with
    every attempt. Retrying a timed-out POST can repeat its effect at a provider that
    accepts no idempotency key: such callers pass ``retry=False``.
    """
    secrets = [str(s) for s in secrets if s and len(str(s)) >= MIN_SECRET_LENGTH]
    correlation_id = correlation_id or uuid.uuid4().hex
    headers = dict(requests_kwargs.pop("headers", None) or {})
    headers["X-Correlation-Id"] = correlation_id
    if idempotency_key and idempotency_header:
        headers[idempotency_header] = idempotency_key
    timeout = timeout or _default_timeout()
    retry_after_cap = float(
        getattr(settings, "CUIDAR_HTTP_RETRY_AFTER_CAP", DEFAULT_RETRY_AFTER_CAP)
    )
    method = method.upper()
    host = _host(url)
    label = f"{provider}.{operation}"

    def clean(text: Any) -> str:
        return redact(_scrub_url(str(text), url), secrets)

    def attempt_once(number: int) -> requests.Response:
        started = time.perf_counter()
        status_code: int | None = None
        error: ProviderError | None = None
        error_class = ""
        error_message = ""
        response = None
        may_have_arrived = False
        try:
            response = session.request(
                method, url, headers=headers, timeout=timeout, **requests_kwargs
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            # Kept as text only, and raised outside this block: the requests exception
            # (whose message holds the URL) must not ride along as __context__.
            error_class = exc.__class__.__name__
            error_message = clean(exc)
            may_have_arrived = request_may_have_arrived(exc)
        latency_ms = max(0, int((time.perf_counter() - started) * 1000))

        if response is not None:
            status_code = response.status_code
            if status_code == 429 or status_code >= 500:
                error_class = "RateLimited" if status_code == 429 else "ServerError"
                error_message = clean(f"HTTP {status_code} {response.reason or ''}".strip())
                error = TransientProviderError(
                    f"{label}: HTTP {status_code} from {host}",
                    provider=provider,
                    http_status=status_code,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            elif status_code >= 400:
                error_class = "ClientError"
                error_message = clean(f"HTTP {status_code} {response.reason or ''}".strip())
                error = PermanentProviderError(
                    f"{label}: HTTP {status_code} from {host}",
                    provider=provider,
                    http_status=status_code,
                    detail=_parse_detail(response, secrets),
                )
        else:
            # Sent but unanswered: the provider may have acted on it (unknown outcome).
            cls = OutcomeUnknownError if may_have_arrived else TransientProviderError
            error = cls(
                f"{label}: {error_class} calling {host}: {error_message}", provider=provider
            )

        _record(
            clinic_id=clinic_id,
            account_id=account_id,
            provider=provider,
            operation=operation,
            method=method,
            host=host,
            status_code=status_code,
            succeeded=error is None,
            latency_ms=latency_ms,
            error_class=error_class,
            error_message=error_message[:ERROR_MESSAGE_MAX],
            attempt=number,
            correlation_id=correlation_id,
        )
        if error is None:
            logger.debug("%s %s %s → %s", label, method, host, status_code)
            return response
        logger.warning(
            "%s %s %s attempt %d failed: %s %s (correlation %s)",
            label,
            method,
            host,
            number,
            error_class,
            error_message,
            correlation_id,
        )
        raise error

    def should_retry(exc: BaseException) -> bool:
        if not isinstance(exc, TransientProviderError):
            return False
        return exc.retry_after is None or exc.retry_after <= retry_after_cap

    def wait(retry_state) -> float:
        exc = retry_state.outcome.exception()
        if isinstance(exc, TransientProviderError) and exc.retry_after is not None:
            return exc.retry_after
        return _backoff(retry_state)

    attempts = max(1, max_attempts) if retry else 1
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(should_retry),
        sleep=lambda seconds: _sleep(seconds),
        reraise=True,
    )
    number = 0
    unknown = False

    def counted() -> requests.Response:
        nonlocal number, unknown
        number += 1
        try:
            return attempt_once(number)
        except OutcomeUnknownError:
            unknown = True
            raise

    try:
        return retrying(counted)
    except TransientProviderError as exc:
        if number < 2:
            raise
        failure = exc
    # Raised outside the except block so the traceback reads as one error. When any attempt
    # may have reached the provider, the outcome stays unknown whatever the last one said.
    raise (OutcomeUnknownError if unknown else TransientProviderError)(
        f"{failure} (gave up after {number} attempts)",
        provider=provider,
        http_status=failure.http_status,
        retry_after=failure.retry_after,
        detail=failure.detail,
    )


def response_json(response: requests.Response) -> Any:
    """The JSON body of a successful response, or ``TransientProviderError`` when the
    provider answered 2xx with something else (a proxy's HTML page, a truncated body)."""
    try:
        return response.json()
    except ValueError:
        raise TransientProviderError(
            f"unexpected non-JSON answer from {_host(response.url or '')}"
        ) from None
