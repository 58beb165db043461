"""Two small helpers of the staff pages every app's admin draws (the desk, the agenda)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def clinic_or_redirect(model_admin, request, clinic, message: str):
    """``(clinic, None)``; or, when the request works in no clinic (a superuser viewing all
    clinics), ``(None, a redirect to the admin's dashboard)`` with ``message`` shown there.
    ``clinic`` is the request's current clinic (``clinic.tenancy.current_clinic``)."""
    if clinic is None:
        messages.warning(request, message)
        return None, HttpResponseRedirect(
            reverse("admin:index", current_app=model_admin.admin_site.name)
        )
    return clinic, None


def safe_next(request, fallback: str) -> str:
    """The ``next`` address of the request (POST, then GET) if it points at this site,
    else ``fallback``: a redirect never leads off-site."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return fallback
