"""Signatures of the webhooks Cuidar sends to partner systems (``X-Cuidar-Signature``).

The scheme is the one partners already know from Stripe, so the recipe in
``docs/webhooks.md`` is short::

    X-Cuidar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is inside the signed text, so a captured request cannot be replayed later
than the receiver's tolerance. While a subscription's secret is being rotated the header
carries one ``v1`` per valid secret; a receiver accepts the request if any of them matches.
"""

from __future__ import annotations

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
    """A fresh signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)
