"""The partner API's conventions, in one place: every ``api.py`` builds on these.

- **Keys**: ``Authorization: Bearer cdr_<prefix>_<secret>`` (or ``X-Api-Key``). A key
  belongs to one clinic and carries scopes; only its hash is stored. Staff signed in to
  the admin may browse the API for the clinic they work in (read only).
- **Scopes**: a view declares ``required_scopes = {"GET": "patients:read", "POST":
  "patients:write"}``; a key without the scope gets 403.
- **Tenancy**: :func:`api_clinic` is the clinic of the request; querysets go through it.
- **Errors**: ``application/problem+json`` (RFC 9457) with a field map, for DRF errors and
  every ``ApplicationError``.
- **Idempotency**: a POST with ``Idempotency-Key``: same key and body → the stored
  response, replayed; same key, other body → 422; the first still running → 409. Kept 24 h.
  A claim whose request cannot still be running (its worker killed: gunicorn's timeout,
  OOM, ``kill -9``) expires after :func:`idempotency_claim_ttl`; a retry then runs. The
  work and its stored answer commit in one transaction, so a retry never does twice what
  was done (except :func:`idempotency_outside_transaction` actions).
- **Throttling**: per key (cache-backed; Redis in production), a sliding window over two
  counters (constant cost per request), with ``RateLimit-*`` and ``Retry-After`` headers.
- **Log**: one ``ApiRequestLog`` per request (key, method, path, status, latency; no bodies).
  With Redis the rows are buffered there and a worker writes them in bulk
  (:func:`api_request_log_flush`).
- **Key cache**: a verified key (with its clinic) is cached for a few seconds by the hash of
  the secret; revoking, saving or deleting a key, or saving its clinic, drops it at once.
- **Pagination**: cursors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import secrets
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from clinic.kernel import redis as shared_redis
from clinic.kernel.errors import ApplicationError
from clinic.kernel.redis import StateUnavailable, state_get_many, state_set

from .kernel.tenancy import current_clinic
from .models import (
    API_KEY_PREFIX,
    API_SCOPES,
    ApiKey,
    ApiRequestLog,
    Clinic,
    IdempotencyRecord,
    api_key_hash,
)

logger = logging.getLogger(__name__)
IDEMPOTENCY_TTL = timedelta(hours=24)
#: Added to the web worker timeout before an unanswered claim is taken over: the arbiter's
#: check interval and clock skew between web hosts.
IDEMPOTENCY_CLAIM_GRACE = timedelta(seconds=5)
PROBLEM_JSON = "application/problem+json"
#: last_used_at is written at most this often per key (not on every request).
LAST_USED_EVERY = timedelta(minutes=1)
#: How long a verified key (and its clinic) is reused without reading the database. Changes
#: made through this module or by saving the models drop the cached copy at once; this
#: bounds what a change made behind the ORM's back (``queryset.update()``) may take.
KEY_CACHE_SECONDS = 5


# --- Shared state on the hot path ----------------------------------------------------------
# The cached key, the last-used gate and the throttle counters are read on every request.
# With Redis: one persistent client and one round trip each (Django's Redis cache builds a
# client per call, and its incr() is two round trips). Without: Django's cache (process
# memory in the embedded default and in tests).
_STATE_PREFIX = "cuidar:api:"


def _redis():
    """The Redis client of ``REDIS_URL``, or ``None`` (the embedded default)."""
    return shared_redis.state_client()


def _redis_failed(what: str) -> None:
    # Redis down must not take the API down: the key is read from the database, the
    # throttle lets the request through, a cached key lives out its few seconds.
    logger.warning("API %s: Redis unavailable", what, exc_info=True)


def _state_get(name: str):
    try:
        return state_get_many([_STATE_PREFIX + name])[0]
    except StateUnavailable:
        return None  # the key is read from the database


def _state_set(name: str, value, seconds: int) -> None:
    with contextlib.suppress(StateUnavailable):  # logged; a cached key lives out its seconds
        state_set(_STATE_PREFIX + name, value, seconds)


def _state_add(name: str, seconds: int) -> bool:
    """Set ``name`` for ``seconds`` unless it is set; whether it was set now."""
    try:
        return state_set(_STATE_PREFIX + name, 1, seconds, only_if_missing=True)
    except StateUnavailable:
        return False


def _state_delete(names: list[str]) -> None:
    client = _redis()
    if client is None:
        cache.delete_many([_STATE_PREFIX + name for name in names])
        return
    import redis

    try:
        if names:
            client.delete(*[_STATE_PREFIX + name for name in names])
    except redis.RedisError:
        _redis_failed("key cache")


def _state_count(current: str, previous: str, seconds: int) -> tuple[int, int] | None:
    """Add one to counter ``current`` (kept ``seconds``); its new value and ``previous``'s
    (``None``: Redis is unavailable)."""
    client = _redis()
    if client is None:
        current, previous = _STATE_PREFIX + current, _STATE_PREFIX + previous
        try:
            count = cache.incr(current)
        except ValueError:  # not there yet (or just expired)
            count = 1 if cache.add(current, 1, seconds) else cache.incr(current)
        return count, cache.get(previous, 0)
    import redis

    pipe = client.pipeline(transaction=False)
    pipe.incr(_STATE_PREFIX + current)
    pipe.expire(_STATE_PREFIX + current, seconds)
    pipe.get(_STATE_PREFIX + previous)
    try:
        count, _expiry, before = pipe.execute()
    except redis.RedisError:
        _redis_failed("throttle")
        return None
    return int(count), int(before or 0)


def _state_uncount(current: str) -> None:
    client = _redis()
    if client is None:
        with contextlib.suppress(ValueError):
            cache.decr(_STATE_PREFIX + current)
        return
    import redis

    try:
        client.decr(_STATE_PREFIX + current)
    except redis.RedisError:
        _redis_failed("throttle")


# --- Keys -----------------------------------------------------------------------------------
def api_key_create(
    *,
    clinic: Clinic,
    name: str,
    scopes: list[str],
    expires_at=None,
    by=None,
    prefix: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the full key, which is never shown again.

    ``prefix`` (8 hex digits) and ``secret``: chosen by the caller instead of at random
    (the demo's key, derived from SECRET_KEY so that every ``make run`` can show it)."""
    unknown = set(scopes) - set(API_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    prefix = prefix or secrets.token_hex(4)
    full = f"{API_KEY_PREFIX}_{prefix}_{secret or secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        clinic=clinic,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(full),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=by,
    )
    return key, full


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """The key stops working at once (its cached copy is dropped, see below)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    _key_cache_drop([key.key_hash])
    return key


def _key_cache_name(key_hash: str) -> str:
    return f"api-key:{key_hash}"


def _key_cache_drop(key_hashes) -> None:
    """Forget cached keys now and again after the commit: a request that read the row
    between the two would otherwise cache the old state for KEY_CACHE_SECONDS."""
    names = [_key_cache_name(h) for h in key_hashes if h]
    if not names:
        return
    _state_delete(names)
    transaction.on_commit(lambda: _state_delete(names))


def _key_saved_or_deleted(sender, instance: ApiKey, **kwargs) -> None:
    _key_cache_drop([instance.key_hash])


def _clinic_saved(sender, instance: Clinic, **kwargs) -> None:
    # The cached key carries its clinic (is_active, time zone, options).
    _key_cache_drop(ApiKey.objects.filter(clinic=instance).values_list("key_hash", flat=True))


post_save.connect(_key_saved_or_deleted, sender=ApiKey, dispatch_uid="api-key-cache-save")
post_delete.connect(_key_saved_or_deleted, sender=ApiKey, dispatch_uid="api-key-cache-delete")
post_save.connect(_clinic_saved, sender=Clinic, dispatch_uid="api-key-cache-clinic")


class ApiClient:
    """The "user" of a request authenticated by an API key."""

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer cdr_…`` or ``X-Api-Key: cdr_…``."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        raw = header[7:].strip() if header.lower().startswith("bearer ") else ""
        raw = raw or request.headers.get("X-Api-Key", "").strip()
        if not raw:
            return None
        if not raw.startswith(f"{API_KEY_PREFIX}_"):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        digest = api_key_hash(raw)
        key = _state_get(_key_cache_name(digest))
        if key is None:
            key = ApiKey.objects.select_related("clinic").filter(key_hash=digest).first()
            if key is not None:
                _state_set(_key_cache_name(digest), key, KEY_CACHE_SECONDS)
        now = timezone.now()
        if key is None or not secrets.compare_digest(key.key_hash, digest):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        # Expiry is checked against the clock on every request, cached or not.
        if not key.is_usable(now) or not key.clinic.is_active:
            raise exceptions.AuthenticationFailed(_("This API key was revoked or has expired."))
        self._touch(key, digest, now)
        return ApiClient(key), key

    @staticmethod
    def _touch(key: ApiKey, digest: str, now) -> None:
        """``last_used_at``: one write per key per LAST_USED_EVERY, whatever the number of
        workers (the cache decides which request writes)."""
        if key.last_used_at is not None and now - key.last_used_at <= LAST_USED_EVERY:
            return
        if not _state_add(f"api-key-used:{key.pk}", int(LAST_USED_EVERY.total_seconds())):
            return
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        _state_set(_key_cache_name(digest), key, KEY_CACHE_SECONDS)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class StaffSessionAuthentication(SessionAuthentication):
    """Staff signed in to the admin may use the browsable API (their clinic, read only)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes key authentication (else spectacular warns, and
    ``check --deploy`` fails)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "cdr_<prefix>_<secret>"}


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = StaffSessionAuthentication
    name = "staffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


