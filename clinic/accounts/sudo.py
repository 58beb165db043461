"""Re-authentication ("sudo mode") for critical acts: exporting patient data, changing
roles, API keys, provider credentials. The user confirms their password and second factor
(``accounts:reauth``); for ``CUIDAR_REAUTH_MINUTES`` after that, critical acts go through.

- ``reauth_required``: a view decorator.
- ``ReauthRequiredAdminMixin``: put it first in a ModelAdmin's bases; its add, change and
  delete pages, its actions and its own views (``get_urls``) then need a fresh
  re-authentication. ``reauth_on_form = False`` asks only when something is submitted
  (POST), not to open a form.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _

from .services import SESSION_REAUTH_AT


def reauth_is_fresh(request) -> bool:
    if not settings.CUIDAR_REAUTH_REQUIRED:
        return True
    at = request.session.get(SESSION_REAUTH_AT)
    return at is not None and time.time() - at <= settings.CUIDAR_REAUTH_MINUTES * 60


def reauth_redirect(request):
    """Send the user to confirm their identity, then back. After a refused POST they come
    back to the page they submitted from, to submit again."""
    if request.method == "GET":
        back = request.get_full_path()
    else:
        back = request.META.get("HTTP_REFERER") or request.get_full_path()
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = request.get_full_path()
        messages.info(request, _("Confirm your identity, then repeat the action."))
    return HttpResponseRedirect(reverse("accounts:reauth") + "?" + urlencode({"next": back}))


def reauth_required(view=None, *, methods: tuple[str, ...] | None = None):
    """Refuse the view (redirecting to re-authentication) unless the user re-authenticated
    in the last few minutes. ``methods``: only these HTTP methods need it (default all)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(request, *args, **kwargs):
            if (methods is None or request.method in methods) and not reauth_is_fresh(request):
                return reauth_redirect(request)
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


class ReauthRequiredAdminMixin:
    reauth_on_form = True

    def _needs_reauth(self, request, form_page: bool) -> bool:
        if request.method == "POST":
            return not reauth_is_fresh(request)
        return form_page and self.reauth_on_form and not reauth_is_fresh(request)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if self._needs_reauth(request, form_page=True):
            return reauth_redirect(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if self._needs_reauth(request, form_page=True):
            return reauth_redirect(request)
        return super().delete_view(request, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        if self._needs_reauth(request, form_page=False):  # actions, list edits
            return reauth_redirect(request)
        return super().changelist_view(request, extra_context)

    @property
    def urls(self):
        # The subclass's get_urls() adds its own views around super()'s: wrap them here,
        # where the whole list is known.
        urls = self.get_urls()
        standard = {"changelist", "add", "change", "delete", "history"}
        for pattern in urls:
            name = (getattr(pattern, "name", None) or "").rsplit("_", 1)[-1]
            callback = getattr(pattern, "callback", None)
            if callback is None or name in standard:
                continue
            pattern.callback = reauth_required(callback, methods=("POST", "PUT", "DELETE"))
        return urls


class ReauthOnSubmitAdminMixin(ReauthRequiredAdminMixin):
    """Re-authentication only to submit (an action, a handled request), not to look."""

    reauth_on_form = False
