"""Every staff request passes here, after authentication:

1. a session past its idle timeout or its absolute lifetime ends (policy per clinic, read at
   sign-in, ``services.session_register``, and again at the first request after a policy
   or a role changed);
2. a privilege change since sign-in (roles, groups, superuser) rotates the session key;
3. a user who must use a second factor and has not — no device yet, or a session not
   verified with one — sees no page but enrolment (or the second sign-in step);
4. a password set by an administrator must be changed first.

The common path costs no database query: what it needs is in the session and the cache.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from . import services as s

#: Paths a signed-in user may open before enrolling a second factor or changing a
#: password (the pages that let them do so, and signing out).
OPEN_PREFIXES = ("/account/", "/admin/login/", "/admin/logout/", "/webauthn/", "/static/", "/i18n/")
#: Where the rules apply: the staff interfaces.
GUARDED_PREFIXES = ("/admin/", "/account/", "/api/")
#: A session's "last seen" is written at most this often (seconds).
TOUCH_EVERY = 60


def _to_login(request, message: str):
    logout(request)
    messages.warning(request, message)
    return HttpResponseRedirect(
        reverse("admin:login") + "?" + urlencode({"next": request.get_full_path()})
    )


class StaffSecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        user = getattr(request, "user", None)
        if (
            user is None
            or not path.startswith(GUARDED_PREFIXES)
            or not user.is_authenticated
            or not user.is_staff
        ):
            return self.get_response(request)
        session = request.session
        now = int(time.time())
        # One cache round trip for both tokens: the user's privileges and the policies.
        tokens = s.cache.get_many([s._privileges_key(user.pk), s.POLICY_VERSION_KEY])
        token = tokens.get(s._privileges_key(user.pk))
        policy = tokens.get(s.POLICY_VERSION_KEY)
        if policy is not None and session.get(s.SESSION_POLICY) != policy:
            # A policy changed since this session read its limits (say, a shorter timeout
            # or the second factor made mandatory): they apply from this request on.
            s.session_policy_apply(session=session, user=user, version=policy)
        if settings.CUIDAR_SESSION_LIMITS and s.SESSION_STARTED in session:
            if now - session[s.SESSION_STARTED] > session.get(s.SESSION_ABSOLUTE, 12 * 3600):
                return _to_login(request, _("Your session reached its time limit: sign in again."))
            if now - session.get(s.SESSION_LAST_SEEN, now) > session.get(s.SESSION_IDLE, 1800):
                return _to_login(
                    request, _("You were signed out after a period of inactivity: sign in again.")
                )
            if now - session.get(s.SESSION_LAST_SEEN, now) >= TOUCH_EVERY:
                session[s.SESSION_LAST_SEEN] = now
                s.session_touch(session_key=session.session_key, now=timezone.now())
        if token is not None and session.get(s.SESSION_PRIVILEGES) not in (None, token):
            # Roles or permissions changed: a new session key, so a key captured before
            # the change is worth nothing after it.
            old_key = session.session_key
            session.cycle_key()
            session[s.SESSION_PRIVILEGES] = token
            s.StaffSession.objects.filter(session_key=old_key).update(
                session_key=session.session_key
            )
            # A new role may have other limits (timeout, second factor).
            s.session_policy_apply(session=session, user=user, version=policy)
        if not path.startswith(OPEN_PREFIXES):
            redirect = self._gate(request, user, session)
            if redirect is not None:
                return redirect
        return self.get_response(request)

    def _gate(self, request, user, session):
        next_query = "?" + urlencode({"next": request.get_full_path()})
        if (
            settings.CUIDAR_MFA_REQUIRED
            and session.get(s.SESSION_MFA_REQUIRED, True)
            and not user.is_verified()
        ):
            if s.user_has_second_factor(user):
                # Signed in some other way than our two steps: verify now.
                return HttpResponseRedirect(reverse("accounts:verify_session") + next_query)
            return HttpResponseRedirect(reverse("accounts:mfa_setup") + next_query)
        if session.get(s.SESSION_MUST_CHANGE_PASSWORD):
            return HttpResponseRedirect(reverse("accounts:password_change") + next_query)
        return None
