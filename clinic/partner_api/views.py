"""The base of every partner endpoint: ``PartnerAPIMixin`` (authentication, scopes,
throttling, cursor pagination, problem+json errors, the request log and POST
idempotency for an APIView/ViewSet), the cursor pagination and ``created``."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from .idempotency import IdempotencyMixin
from .keys import ApiKeyAuthentication, StaffSessionAuthentication, api_clinic
from .models import ApiKey
from .problems import problem_exception_handler
from .request_log import api_request_log_record
from .scopes import HasScope
from .throttling import ApiKeyThrottle

logger = logging.getLogger(__name__)


class Cursor(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-pk"


class PartnerAPIMixin(IdempotencyMixin):
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
    def clinic(self):
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


def created(data, *, headers=None) -> Response:
    return Response(data, status=status.HTTP_201_CREATED, headers=headers)
