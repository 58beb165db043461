"""Partner webhook subscriptions: creating them, rotating their secret, and posting events.

The outbox (``outbox.py``) calls :func:`subscription_post` once per delivery attempt; any
exception is a failed attempt that it retries with backoff and, after the last one, turns
into a dead letter. What a partner receives is documented in ``docs/webhooks.md``: keep the
two in step, they are a public contract.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.kernel.errors import ApplicationError

from . import signing
from .base import PermanentProviderError, ProviderError
from .event_schemas import PING_EVENT, envelope
from .events import EVENT_TYPES
from .models import WebhookSubscription

PROVIDER = "partner_webhook"
USER_AGENT = "Cuidar-Webhooks/1.0"
#: (connect, read) seconds: a partner has 10 s to answer 2xx (docs/webhooks.md says so).
TIMEOUT = (5.0, 10.0)
#: After a rotation the old secret still signs (a second v1) for this long, so the partner
#: can deploy the new one without losing events.
ROTATION_GRACE = timedelta(hours=24)

#: A ping waits less than a delivery: someone is looking at the admin or the API for its
#: answer. It runs in a worker (``subscription_ping_request``), never in the web request.
PING_TIMEOUT = (3.0, 5.0)
URL_MAX_LENGTH = 500  # WebhookSubscription.url

_url_validator = URLValidator(schemes=["https", "http"])


class InvalidSubscription(ApplicationError):
    """A subscription's URL or event types are not acceptable."""

    code = "invalid_subscription"
    title = gettext_lazy("Invalid subscription")


_INTERNAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".lan", ".home.arpa")


def is_internal_address(url: str) -> bool:
    """Whether a URL points inside the network Cuidar runs in: loopback, private, link-local
    (cloud metadata at 169.254.169.254) or reserved IPs, or local host names. Partners may
    register webhook URLs: they must not make Cuidar call its own infrastructure (SSRF).
    Names that resolve to internal addresses are refused again when delivering."""
    import ipaddress
    from urllib.parse import urlsplit

    if getattr(settings, "CUIDAR_WEBHOOKS_ALLOW_INTERNAL", False):
        return False
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return True
    if host == "localhost" or host.endswith(_INTERNAL_NAMES):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def resolves_internally(url: str) -> bool:
    """Whether the URL's host name resolves (now) to an internal address: a public name
    can be pointed at 127.0.0.1 after it was accepted. A name that does not resolve is left
    to fail in the HTTP call."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    if getattr(settings, "CUIDAR_WEBHOOKS_ALLOW_INTERNAL", False):
        return False
    if is_internal_address(url):
        return True
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return False
    return any(not ipaddress.ip_address(info[4][0].split("%")[0]).is_global for info in infos)


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, for the user; ``None`` if it can be called.

    Everything the HTTP layer would trip on later is refused here, when the subscription is
    saved, as a field error: a port outside 1–65535 (``URLValidator`` takes any five
    digits), credentials in the URL (they would be logged; the signature authenticates
    Cuidar), a URL longer than the column, an internal address.
    """
    from urllib.parse import urlsplit

    if len(url or "") > URL_MAX_LENGTH:
        return _("Use a URL of at most %(max)d characters.") % {"max": URL_MAX_LENGTH}
    try:
        _url_validator(url)
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range
    except (ValidationError, ValueError):
        return _("Enter a full http:// or https:// URL.")
    if port is not None and not 1 <= port <= 65535:
        return _("The port must be a number from 1 to 65535.")
    if parts.username is not None or parts.password is not None:
        return _("Leave user names and passwords out of the URL.")
    if is_internal_address(url):
        return _("Webhooks go to public addresses only, not to internal ones.")
    return None


# --- Writes ---------------------------------------------------------------------------------
def subscription_validate(*, name: str, url: str, event_types: list[str]) -> list[str]:
    """Check what a subscription would be given; return its event types, sorted and
    unique. Raises ``InvalidSubscription`` with a field map (forms show it per field)."""
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = [_("Give the subscription a name.")]
    problem = url_problem(url)
    if problem:
        errors["url"] = [problem]
    unknown = sorted(set(event_types) - EVENT_TYPES)
    if unknown:
        errors["event_types"] = [
            _("Unknown event types: %(types)s.") % {"types": ", ".join(unknown)}
        ]
    if errors:
        raise InvalidSubscription(_("The webhook subscription is not valid."), fields=errors)
    return sorted(set(event_types))


