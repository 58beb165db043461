"""The Content-Security-Policy of every public page, in one place.

Public pages are everything a patient or a stranger can open: the portal, the one-click
pages of the links in reminders (``scheduling/links.py``), waitlist offers, calendar feeds,
error pages. They allow only this origin (no CDN, no inline script or style), ``data:``
images (the PIX QR code), and no framing. The admin (``/admin/``) and the API with its
Swagger page (``/api/``) are left out: Django's admin and the API's browsable pages run
inline scripts, and only signed-in staff open them.

A view that needs another policy sets its own header; the middleware leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CSP = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)

#: Path prefixes that are not public pages (staff-only, with their own scripts).
EXEMPT_PREFIXES = ("/admin/", "/api/")


def is_public(path: str) -> bool:
    return not path.startswith(EXEMPT_PREFIXES)


class ContentSecurityPolicyMiddleware:
    """Adds ``CSP`` to every response outside ``EXEMPT_PREFIXES``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_public(request.path_info):
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
