"""Staff sign-in in two steps (password, then the second factor), enrolment, the account's
security page (devices, sessions), re-authentication, password change and reset,
invitations.

Sign-in never says whether an account exists: a wrong password, an unknown username, a
staff account with the wrong code all get the same message; a lockout gets the lockout
page whatever the username.
"""

from __future__ import annotations

import io
import time
from base64 import b32encode

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.forms.utils import ErrorDict
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from clinic.kernel.views import safe_next

from . import services
from .exceptions import AccountError
from .forms import GENERIC_ERROR, CodeForm, InvitationAcceptForm, ReauthForm, SignInForm
from .models import SecurityEvent, StaffProfile, StaffSession
from .sudo import reauth_required

User = get_user_model()
K = SecurityEvent.Kind

PENDING = "accounts_pending"  # {"user": pk, "backend": …, "at": epoch}: password done
PENDING_SECONDS = 300
RECOVERY_SHOWN = "accounts_recovery_codes"  # shown once, right after they were made


def _context(request, **extra):
    """The admin's chrome (header, clinic switcher) around our pages."""
    return {**admin.site.each_context(request), **extra}


def _next(request, fallback: str = "/admin/") -> str:
    return safe_next(request, fallback)


def lockout_response(request, original_response=None, credentials=None, *args, **kwargs):
    """What a locked-out sign-in sees (django-axes' AXES_LOCKOUT_CALLABLE): the same page
    for any username, existing or not."""
    request.session.pop(PENDING, None)
    form = SignInForm()
    form._errors, form.cleaned_data = ErrorDict(), {}  # an error on an empty form
    form.add_error(
        None,
        _(
            "Too many failed attempts: signing in is blocked for a while. Try again later "
            "or ask an administrator of your clinic to unlock it."
        ),
    )
    return render(
        request,
        "admin/login.html",
        _context(
            request,
            form=form,
            title=_("Log in"),
            app_path=request.get_full_path(),
            next=_next(request),
            password_reset_url=reverse("accounts:password_reset"),
        ),
        status=429,
    )


def _failed(request, username: str, step: str) -> None:
    """Count a failure towards the lockout (django-axes listens to this signal)."""
    user_login_failed.send(
        sender=__name__,
        credentials={"username": username, "cuidar_step": step},
        request=request,
    )


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def sign_in(request):
    """Step 1: username and password. A staff account with a second factor goes on to
    step 2; one without is signed in and sent to enrol (the middleware)."""
    if request.user.is_authenticated and request.user.is_staff and request.method == "GET":
        return HttpResponseRedirect(_next(request))
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request)
        if user is not None and user.is_active and user.is_staff:
            if services.user_has_second_factor(user):
                request.session.cycle_key()
                request.session[PENDING] = {
                    "user": user.pk,
                    "backend": user.backend,
                    "at": int(time.time()),
                }
                url = reverse("accounts_sign_in:verify")
                return HttpResponseRedirect(f"{url}?next={_next(request)}")
            login(request, user)
            return HttpResponseRedirect(_next(request))
        if user is not None:  # right password, but not a staff account: also a failure
            _failed(request, username, "password")
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request)
        form.add_error(None, GENERIC_ERROR)
    return render(
        request,
        "admin/login.html",
        _context(
            request,
            form=form,
            title=_("Log in"),
            app_path=request.get_full_path(),
            next=_next(request),
            password_reset_url=reverse("accounts:password_reset"),
        ),
    )


def _pending_user(request):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        return None, None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    return user, pending["backend"]


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def verify(request):
    """Step 2: the second factor — a code from the app, a recovery code, or a passkey. Also
    where a signed-in session that was never verified (e.g. signed in before enrolment
    elsewhere) proves its second factor."""
    if request.user.is_authenticated:
        user, backend = request.user, None
        if request.user.is_verified():
            return HttpResponseRedirect(_next(request))
    else:
        user, backend = _pending_user(request)
        if user is None:
            messages.info(request, _("Sign in again."))
            return HttpResponseRedirect(reverse("admin:login"))
    credentials = {"username": user.get_username()}
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if not AxesProxyHandler.is_allowed(request, credentials):
            return lockout_response(request)
        device = services.verify_second_factor(user=user, token=request.POST.get("code", ""))
        if device is not None:
            request.session.pop(PENDING, None)
            if not request.user.is_authenticated:
                login(request, user, backend=backend)
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(
                    request,
                    _(
                        "You used a recovery code; %(count)d left. Make new ones on your "
                        "security page if you are running out."
                    )
                    % {"count": left},
                )
            return HttpResponseRedirect(_next(request))
        _failed(request, user.get_username(), "code")
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request)
        form = CodeForm(request.POST)
        form.is_valid()
        form.add_error(None, _("That code is not right. Try the current code again."))
    has_passkey = WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    return render(
        request,
        "accounts/verify.html",
        _context(
            request, form=form, title=_("Second step"), has_passkey=has_passkey, next=_next(request)
        ),
    )


@require_POST
def sign_out(request):
    logout(request)
    messages.info(request, _("You signed out."))
    return HttpResponseRedirect(reverse("admin:login"))