def subscription_create(
    *, clinic, name: str, url: str, event_types: list[str], active: bool = True
) -> WebhookSubscription:
    """Create a subscription with a freshly generated signing secret.

    ``event_types`` must come from the catalogue (``events.EVENT_TYPES``); empty means every
    event. The secret is in ``subscription.signing_secret``: show it to the user once.
    """
    event_types = subscription_validate(name=name, url=url, event_types=event_types)
    return WebhookSubscription.objects.create(
        clinic=clinic,
        name=name.strip(),
        url=url,
        event_types=event_types,
        active=active,
        secret={"value": signing.new_secret()},
    )


def subscription_update(
    *,
    subscription: WebhookSubscription,
    name: str,
    url: str,
    event_types: list[str],
    active: bool,
) -> WebhookSubscription:
    """Change what a subscription receives and where; its secret stays."""
    subscription.event_types = subscription_validate(name=name, url=url, event_types=event_types)
    subscription.name = name.strip()
    subscription.url = url
    subscription.active = active
    subscription.save(update_fields=["name", "url", "event_types", "active", "updated_at"])
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Remove a subscription (admin and partner API). Deliveries still queued for it fail
    as "subscriber missing" and end in the dead letters, where they can be archived."""
    subscription.delete()


def subscription_secret_rotate(
    *, subscription: WebhookSubscription, grace: timedelta = ROTATION_GRACE
) -> str:
    """Give a subscription a new secret and return it (show it once).

    The previous secret keeps signing alongside the new one for ``grace`` (the header then
    carries two ``v1`` values); pass ``timedelta(0)`` when the old one leaked.
    """
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        secret = signing.new_secret()
        value = {"value": secret}
        if grace > timedelta(0) and subscription.signing_secret:
            value["previous"] = subscription.signing_secret
            value["previous_until"] = (timezone.now() + grace).isoformat()
        subscription.secret = value
        subscription.save(update_fields=["secret", "updated_at"])
    return secret


def signing_secrets(subscription: WebhookSubscription, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign a request now: the current one, and the previous one while its
    rotation grace lasts."""
    data = subscription.secret or {}
    result = [data["value"]] if data.get("value") else []
    until = data.get("previous_until")
    if data.get("previous") and until and (now or timezone.now()) < datetime.fromisoformat(until):
        result.append(data["previous"])
    return result


# --- Posting ---------------------------------------------------------------------------------
def legacy_signature_sent(*, today=None) -> bool:
    """Whether deliveries still carry the deprecated ``X-Cuidar-Signature`` header."""
    from datetime import date

    until = date.fromisoformat(signing.LEGACY_SIGNATURE_UNTIL)
    return (today or timezone.localdate()) <= until


