"""The Content-Security-Policy and the other security headers of every page, in one place.

Public pages are everything a patient or a stranger can open: the portal, the one-click
pages of the links in reminders (``scheduling/links.py``), waitlist offers, calendar feeds,
error pages. They allow only this origin (no CDN, no inline script or style), ``data:``
images (the PIX QR code), and no framing: ``CSP``.

Staff pages (``/admin/``, ``/account/``, ``/webauthn/``) get ``staff_csp(nonce)``: scripts
only from this origin or inline ones carrying the request's nonce
(``<script nonce="{{ request.csp_nonce }}">``), no inline event handlers (``onclick=``…:
use ``data-`` attributes, see ``clinic/accounts/static/accounts/behaviours.js``), inline
styles allowed (Django's admin sets ``style=`` attributes), no framing. The API with its
Swagger page (``/api/``) keeps only ``frame-ancestors 'none'``: its browsable pages run
inline scripts, and only signed-in staff open them.

Every response also gets ``PERMISSIONS_POLICY`` (no camera, microphone, location, payment
or USB; passkeys only for this origin). Referrer-Policy, X-Content-Type-Options and
X-Frame-Options come from Django's settings (SECURE_REFERRER_POLICY,
SECURE_CONTENT_TYPE_NOSNIFF, X_FRAME_OPTIONS).

A view that needs another policy sets its own header; the middleware leaves it alone.
"""

from __future__ import annotations

import secrets
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


def staff_csp(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "img-src 'self' data:",
            "style-src 'self' 'unsafe-inline'",
            f"script-src 'self' 'nonce-{nonce}'",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


API_CSP = "frame-ancestors 'none'"

PERMISSIONS_POLICY = ", ".join(
    (
        "camera=()",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
        "publickey-credentials-create=(self)",
        "publickey-credentials-get=(self)",
    )
)

#: Path prefixes of staff pages (their own policy, with a nonce).
STAFF_PREFIXES = ("/admin/", "/account/", "/webauthn/")
#: Path prefixes with inline scripts we do not control (DRF's and Swagger's pages).
API_PREFIXES = ("/api/",)
EXEMPT_PREFIXES = STAFF_PREFIXES + API_PREFIXES


def is_public(path: str) -> bool:
    return not path.startswith(EXEMPT_PREFIXES)


class ContentSecurityPolicyMiddleware:
    """Adds the policy of the page's family to every response, and ``request.csp_nonce``
    for staff pages' inline scripts."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if path.startswith(STAFF_PREFIXES):
            policy = staff_csp(request.csp_nonce)
        elif path.startswith(API_PREFIXES):
            policy = API_CSP
        else:
            policy = CSP
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
