"""The partner API's rows: keys, the request log and the stored answers of idempotent POSTs.

They moved here from ``clinic.models`` (issue 18) and keep their tables (``db_table``)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import CLINIC_MODEL, ClinicOwned

API_KEY_PREFIX = "cdr"


def api_key_hash(secret: str) -> str:
    """SHA-256 of a whole key: keys are long random strings, so a plain hash is enough
    (no password stretching needed) and lookups stay one indexed query."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(ClinicOwned):
    """A partner system's key to one clinic's API. The key is shown once, when it is
    created; only its hash is kept, with a visible prefix to tell keys apart."""

    name = models.CharField(_("name"), max_length=100, help_text=_("Who uses it, e.g. Lab X."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        db_table = "clinic_apikey"
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({API_KEY_PREFIX}_{self.prefix}_…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiRequestLog(models.Model):
    """One API request: who, what, how it went, how long. Never bodies or query strings."""

    clinic = models.ForeignKey(
        CLINIC_MODEL,
        on_delete=models.CASCADE,
        null=True,
        related_name="+",
        verbose_name=_("clinic"),
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, related_name="requests"
    )
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    status = models.PositiveSmallIntegerField()
    latency_ms = models.PositiveIntegerField()
    # The request's time (set by the caller: buffered rows are written later, in batches).
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)

    class Meta:
        db_table = "clinic_apirequestlog"
        verbose_name = _("API request")
        verbose_name_plural = _("API requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


class IdempotencyRecord(models.Model):
    """The answer to a POST sent with an ``Idempotency-Key``, kept 24 h so a retry gets
    the same answer instead of doing the work twice."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    in_flight = models.BooleanField(default=True)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    #: The answer's headers a replay must repeat (``Location`` of a 201).
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "clinic_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_unique_key")
        ]

    def __str__(self) -> str:
        return self.key
