"""Secrets at rest: Fernet encryption with key rotation.

Keys come from ``CUIDAR_FERNET_KEYS`` (comma-separated, newest first; see settings). Values
are encrypted with the first key and decrypted with any, so a new key can be put in front,
``manage.py rotate_credentials`` run, and the old key removed afterwards.
"""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "CUIDAR_FERNET_KEYS", []) or [])
    if not keys:
        raise ImproperlyConfigured("CUIDAR_FERNET_KEYS is empty: secrets cannot be encrypted.")
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with CUIDAR_FERNET_KEYS: was a key removed "
            "before `manage.py rotate_credentials` ran?"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key."""
    return _fernet().rotate(token.encode()).decode()


class EncryptedJSONField(models.TextField):
    """A JSON object stored as one Fernet token. Python side: a dict."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return json.loads(decrypt(value))

    def get_prep_value(self, value):
        if value in (None, "", {}):
            return ""
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        # Never serialise secrets in clear (dumpdata, admin history).
        return self.get_prep_value(self.value_from_object(obj))


def mask(value: str, visible: int = 4) -> str:
    """``sk_live_abcdef1234`` → ``••••1234``: enough to recognise, not to use."""
    value = str(value or "")
    if len(value) <= visible * 2:
        return "•" * len(value)
    return "••••" + value[-visible:]