def api_clinic(request) -> Clinic | None:
    """The clinic a request acts for: the key's, or the staff member's current clinic."""
    if isinstance(request.auth, ApiKey):
        return request.auth.clinic
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return current_clinic(request)
    return None


class HasScope(BasePermission):
    """The key holds the scope the view requires for this method (``required_scopes``).
    Staff sessions: safe methods only."""

    message = "This API key does not have the scope this request needs."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            needed = getattr(view, "required_scopes", {}).get(request.method)
            if needed is None and request.method == "OPTIONS":
                return True
            if needed is None:
                return False
            if needed not in request.auth.scopes:
                self.message = _("This API key lacks the scope %(scope)s.") % {"scope": needed}
                return False
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff) and (
            request.method in SAFE_METHODS
        )


# --- Throttling -----------------------------------------------------------------------------
class ApiKeyThrottle(SimpleRateThrottle):
    """Requests per key (per staff user for sessions), in the shared cache.

    A sliding window estimated from two fixed-window counters (this window's and the
    previous one's, weighted by how much of it still overlaps the sliding window): one
    round trip per request whatever the rate (with Redis: increment one counter, read the
    other). DRF's own throttle keeps a list of every request time of the last window and
    rewrites it on every request."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window, self.elapsed = divmod(self.now, self.duration)
        current_name, previous_name = f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"
        # Count first, then look: two requests racing for the last place cannot both win.
        counts = _state_count(current_name, previous_name, int(2 * self.duration) + 1)
        if counts is None:
            return True  # no counters without Redis: let it through (logged)
        self.current, self.previous = counts
        weight = 1 - self.elapsed / self.duration
        allowed = self.previous * weight + self.current <= self.num_requests
        if not allowed:  # a refused request does not count
            _state_uncount(current_name)
            self.current -= 1
        used = self.previous * weight + self.current
        remaining = max(0, math.floor(self.num_requests - used))
        reset = max(0, math.ceil(self.duration - self.elapsed))
        request._ratelimit = (self.num_requests, remaining, reset)
        return allowed

    def wait(self):
        """Seconds until one more request fits in the sliding window."""
        limit = self.num_requests - 1
        if self.current > limit:
            # This window alone is full: wait for it to end, then for enough of it to slide
            # out of the next one.
            seconds = (self.duration - self.elapsed) + self.duration * (1 - limit / self.current)
        elif self.previous:
            seconds = self.duration * (1 - (limit - self.current) / self.previous) - self.elapsed
        else:
            seconds = self.duration - self.elapsed
        return max(1, math.ceil(seconds))


# --- Errors ---------------------------------------------------------------------------------
def _field_map(detail) -> dict:
    if isinstance(detail, dict):
        return {
            str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in detail.items()
        }
    return {}


def problem_exception_handler(exc, context):
    """Every error as ``application/problem+json``: type, title, status, detail, and
    ``errors`` (field → messages) for validation problems."""
    if isinstance(exc, ApplicationError):
        body = {
            "type": f"https://cuidar.dev/problems/{exc.code}",
            "title": exc.code.replace("_", " "),
            "status": exc.status_code,
            "detail": str(exc.message),
        }
        if exc.fields:
            body["errors"] = {k: [str(m) for m in v] for k, v in exc.fields.items()}
        return Response(body, status=exc.status_code, content_type=PROBLEM_JSON)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    body = {
        "type": f"https://cuidar.dev/problems/{getattr(exc, 'default_code', 'error')}",
        "title": str(getattr(exc, "default_detail", "Error")),
        "status": response.status_code,
    }
    if isinstance(exc, exceptions.ValidationError):
        body["detail"] = _("The request has invalid fields.")
        errors = _field_map(detail)
        if not errors and isinstance(detail, list):
            errors = {"non_field_errors": [str(m) for m in detail]}
        body["errors"] = errors
    else:
        body["detail"] = str(detail.get("detail", detail) if isinstance(detail, dict) else detail)
    response.data = body
    response.content_type = PROBLEM_JSON
    return response


def problem(status_code: int, detail: str, *, code: str = "error", **extra) -> Response:
    body = {
        "type": f"https://cuidar.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status_code,
        "detail": detail,
        **extra,
    }
    return Response(body, status=status_code, content_type=PROBLEM_JSON)


# --- Request log ----------------------------------------------------------------------------
#: With Redis, log rows wait in a Redis list and a worker writes them in bulk: a flush task
#: is sent each time this many more are waiting, and beat flushes every minute
#: (``clinic.api_request_log_flush``). Requests do not write them themselves …
LOG_FLUSH_AT = 200
#: … unless this many are waiting (no worker is flushing: Celery down): then the request
#: that finds them writes one batch, so that the buffer cannot grow without bound.
LOG_FLUSH_INLINE_AT = 20_000
#: Rows per INSERT when flushing; a request that flushes writes one batch at most.
LOG_BATCH = 1000
LOG_BUFFER = "cuidar:api-request-log"
_LOG_FLUSH_LOCK = "cuidar:api-request-log:flushing"
_LOG_COLUMNS = ("clinic_id", "api_key_id", "method", "path", "status", "latency_ms", "created_at")


def _log_buffer():
    """The Redis client holding the buffer, or ``None`` (no ``REDIS_URL``: the embedded
    default, where each row is written as it happens)."""
    return _redis()


def api_request_log_record(
    *, clinic_id: int | None, api_key_id: int | None, method: str, path: str, status: int,
    latency_ms: int,
) -> None:  # fmt: skip
    """Log one API request: into the Redis buffer when there is one (a worker writes it),
    else straight into ``ApiRequestLog``. Redis down: written straight away."""
    now = timezone.now()
    row = [clinic_id, api_key_id, method[:10], path[:255], status, max(0, latency_ms)]
    buffer = _log_buffer()
    if buffer is not None:
        import redis

        stamp = (now - _EPOCH) // _MICROSECOND
        try:
            waiting = buffer.rpush(LOG_BUFFER, json.dumps([*row, stamp]))
        except redis.RedisError:
            logger.warning("API request log buffer unavailable: writing directly", exc_info=True)
        else:
            if waiting >= LOG_FLUSH_INLINE_AT:
                try:
                    api_request_log_flush(batches=1)
                except (DatabaseError, redis.RedisError):  # the rows stay buffered
                    logger.warning("API request log not flushed", exc_info=True)
            elif waiting % LOG_FLUSH_AT == 0:
                _log_flush_soon()
            return
    ApiRequestLog.objects.create(**dict(zip(_LOG_COLUMNS, [*row, now], strict=True)))


def _log_flush_soon() -> None:
    """Ask a worker to write the buffer (a 200-row INSERT has no place in a request)."""
    from .tasks import api_request_log_flush_task

    try:
        api_request_log_flush_task.delay()
    except Exception:  # the broker (or an eager flush) failed: beat's minute job flushes
        logger.warning("API request log flush not queued", exc_info=True)


def api_request_log_flush(*, batches: int | None = None) -> int:
    """Write the buffered request log into ``ApiRequestLog`` (at most ``batches`` INSERTs
    of LOG_BATCH rows; all of it by default); returns the number of rows written.

    One flusher at a time (a Redis lock). Rows leave the buffer only after their INSERT
    committed: a crash in between writes them twice rather than losing them. Each row
    keeps the time of its request."""
    buffer = _log_buffer()
    if buffer is None:
        return 0
    import redis

    lock = buffer.lock(_LOG_FLUSH_LOCK, timeout=60, blocking=False)
    if not lock.acquire():
        return 0
    written = 0
    try:
        while batches is None or batches > 0:
            raw = buffer.lrange(LOG_BUFFER, 0, LOG_BATCH - 1)
            if not raw:
                break
            _log_insert(raw)
            buffer.ltrim(LOG_BUFFER, len(raw), -1)
            written += len(raw)
            batches = None if batches is None else batches - 1
    finally:
        # Expired meanwhile (LockError): there is nothing to release.
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    return written


def _log_insert(raw: list[bytes]) -> None:
    rows = []
    for item in raw:
        try:
            *values, stamp = json.loads(item)
            rows.append([*values, _EPOCH + timedelta(microseconds=stamp)])
        except (TypeError, ValueError):
            logger.error("Unreadable API request log row dropped: %r", item[:200])
    # A key or clinic deleted since the request: as the foreign keys would have it (the
    # key SET_NULL, the clinic's rows CASCADE), instead of failing the whole batch.
    key_ids = {row[1] for row in rows if row[1] is not None}
    clinic_ids = {row[0] for row in rows if row[0] is not None}
    keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
    clinics = set(Clinic.objects.filter(pk__in=clinic_ids).values_list("pk", flat=True))
    objs = []
    for clinic_id, key_id, *rest in rows:
        if clinic_id is not None and clinic_id not in clinics:
            continue
        key_id = key_id if key_id in keys else None
        objs.append(
            ApiRequestLog(**dict(zip(_LOG_COLUMNS, [clinic_id, key_id, *rest], strict=True)))
        )
    if not objs:
        return
    # created_at is the request's time, set on each row (a default, not auto_now_add).
    ApiRequestLog.objects.bulk_create(objs)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: Days the request log is kept (``CUIDAR_RETENTION_API_REQUEST_LOG``), like the
#: integrations' call logs (integrations/housekeeping.py): enough to answer a partner's
#: "what did we send last month?".
API_REQUEST_LOG_RETENTION_DAYS = 90
#: Rows deleted per statement: a busy partner leaves millions, and one DELETE of them all
#: would hold its locks and its WAL for minutes.
LOG_PURGE_BATCH = 10_000


def api_request_log_purge(*, now=None) -> int:
    """Delete request-log rows past their retention, a batch at a time (weekly job);
    returns how many. Idempotent."""
    now = now or timezone.now()
    days = getattr(settings, "CUIDAR_RETENTION_API_REQUEST_LOG", API_REQUEST_LOG_RETENTION_DAYS)
    old = ApiRequestLog.objects.filter(created_at__lt=now - timedelta(days=days))
    deleted = 0
    while batch := list(old.order_by().values_list("pk", flat=True)[:LOG_PURGE_BATCH]):
        deleted += ApiRequestLog.objects.filter(pk__in=batch).delete()[0]
    return deleted


# --- Pagination -----------------------------------------------------------------------------
class Cursor(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-pk"


# --- The base of every partner endpoint -----------------------------------------------------
class PartnerAPIMixin:
    """Authentication, scopes, throttling, cursor pagination, problem+json errors, the
    request log and POST idempotency for an APIView/ViewSet."""

    authentication_classes = [ApiKeyAuthentication, StaffSessionAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyThrottle]
    pagination_class = Cursor
    required_scopes: dict[str, str] = {}

    def get_exception_handler(self):
        return problem_exception_handler

    @property
    def clinic(self) -> Clinic | None:
        return api_clinic(self.request)

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        self._log(request, response, started)
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        self._idempotency_store(response)
        limit = getattr(request, "_ratelimit", None)
        if limit is not None:
            total, remaining, reset = limit
            response["RateLimit-Limit"] = str(total)
            response["RateLimit-Remaining"] = str(remaining)
            response["RateLimit-Reset"] = str(reset)
        return response

    def _log(self, request, response, started) -> None:
        drf_request = getattr(self, "request", None)
        key = getattr(drf_request, "auth", None)
        key = key if isinstance(key, ApiKey) else None
        try:
            api_request_log_record(
                clinic_id=key.clinic_id if key else None,
                api_key_id=key.pk if key else None,
                method=request.method,
                path=request.path,
                status=response.status_code,
                latency_ms=int((time.perf_counter() - started) * 1000),
            )
        except DatabaseError:  # a log line must never break an answer
            logger.warning("API request not logged", exc_info=True)

    # Idempotency ---------------------------------------------------------------------------
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._idempotency = None
        key_header = request.headers.get("Idempotency-Key", "").strip()
        if request.method != "POST" or not key_header or not isinstance(request.auth, ApiKey):
            return
        if len(key_header) > 255:
            raise exceptions.ValidationError({"Idempotency-Key": [_("At most 255 characters.")]})
        body_hash = hashlib.sha256(
            request.method.encode() + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        IdempotencyRecord.objects.filter(
            api_key=request.auth, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
        ).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key=request.auth, key=key_header, request_hash=body_hash
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(api_key=request.auth, key=key_header)
            if record.request_hash != body_hash:
                raise IdempotencyConflict(
                    _("This Idempotency-Key was used with another request body."), status=422
                ) from None
            if record.in_flight and not _idempotency_claim_take_over(record):
                expires = record.created_at + idempotency_claim_ttl()
                raise IdempotencyConflict(
                    _("A request with this Idempotency-Key is still being processed."),
                    status=409,
                    retry_after=max(1, math.ceil((expires - timezone.now()).total_seconds())),
                ) from None
            if not record.in_flight:
                raise IdempotentReplay(record) from None
        self._idempotency = record
        # The work and its stored answer commit together: a worker killed after the work
        # committed but before the answer was stored would let a retry do it again.
        handler = getattr(self, request.method.lower(), None)
        action = getattr(self, getattr(self, "action", None) or "", None)
        if handler is not None and getattr(action or handler, "idempotency_atomic", True):
            self.post = self._with_answer_in_transaction(handler)

    def _with_answer_in_transaction(self, handler):
        def handle(request, *args, **kwargs):
            with transaction.atomic():
                response = handler(request, *args, **kwargs)
                self._idempotency_store(response)
            return response

        return handle

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            record = exc.record
            response = Response(
                json.loads(record.response_body) if record.response_body else None,
                status=record.response_status,
                content_type=record.response_content_type or None,
            )
            response["Idempotent-Replayed"] = "true"
            return response
        if isinstance(exc, IdempotencyConflict):
            response = problem(exc.status, exc.detail, code="idempotency_conflict")
            if exc.retry_after is not None:
                response["Retry-After"] = str(exc.retry_after)
            return response
        try:
            return super().handle_exception(exc)
        except Exception:
            # An unhandled error never reaches finalize_response: release the key here,
            # or every retry would get "still being processed" for 24 h.
            record, self._idempotency = getattr(self, "_idempotency", None), None
            if record is not None:
                try:
                    record.delete()
                except DatabaseError:
                    logger.warning("Idempotency key not released", exc_info=True)
            raise

    def _idempotency_store(self, response) -> None:
        record = getattr(self, "_idempotency", None)
        if record is None:
            return
        if response.status_code >= 500:
            record.delete()  # a crash is not an answer: let the partner retry
            self._idempotency = None
            return
        record.in_flight = False
        record.response_status = response.status_code
        record.response_body = json.dumps(response.data, default=str)
        # DRF's own content_type (problem+json) or none: the header is not set until the
        # response is rendered, after this (it would read Django's default, text/html).
        record.response_content_type = (getattr(response, "content_type", None) or "")[:100]
        record.save(
            update_fields=[
                "in_flight",
                "response_status",
                "response_body",
                "response_content_type",
            ]
        )
        self._idempotency = None


def idempotency_claim_ttl() -> timedelta:
    """How long an unanswered claim on an Idempotency-Key stands: past the web worker
    timeout (``CUIDAR_WEB_WORKER_TIMEOUT``, gunicorn's ``--timeout``, config/gunicorn.py)
    its request cannot still be running — the worker was killed — so a retry may run."""
    timeout = getattr(settings, "CUIDAR_WEB_WORKER_TIMEOUT", 30)
    return timedelta(seconds=timeout) + IDEMPOTENCY_CLAIM_GRACE


def _idempotency_claim_take_over(record: IdempotencyRecord) -> bool:
    """Take over the claim of a request that died unanswered, if it is past its time;
    whether this request now holds it. Two retries racing: one wins (the other sees the
    renewed claim, 409)."""
    now = timezone.now()
    if record.created_at > now - idempotency_claim_ttl():
        return False
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, in_flight=True, created_at=record.created_at
    ).update(created_at=now)
    if taken:
        record.created_at = now
        logger.warning(
            "Idempotency key %s of API key %s: its request died unanswered; retried",
            record.pk,
            record.api_key_id,
        )
    return bool(taken)


def idempotency_outside_transaction(view_method):
    """For a POST action that waits on a partner or provider (a test ping): its work and
    its stored answer are not held in one transaction (no transaction is held open while
    waiting on the network). A worker killed in between may let a retry run it again."""
    view_method.idempotency_atomic = False
    return view_method


class IdempotencyConflict(exceptions.APIException):
    def __init__(self, detail, *, status, retry_after: int | None = None):
        super().__init__(detail)
        self.status = status
        self.status_code = status
        self.retry_after = retry_after


class IdempotentReplay(Exception):
    def __init__(self, record):
        super().__init__("replay")
        self.record = record


def created(data, *, headers=None) -> Response:
    return Response(data, status=status.HTTP_201_CREATED, headers=headers)


__all__ = [
    "API_SCOPES",
    "ApiKeyAuthentication",
    "Cursor",
    "HasScope",
    "PartnerAPIMixin",
    "api_clinic",
    "api_key_create",
    "api_key_revoke",
    "api_request_log_flush",
    "api_request_log_purge",
    "api_request_log_record",
    "idempotency_outside_transaction",
    "problem",
    "problem_exception_handler",
]
