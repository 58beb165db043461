"""Partner keys: creating and revoking them, the short-lived cache of verified keys, the
two ways a request authenticates (a key, or a staff session for the browsable API), how
the OpenAPI schema describes them, and :func:`api_clinic`, the clinic a request acts for.

A key is ``cdr_<prefix>_<secret>``, sent as ``Authorization: Bearer …`` or
``X-Api-Key: …``; it belongs to one clinic and only its hash is stored. A verified key
(with its clinic) is cached for a few seconds by the hash of the secret; revoking, saving
or deleting a key, or saving its clinic, drops the cached copy at once."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from clinic.kernel.tenancy import CLINIC_MODEL, current_clinic

from ._state import state_add, state_delete, state_get, state_put
from .models import API_KEY_PREFIX, ApiKey, api_key_hash
from .scopes import API_SCOPES

#: last_used_at is written at most this often per key (not on every request).
LAST_USED_EVERY = timedelta(minutes=1)
#: How long a verified key (and its clinic) is reused without reading the database. Changes
#: made through this module or by saving the models drop the cached copy at once; this
#: bounds what a change made behind the ORM's back (``queryset.update()``) may take.
KEY_CACHE_SECONDS = 5


def api_key_create(
    *,
    clinic,
    name: str,
    scopes: list[str],
    expires_at=None,
    by=None,
    prefix: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``clinic``; returns it and the full key, which is never shown again.

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
    key_cache_drop([key.key_hash])
    return key


# --- The cache of verified keys ---------------------------------------------------------------
def key_cache_name(key_hash: str) -> str:
    return f"api-key:{key_hash}"


def key_cache_drop(key_hashes) -> None:
    """Forget cached keys now and again after the commit: a request that read the row
    between the two would otherwise cache the old state for KEY_CACHE_SECONDS."""
    names = [key_cache_name(h) for h in key_hashes if h]
    if not names:
        return
    state_delete(names)
    transaction.on_commit(lambda: state_delete(names))


def _key_saved_or_deleted(sender, instance: ApiKey, **kwargs) -> None:
    key_cache_drop([instance.key_hash])


def _clinic_saved(sender, instance, **kwargs) -> None:
    # The cached key carries its clinic (is_active, time zone, options).
    key_cache_drop(ApiKey.objects.filter(clinic=instance).values_list("key_hash", flat=True))


post_save.connect(_key_saved_or_deleted, sender=ApiKey, dispatch_uid="api-key-cache-save")
post_delete.connect(_key_saved_or_deleted, sender=ApiKey, dispatch_uid="api-key-cache-delete")
# The clinic by its label: this app imports nothing of clinic but its kernel.
post_save.connect(_clinic_saved, sender=CLINIC_MODEL, dispatch_uid="api-key-cache-clinic")


# --- Authentication ---------------------------------------------------------------------------
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
        key = state_get(key_cache_name(digest))
        if key is None:
            key = ApiKey.objects.select_related("clinic").filter(key_hash=digest).first()
            if key is not None:
                state_put(key_cache_name(digest), key, KEY_CACHE_SECONDS)
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
        if not state_add(f"api-key-used:{key.pk}", int(LAST_USED_EVERY.total_seconds())):
            return
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        state_put(key_cache_name(digest), key, KEY_CACHE_SECONDS)

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


def api_clinic(request):
    """The clinic a request acts for: the key's, or the staff member's current clinic
    (``None``: neither)."""
    if isinstance(request.auth, ApiKey):
        return request.auth.clinic
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return current_clinic(request)
    return None
