"""Signatures of the webhooks Cuidar sends to partner systems (``X-Cuidar-Signature``).

The scheme is the one partners already know from Stripe, so the recipe in
``docs/webhooks.md`` is short::

    X-Cuidar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is inside the signed text, so a captured request cannot be replayed later
than the receiver's tolerance. While a subscription's secret is being rotated the header
carries one ``v1`` per valid secret; a receiver accepts the request if any of them matches.

Since issue 17 every delivery is also signed by the Standard Webhooks spec
(https://www.standardwebhooks.com), so the ``standardwebhooks``/``svix`` libraries verify it::

    webhook-id: <event id>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>

where ``key`` is the base64-decoded part of the secret after ``whsec_``. The ``X-Cuidar-*``
scheme above stays for existing subscribers during its deprecation period
(``LEGACY_SIGNATURE_UNTIL``, docs/webhooks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

#: Scheme version in the header; a future scheme gets a new name (v2) next to v1.
SCHEME = "v1"
#: Default tolerance, in seconds, between the signed timestamp and the receiver's clock.
DEFAULT_TOLERANCE = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
#: The last day the legacy ``X-Cuidar-Signature`` header is sent (docs/webhooks.md).
LEGACY_SIGNATURE_UNTIL = "2027-06-30"
#: Bytes of key in a new secret (Standard Webhooks asks for 24 to 64).
SECRET_BYTES = 32


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Cuidar-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={int(timestamp)},{SCHEME}={_digest(secret, body, timestamp)}"


def sign_many(secrets_: Iterable[str], body: bytes, timestamp: int) -> str:
    """One header with a ``v1`` per secret (newest first): used while a rotated secret's
    predecessor is still honoured, so partners can switch secrets without losing events."""
    parts = [f"t={int(timestamp)}"]
    parts += [f"{SCHEME}={_digest(s, body, timestamp)}" for s in secrets_ if s]
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(parts)


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """``"t=1,v1=ab,v1=cd"`` → ``(1, ["ab", "cd"])``. Unknown schemes are ignored; a header
    with no timestamp, or with more than one, gives ``None``."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value.strip())
        elif key == SCHEME:
            signatures.append(value.strip())
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return None, signatures
    return int(timestamps[0]), signatures


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` with ``secret``.

    Refuses timestamps more than ``tolerance`` seconds away from ``now`` (in either
    direction: a timestamp from the future is as suspicious as a stale one). Every ``v1``
    value is compared in constant time, and all of them are compared, so timing tells an
    attacker nothing about which one was close.
    """
    if not secret:
        return False
    timestamp, signatures = parse_header(header)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp).encode("ascii")
    matched = False
    for candidate in signatures:
        # Bytes, not str: compare_digest refuses non-ASCII str, and a header is input.
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in standard base64, the form
    the Standard Webhooks libraries decode."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


# --- Standard Webhooks ----------------------------------------------------------------------
def standard_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` under Standard Webhooks: its base64 part, decoded.

    Secrets issued before issue 17 are URL-safe base64 (``-`` and ``_``); they are decoded
    as such, which the libraries do not do: their owners rotate the secret to use a library
    (docs/webhooks.md says so).
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(padded)


def standard_signature(secrets_: Iterable[str], *, msg_id: str, body: bytes, timestamp: int) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated (two
    while a rotated secret's predecessor is still honoured)."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    values = [
        "v1,"
        + base64.b64encode(hmac.new(standard_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets_
        if s
    ]
    if not values:
        raise ValueError("at least one secret is needed to sign")
    return " ".join(values)
