"""The inbound webhook endpoint: ``/webhooks/<provider>/<token>/[<sub-path>]``.

The token is the account's unguessable ``webhook_token``: it names the provider account,
and so the clinic, without trusting anything in the body. The provider's own signature (or
token) is then checked on the raw body. A request that fails either check changes nothing.
An authentic one is stored at once and answered 2xx; the work happens later, in a task
(``inbound.py``), so a slow handler never makes a provider time out and retry.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import registry
from .base import WebhookReply, WebhookRequest, WebhookUnauthorized
from .inbound import inbound_webhook_receive, provider_for
from .models import ProviderAccount

logger = logging.getLogger(__name__)

REJECTED_COUNTER = "webhooks:rejected:{provider}"
_REJECTION_ERRORS = {401: "unauthorized", 403: "forbidden", 404: "not found"}


def rejected_count(provider: str) -> int:
    """How many requests to ``provider``'s webhook URLs were refused (for health pages)."""
    return int(cache.get(REJECTED_COUNTER.format(provider=provider)) or 0)


def _count_rejection(provider: str) -> None:
    key = REJECTED_COUNTER.format(provider=provider)
    try:
        # add() then incr(): incr() of a missing key raises; the counter never expires.
        cache.add(key, 0, timeout=None)
        cache.incr(key)
    except Exception:
        # A metric must never turn an answer into a 500.
        logger.warning("could not count a rejected webhook for %s", provider, exc_info=True)


def webhook_request_from(request: HttpRequest, subpath: str) -> WebhookRequest:
    """The provider-neutral view of a Django request: raw body, lower-cased headers."""
    return WebhookRequest(
        method=request.method or "",
        # Providers that sign the URL (Twilio) need the public URL they called. Behind a
        # reverse proxy, build_absolute_uri() only gives it if Django is told the original
        # host and scheme (USE_X_FORWARDED_HOST, SECURE_PROXY_SSL_HEADER) — or the provider
        # must rebuild it from its own setting of the public base URL.
        url=request.build_absolute_uri(),
        subpath=subpath,
        headers={name.lower(): value for name, value in request.headers.items()},
        query=request.GET.dict(),
        body=request.body,
        content_type=request.META.get("CONTENT_TYPE", ""),
    )


def _reply(reply: WebhookReply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "not found"}, status=404)


@csrf_exempt  # providers cannot send a CSRF token; the URL token and signature stand in
@require_http_methods(["GET", "POST"])
def webhook_receive(
    request: HttpRequest, provider: str, token: str, subpath: str = ""
) -> HttpResponse:
    """Authenticate, store once, enqueue, answer the provider at once."""
    account = (
        ProviderAccount.objects.filter(provider=provider, webhook_token=token, enabled=True)
        .select_related("clinic")
        .first()
    )
    if account is None:
        # Unknown, disabled, or another provider's token: the same answer, nothing stored.
        return _not_found()
    try:
        adapter = provider_for(account)
    except registry.UnknownProvider:
        return _not_found()

    webhook_request = webhook_request_from(request, subpath)
    try:
        adapter.verify_webhook(webhook_request)
    except WebhookUnauthorized as exc:
        _count_rejection(provider)
        logger.warning(
            "webhook rejected: provider=%s account=%s status=%s reason=%s",
            provider,
            account.pk,
            exc.status,
            exc.reason,
        )
        # Short and fixed: the reason is for our log, not for whoever is probing the URL.
        error = _REJECTION_ERRORS.get(exc.status, "refused")
        return JsonResponse({"error": error}, status=exc.status)

    if request.method == "POST" or (request.GET and adapter.webhook_get_delivers_events):
        inbound_webhook_receive(account=account, provider=adapter, request=webhook_request)
    # Otherwise GET is a handshake (Meta's hub.challenge, URL checks): answered, not stored.
    return _reply(adapter.webhook_reply(webhook_request))