# --- Enrolment ------------------------------------------------------------------------------
def _qr_svg(data: str) -> str:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(
        buffer,
        kind="svg",
        scale=5,
        border=2,
        xmldecl=False,
        svgclass="accounts-qr",
        title=_("QR code to scan with your authenticator app"),
    )
    return buffer.getvalue().decode()


@login_required
@never_cache
def mfa_setup(request):
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code.
    Then the recovery codes are shown, once. Passkeys can be added here too."""
    user = request.user
    enrolled = services.user_has_second_factor(user)
    if enrolled and not user.is_verified():
        return HttpResponseRedirect(reverse("accounts:verify_session"))
    device = services.totp_device_start(user=user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_device_confirm(
            device=device, token=form.cleaned_data["code"], request=request
        ):
            otp_login(request, device)
            if not StaticDevice.objects.filter(user=user).exists():
                request.session[RECOVERY_SHOWN] = services.recovery_codes_generate(
                    user=user, request=request
                )
            messages.success(request, _("Your authenticator app is set up."))
            next_url = _next(request, reverse("accounts:security"))
            if RECOVERY_SHOWN in request.session:
                return HttpResponseRedirect(
                    reverse("accounts:recovery_codes") + f"?next={next_url}"
                )
            return HttpResponseRedirect(next_url)
        form.add_error(
            "code",
            _("That code is not right. Check the time on your phone and try the current code."),
        )
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "accounts/mfa_setup.html",
        _context(
            request,
            form=form,
            title=_("Set up your second factor"),
            qr=mark_safe(_qr_svg(device.config_url)),  # noqa: S308 (segno's own SVG)
            secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            enrolled=enrolled,
            next=_next(request, reverse("accounts:security")),
        ),
    )


@login_required
@never_cache
def recovery_codes(request):
    codes = request.session.pop(RECOVERY_SHOWN, None)
    if codes is None:
        return HttpResponseRedirect(reverse("accounts:security"))
    return render(
        request,
        "accounts/recovery_codes.html",
        _context(
            request,
            codes=codes,
            title=_("Your recovery codes"),
            next=_next(request, reverse("accounts:security")),
        ),
    )


@login_required
@require_POST
@reauth_required
def recovery_codes_new(request):
    request.session[RECOVERY_SHOWN] = services.recovery_codes_generate(
        user=request.user, request=request
    )
    return HttpResponseRedirect(reverse("accounts:recovery_codes"))


# --- The account's security page ------------------------------------------------------------
@login_required
@never_cache
def security(request):
    user = request.user
    welcome = request.session.get(services.SESSION_WELCOME) or {}
    recovery = StaticDevice.objects.filter(user=user, name="recovery").first()
    return render(
        request,
        "accounts/security.html",
        _context(
            request,
            title=_("Your account's security"),
            totp_devices=TOTPDevice.objects.filter(user=user, confirmed=True),
            passkeys=WebAuthnCredential.objects.filter(user=user),
            recovery_left=recovery.token_set.count() if recovery else 0,
            sessions=StaffSession.objects.filter(user=user, ended_at__isnull=True),
            current_key=request.session.session_key,
            previous_at=parse_datetime(welcome["previous_at"])
            if welcome.get("previous_at")
            else None,
            previous_ip=welcome.get("previous_ip"),
            failures=welcome.get("failures", 0),
            recent=SecurityEvent.objects.filter(user=user)[:10],
        ),
    )


@login_required
@require_POST
@reauth_required
def device_remove(request, kind: str, pk: int):
    model = {"totp": TOTPDevice, "passkey": WebAuthnCredential}.get(kind)
    if model is None:
        raise Http404
    device = get_object_or_404(model, pk=pk, user=request.user)
    remaining = (
        TOTPDevice.objects.filter(user=request.user, confirmed=True).count()
        + WebAuthnCredential.objects.filter(user=request.user, confirmed=True).count()
    )
    if remaining <= 1 and request.session.get(services.SESSION_MFA_REQUIRED, True):
        messages.error(request, _("Add another second factor before removing your last one."))
    else:
        services.device_remove(user=request.user, device=device, request=request)
        messages.success(request, _("The device was removed."))
    return HttpResponseRedirect(reverse("accounts:security"))


@login_required
@require_POST
def session_end(request, pk: int):
    staff_session = get_object_or_404(StaffSession, pk=pk, user=request.user, ended_at__isnull=True)
    services.session_end(
        staff_session=staff_session, reason="ended_by_user", by=request.user, request=request
    )
    if staff_session.session_key == request.session.session_key:
        return HttpResponseRedirect(reverse("admin:login"))
    messages.success(request, _("That session was ended."))
    return HttpResponseRedirect(reverse("accounts:security"))


@login_required
@require_POST
def sessions_end_all(request):
    """Sign out everywhere: every session of this account, this one included."""
    services.sessions_end_all(
        user=request.user, reason="signed_out_everywhere", by=request.user, request=request
    )
    logout(request)
    messages.info(request, _("You were signed out on every device."))
    return HttpResponseRedirect(reverse("admin:login"))


# --- Re-authentication ----------------------------------------------------------------------
@login_required
@sensitive_post_parameters("password", "code")
@never_cache
def reauth(request):
    """Confirm password and second factor; critical acts then go through for a few
    minutes (``sudo.reauth_required``)."""
    user = request.user
    needs_code = services.user_has_second_factor(user)
    form = ReauthForm(request.POST or None)
    if not needs_code:
        del form.fields["code"]
    credentials = {"username": user.get_username()}
    if request.method == "POST" and form.is_valid():
        if not AxesProxyHandler.is_allowed(request, credentials):
            return lockout_response(request)
        password_ok = user.check_password(form.cleaned_data["password"])
        device = (
            services.verify_second_factor(user=user, token=form.cleaned_data.get("code", ""))
            if needs_code and password_ok
            else None
        )
        if password_ok and (device is not None or not needs_code):
            request.session[services.SESSION_REAUTH_AT] = int(time.time())
            services.event_record(kind=K.REAUTHENTICATED, user=user, request=request)
            return HttpResponseRedirect(_next(request))
        _failed(request, user.get_username(), "reauth")
        if getattr(request, "axes_locked_out", False):
            logout(request)
            return lockout_response(request)
        form.add_error(None, _("The password or the code is not right."))
    return render(
        request,
        "accounts/reauth.html",
        _context(
            request,
            form=form,
            title=_("Confirm it is you"),
            minutes=settings.CUIDAR_REAUTH_MINUTES,
            next=_next(request),
        ),
    )


# --- Passwords ------------------------------------------------------------------------------
@method_decorator(login_required, name="dispatch")
class PasswordChange(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:security")

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            **admin.site.each_context(self.request),
            "forced": self.request.session.get(services.SESSION_MUST_CHANGE_PASSWORD),
        }

    def form_valid(self, form):
        response = super().form_valid(form)
        StaffProfile.objects.filter(user=self.request.user).update(must_change_password=False)
        self.request.session[services.SESSION_MUST_CHANGE_PASSWORD] = False
        services.event_record(kind=K.PASSWORD_CHANGED, user=self.request.user, request=self.request)
        messages.success(self.request, _("Your password was changed."))
        return response


class _AdminChrome:
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **admin.site.each_context(self.request)}


class PasswordReset(_AdminChrome, auth_views.PasswordResetView):
    """ "Forgot password": a link to the account's registered e-mail, single-use (it stops
    working once the password changes or the user signs in) and valid
    PASSWORD_RESET_TIMEOUT seconds. The page after is the same whether the address is
    known or not."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        services.event_record(
            kind=K.PASSWORD_RESET_REQUESTED,
            username=form.cleaned_data["email"],
            request=self.request,
        )
        return super().form_valid(form)


