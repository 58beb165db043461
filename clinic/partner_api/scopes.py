"""What a key may do: the scope catalogue and the permission that checks it.

A view declares ``required_scopes = {"GET": "patients:read", "POST": "patients:write"}``;
a key without the scope the method needs gets 403. Staff signed in to the admin browse
the API read only."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import ApiKey

API_SCOPES = (
    "patients:read",
    "patients:write",
    "availability:read",
    "appointments:read",
    "appointments:write",
    "leads:read",
    "leads:write",
    "payments:read",
    "loyalty:read",
    "webhooks:manage",
    "dlq:manage",
    "events:read",
)


class HasScope(BasePermission):
    """The key holds the scope the view requires for this method (``required_scopes``).
    Staff sessions: safe methods only."""

    message = "This API key does not have the scope this request needs."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            needed = getattr(view, "required_scopes", {}).get(request.method)
            if needed is None and request.method == "OPTIONS":
                return True
            if needed is None:
                return False
            if needed not in request.auth.scopes:
                self.message = _("This API key lacks the scope %(scope)s.") % {"scope": needed}
                return False
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff) and (
            request.method in SAFE_METHODS
        )
