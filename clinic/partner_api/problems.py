"""Errors as ``application/problem+json`` (RFC 9457): type, title, status, detail, and a
field map for validation problems; DRF's errors and every ``ApplicationError`` alike.
``problem_exception_handler`` is DRF's ``EXCEPTION_HANDLER`` (config/settings.py)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from clinic.kernel.errors import ApplicationError

PROBLEM_JSON = "application/problem+json"

#: A problem's ``title`` by its type (RFC 9457: "a short, human-readable summary of the
#: problem type"), in the request's language (``Accept-Language``, pt-BR by default): the
#: types of DRF's errors and of this framework. An ``ApplicationError`` names its own
#: (``title``); a type with none falls back to its status's title (``STATUS_TITLES``).
TYPE_TITLES = {
    "invalid": gettext_lazy("Invalid request"),
    "parse_error": gettext_lazy("Malformed request body"),
    "not_authenticated": gettext_lazy("Authentication required"),
    "authentication_failed": gettext_lazy("Authentication failed"),
    "permission_denied": gettext_lazy("Permission denied"),
    "not_found": gettext_lazy("Not found"),
    "method_not_allowed": gettext_lazy("Method not allowed"),
    "not_acceptable": gettext_lazy("Not acceptable"),
    "unsupported_media_type": gettext_lazy("Unsupported media type"),
    "payload_too_large": gettext_lazy("Request too large"),
    "idempotency_conflict": gettext_lazy("Idempotency key conflict"),
    "throttled": gettext_lazy("Too many requests"),
}

STATUS_TITLES = {
    400: gettext_lazy("Invalid request"),
    401: gettext_lazy("Not authenticated"),
    403: gettext_lazy("Forbidden"),
    404: gettext_lazy("Not found"),
    405: gettext_lazy("Method not allowed"),
    406: gettext_lazy("Not acceptable"),
    409: gettext_lazy("Conflict"),
    413: gettext_lazy("Request too large"),
    415: gettext_lazy("Unsupported media type"),
    422: gettext_lazy("Unprocessable request"),
    429: gettext_lazy("Too many requests"),
}


def problem_title(status: int, code: str | None = None, *, title=None) -> str:
    """The title of problem type ``code`` (or the given ``title``, an application error's
    own), else of the status."""
    found = title or TYPE_TITLES.get(code) or STATUS_TITLES.get(status)
    return str(found or gettext_lazy("Error"))


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
            "title": problem_title(exc.status_code, exc.code, title=exc.title),
            "status": exc.status_code,
            "detail": str(exc.message),
        }
        if exc.fields:
            body["errors"] = {k: [str(m) for m in v] for k, v in exc.fields.items()}
        return Response(body, status=exc.status_code, content_type=PROBLEM_JSON)
    if isinstance(exc, RequestDataTooBig):
        return problem(
            413,
            _("The request body is larger than this API accepts."),
            code="payload_too_large",
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    code = getattr(exc, "default_code", "error")
    body = {
        "type": f"https://cuidar.dev/problems/{code}",
        "title": problem_title(response.status_code, code),
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
        "title": problem_title(status_code, code),
        "status": status_code,
        "detail": detail,
        **extra,
    }
    return Response(body, status=status_code, content_type=PROBLEM_JSON)