class PasswordResetDone(_AdminChrome, auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirm(_AdminChrome, auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        StaffProfile.objects.filter(user=form.user).update(must_change_password=False)
        services.event_record(kind=K.PASSWORD_CHANGED, user=form.user, request=self.request)
        services.sessions_end_all(user=form.user, reason="password_reset", request=self.request)
        return response


class PasswordResetComplete(_AdminChrome, auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# --- Invitations ----------------------------------------------------------------------------
@sensitive_post_parameters("password1", "password2")
@never_cache
def invitation(request, token: str):
    """Accept an invitation: choose a username and a password; then enrol a second factor
    (the middleware sends the new user there)."""
    invitation = services.invitation_for_token(token)
    if invitation is None:
        return render(
            request,
            "accounts/invitation_invalid.html",
            _context(request, title=_("Invitation not valid")),
            status=404,
        )
    form = InvitationAcceptForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(
                invitation=invitation,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except AccountError as error:
            form.add_error(None, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Now set up your second factor."))
            return HttpResponseRedirect(reverse("accounts:mfa_setup"))
    return render(
        request,
        "accounts/invitation.html",
        _context(
            request,
            form=form,
            invitation=invitation,
            title=_("Join %(clinic)s") % {"clinic": invitation.clinic.name},
        ),
    )


def welcome_message(request) -> None:
    """Once after sign-in: when the account last signed in and how many failed attempts
    there were since (shown on the dashboard through the messages framework)."""
    welcome = request.session.get(services.SESSION_WELCOME)
    if not welcome:
        return
    previous = parse_datetime(welcome["previous_at"]) if welcome.get("previous_at") else None
    if previous is None:
        text = _("Welcome! This is your first sign-in.")
    else:
        text = _("Your previous sign-in: %(when)s from %(ip)s.") % {
            "when": timezone.localtime(previous).strftime("%d/%m/%Y %H:%M"),
            "ip": welcome.get("previous_ip") or "?",
        }
    failures = welcome.get("failures", 0)
    if failures:
        text += " " + _(
            "%(count)d failed sign-in attempt(s) since then: if it was not you, change your "
            "password and tell an administrator."
        ) % {"count": failures}
        messages.warning(request, text, fail_silently=True)
    else:
        messages.info(request, text, fail_silently=True)