# --------------------------------------------------------------------------------
def subscription_post(
    subscription: WebhookSubscription,
    *,
    event_type: str,
    event_id: str,
    delivery_id: str,
    created_at: datetime,
    payload: dict,
    timeout: tuple[float, float] = TIMEOUT,
):
    """POST one event to the partner, signed; return the response if it answered 2xx.

    Raises ``ProviderError`` on anything else (3xx included: a webhook URL that redirects is
    misconfigured, and following it could send the event to another host). The outbox owns
    retries, so the HTTP layer is told not to retry.
    """
    from . import http

    secrets_ = signing_secrets(subscription)
    if not secrets_:
        raise PermanentProviderError(
            "the subscription has no signing secret", provider=PROVIDER, http_status=None
        )
    if resolves_internally(subscription.url):
        raise PermanentProviderError(
            "the webhook URL resolves to an internal address", provider=PROVIDER
        )
    problem = url_problem(subscription.url)
    if problem:
        # A URL saved before it was validated fully (e.g. port 99999): no call, a clear error.
        raise PermanentProviderError(
            f"the webhook URL cannot be called: {problem}", provider=PROVIDER
        )
    # Serialised once: the signature covers exactly the bytes sent.
    body = json.dumps(
        envelope(
            event_id=event_id,
            event_type=event_type,
            clinic_id=subscription.clinic_id,
            created_at=created_at,
            data=payload,
        ),
        cls=DjangoJSONEncoder,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # Standard Webhooks: the id is the event's, stable across retries, to dedupe on.
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.standard_signature(
            secrets_, msg_id=event_id, body=body, timestamp=timestamp
        ),
        "X-Cuidar-Event": event_type,
        "X-Cuidar-Event-Id": event_id,
        "X-Cuidar-Delivery": delivery_id,
    }
    if legacy_signature_sent():
        # Deprecated: existing subscribers' own verifiers, until LEGACY_SIGNATURE_UNTIL.
        headers["X-Cuidar-Signature"] = signing.sign_many(secrets_, body, timestamp)
    response = http.request(
        "POST",
        subscription.url,
        provider=PROVIDER,
        operation="event",
        clinic_id=subscription.clinic_id,
        retry=False,
        secrets=secrets_,
        timeout=timeout,
        data=body,
        headers=headers,
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise PermanentProviderError(
            f"partner answered HTTP {response.status_code}",
            provider=PROVIDER,
            http_status=response.status_code,
        )
    return response


def subscription_ping(subscription: WebhookSubscription) -> tuple[bool, str]:
    """Send a ``ping`` event to the partner; ``(ok, message for the user)``. Never raises
    for what the partner does: the admin shows the answer instead."""
    started = time.monotonic()
    try:
        response = subscription_post(
            subscription,
            event_type=PING_EVENT,
            event_id=str(uuid.uuid4()),
            delivery_id=str(uuid.uuid4()),
            created_at=timezone.now(),
            payload={"subscription_id": subscription.pk},
            timeout=PING_TIMEOUT,
        )
    except ProviderError as exc:
        if exc.http_status:
            return False, _("%(name)s answered HTTP %(status)s.") % {
                "name": subscription.name,
                "status": exc.http_status,
            }
        return False, _("%(name)s could not be reached: %(error)s") % {
            "name": subscription.name,
            "error": str(exc),
        }
    elapsed = int((time.monotonic() - started) * 1000)
    return True, _("%(name)s answered HTTP %(status)s in %(ms)s ms.") % {
        "name": subscription.name,
        "status": response.status_code,
        "ms": elapsed,
    }


def subscription_ping_request(*, subscription: WebhookSubscription) -> WebhookSubscription:
    """Ask a worker to ping the partner (``integrations.webhook_ping``, after the commit);
    the answer lands on the subscription (``ping_*``), where the admin and the API show it.
    The web request never waits on the partner's URL: a slow partner holds a worker of the
    partner queue for at most ``PING_TIMEOUT``, not a web worker. A new request supersedes
    one still pending."""
    from .tasks import webhook_ping_task

    now = timezone.now()
    with transaction.atomic():
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            ping_requested_at=now, ping_answered_at=None, ping_ok=None, ping_detail=""
        )
        transaction.on_commit(
            lambda: webhook_ping_task.delay(subscription.pk, now.isoformat()),
        )
    subscription.ping_requested_at = now
    subscription.ping_answered_at = None
    subscription.ping_ok = None
    subscription.ping_detail = ""
    return subscription


def subscription_ping_run(*, subscription_id: int, requested_at: datetime) -> bool:
    """The worker's side of a ping: send it and record the answer. Safe twice: a ping that
    was answered, superseded by a newer request, or whose subscription is gone is not sent
    again (``False``). No lock is held while the partner answers."""
    pending = WebhookSubscription.objects.filter(
        pk=subscription_id, ping_requested_at=requested_at, ping_answered_at__isnull=True
    )
    subscription = pending.first()
    if subscription is None:
        return False
    ok, detail = subscription_ping(subscription)
    pending.update(ping_answered_at=timezone.now(), ping_ok=ok, ping_detail=detail[:300])
    return True
