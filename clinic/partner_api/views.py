"""The base of every partner endpoint: ``PartnerAPIMixin`` (authentication, scopes,
throttling, cursor pagination, problem+json errors, the request log and POST
idempotency for an APIView/ViewSet), the cursor pagination and ``created``."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from .idempotency import IdempotencyMixin
from .keys import ApiKeyAuthentication, StaffSessionAuthentication, api_clinic
from .models import ApiKey
from .problems import PROBLEM_JSON, problem_exception_handler, problem_title
from .request_log import api_request_log_record
from .scopes import HasScope
from .throttling import ApiKeyThrottle

logger = logging.getLogger(__name__)


class Cursor(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-pk"


class PartnerJSONParser(JSONParser):
    """JSON, the only body the partner API reads; nesting too deep for Python's parser
    (4 KB of ``[[[[``) is a malformed body, not a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply.")) from None


class PartnerAPIMixin(IdempotencyMixin):
    """Authentication, scopes, throttling, cursor pagination, problem+json errors, the
    request log and POST idempotency for an APIView/ViewSet. Bodies are JSON only."""

    parser_classes = [PartnerJSONParser]
    authentication_classes = [ApiKeyAuthentication, StaffSessionAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyThrottle]
    pagination_class = Cursor
    required_scopes: dict[str, str] = {}

    def get_exception_handler(self):
        return problem_exception_handler

    @property
    def clinic(self):
        return api_clinic(self.request)

    def check_permissions(self, request):
        # A method the endpoint does not have is a 405 whatever the key's scopes (the
        # scope map has no entry for it, which would read as "missing scope", 403).
        if request.method.upper() not in self._allowed_methods():
            raise exceptions.MethodNotAllowed(request.method)
        super().check_permissions(request)

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


def created(data, *, headers=None) -> Response:
    return Response(data, status=status.HTTP_201_CREATED, headers=headers)


@csrf_exempt
def api_fallback(request, *args, **kwargs):
    """Every ``/api/v1/`` path no route matched: the same path with its trailing slash if
    that is a route (``POST /api/v1/dlq/7/retry`` as documented: a redirect would turn it
    into a GET), else a problem+json 404 (never Django's HTML page)."""
    if not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_fallback:
            return match.func(request, *match.args, **match.kwargs)
    body = {
        "type": "https://cuidar.dev/problems/not_found",
        "title": problem_title(404, "not_found"),
        "status": 404,
        "detail": _("No API endpoint at this address."),
    }
    return JsonResponse(body, status=404, content_type=PROBLEM_JSON)
