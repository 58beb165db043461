"""POSTs sent with an ``Idempotency-Key``: same key and body → the stored response,
replayed; same key, other body → 422; the first still running → 409. Kept 24 h.

A claim whose request cannot still be running (its worker killed: gunicorn's timeout, OOM,
``kill -9``) expires after :func:`idempotency_claim_ttl`; a retry then runs. The work and
its stored answer commit in one transaction, so a retry never does twice what was done
(except :func:`idempotency_outside_transaction` actions)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response

from .models import ApiKey, IdempotencyRecord
from .problems import problem

logger = logging.getLogger(__name__)
IDEMPOTENCY_TTL = timedelta(hours=24)
#: Added to the web worker timeout before an unanswered claim is taken over: the arbiter's
#: check interval and clock skew between web hosts.
IDEMPOTENCY_CLAIM_GRACE = timedelta(seconds=5)
#: Headers of the first answer that its replays repeat.
REPLAYED_HEADERS = ("Location",)


class IdempotencyMixin:
    """The ``Idempotency-Key`` handling of ``PartnerAPIMixin`` (views.py): the claim is
    taken in ``initial``, the answer stored when the response is finalised (the mixin
    calls ``_idempotency_store``), a replay or conflict answered in ``handle_exception``."""

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
            for name, value in (record.response_headers or {}).items():
                response[name] = value
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
        record.response_headers = {
            name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)
        }
        record.save(
            update_fields=[
                "in_flight",
                "response_headers",
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
