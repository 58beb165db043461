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
- **Throttling**: per key (cache-backed; Redis in production), with ``RateLimit-*`` and
  ``Retry-After`` headers.
- **Log**: one ``ApiRequestLog`` per request (key, method, path, status, latency; no bodies).
- **Pagination**: cursors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, IntegrityError, transaction
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

from config.errors import ApplicationError

from .models import (
    API_KEY_PREFIX,
    API_SCOPES,
    ApiKey,
    ApiRequestLog,
    Clinic,
    IdempotencyRecord,
    api_key_hash,
)
from .tenancy import current_clinic

logger = logging.getLogger(__name__)
IDEMPOTENCY_TTL = timedelta(hours=24)
PROBLEM_JSON = "application/problem+json"
#: last_used_at is written at most this often per key (not on every request).
LAST_USED_EVERY = timedelta(minutes=1)


# --- Keys -----------------------------------------------------------------------------------
def api_key_create(
    *, clinic: Clinic, name: str, scopes: list[str], expires_at=None, by=None
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the full secret, which is never shown again."""
    unknown = set(scopes) - set(API_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    prefix = secrets.token_hex(4)
    full = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
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
    """The key stops working at once."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


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
        key = ApiKey.objects.select_related("clinic").filter(key_hash=api_key_hash(raw)).first()
        now = timezone.now()
        if key is None or not secrets.compare_digest(key.key_hash, api_key_hash(raw)):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if not key.is_usable(now) or not key.clinic.is_active:
            raise exceptions.AuthenticationFailed(_("This API key was revoked or has expired."))
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiClient(key), key

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
    """Requests per key (per staff user for sessions), in the shared cache."""

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
        allowed = super().allow_request(request, view)
        if self.key is not None:
            remaining = max(0, self.num_requests - len(self.history))
            reset = int(self.duration - (self.now - self.history[-1])) if self.history else 0
            request._ratelimit = (self.num_requests, remaining, max(0, reset))
        return allowed


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
        clinic_id = key.clinic_id if key else None
        try:
            ApiRequestLog.objects.create(
                clinic_id=clinic_id,
                api_key=key,
                method=request.method[:10],
                path=request.path[:255],
                status=response.status_code,
                latency_ms=max(0, int((time.perf_counter() - started) * 1000)),
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
            if record.in_flight:
                raise IdempotencyConflict(
                    _("A request with this Idempotency-Key is still being processed."),
                    status=409,
                ) from None
            raise IdempotentReplay(record) from None
        self._idempotency = record

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
            return problem(exc.status, exc.detail, code="idempotency_conflict")
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


class IdempotencyConflict(exceptions.APIException):
    def __init__(self, detail, *, status):
        super().__init__(detail)
        self.status = status
        self.status_code = status


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
    "problem",
    "problem_exception_handler",
]
