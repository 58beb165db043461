"""Every write about staff accounts: sign-in bookkeeping, second factors, sessions,
deactivation, invitations. Each records what it did in the security trail
(``SecurityEvent``)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from clinic import services as clinic_services
from clinic.audit import request_origin
from clinic.choices import MembershipRole
from clinic.models import AuditEntry, Membership
from clinic.partner_api.models import ApiKey

from .exceptions import AccountError
from .models import Invitation, SecurityEvent, StaffProfile, StaffSession

User = get_user_model()
K = SecurityEvent.Kind

# Session keys written at sign-in and read by the middleware.
SESSION_STARTED = "accounts_started"  # epoch seconds of sign-in
SESSION_LAST_SEEN = "accounts_last_seen"  # epoch seconds of the last request (rounded)
SESSION_IDLE = "accounts_idle_seconds"
SESSION_ABSOLUTE = "accounts_absolute_seconds"
SESSION_MFA_REQUIRED = "accounts_mfa_required"
SESSION_PRIVILEGES = "accounts_privileges"
SESSION_REAUTH_AT = "accounts_reauth_at"
SESSION_WELCOME = "accounts_welcome"  # last sign-in and failures, shown once
SESSION_MUST_CHANGE_PASSWORD = "accounts_must_change_password"  # noqa: S105 (a key)
SESSION_POLICY = "accounts_policy"  # the policy version the limits above were read under

#: Changes whenever any clinic's security policy changes (in the cache, shared by every
#: process): a signed-in session re-reads its limits at its next request.
POLICY_VERSION_KEY = "accounts:policy:version"

RECOVERY_CODES = 10


# --- The trail ------------------------------------------------------------------------------
def event_record(
    *,
    kind: str,
    user=None,
    username: str = "",
    actor=None,
    request: HttpRequest | None = None,
    **details,
) -> SecurityEvent:
    """Append one entry to the security trail."""
    origin = request_origin(request)
    return SecurityEvent.objects.create(
        kind=kind,
        user=user,
        username=(username or (user.get_username() if user is not None else ""))[:150],
        actor=actor,
        ip=origin.get("ip"),
        user_agent=origin.get("user_agent", ""),
        details=details,
    )


# --- Privileges: a change rotates the session key ------------------------------------------
def _privileges_key(user_id: int) -> str:
    return f"accounts:privileges:{user_id}"


def privileges_token(user_id: int) -> str:
    """A token that changes whenever the user's roles or permissions change (kept in the
    cache, shared by every process)."""
    key = _privileges_key(user_id)
    token = cache.get(key)
    if token is None:
        token = uuid.uuid4().hex
        cache.set(key, token, None)
    return token


def privileges_changed(*, user_id: int) -> None:
    cache.set(_privileges_key(user_id), uuid.uuid4().hex, None)


# --- Policy: a change applies to signed-in sessions at their next request -----------------
def policy_version() -> str:
    version = cache.get(POLICY_VERSION_KEY)
    if version is None:
        version = uuid.uuid4().hex
        cache.add(POLICY_VERSION_KEY, version, None)
        version = cache.get(POLICY_VERSION_KEY) or version
    return version


def policy_changed() -> None:
    """A clinic's security policy changed (after the commit): every session re-reads it."""
    cache.set(POLICY_VERSION_KEY, uuid.uuid4().hex, None)


def session_policy_apply(*, session, user, version: str | None = None) -> None:
    """Store in the session the limits the policies of the user's clinics give now:
    inactivity timeout, absolute lifetime, whether a second factor is required."""
    from .policy import absolute_seconds_for, idle_seconds_for, mfa_required_for

    session[SESSION_IDLE] = idle_seconds_for(user)
    session[SESSION_ABSOLUTE] = absolute_seconds_for(user)
    session[SESSION_MFA_REQUIRED] = mfa_required_for(user)
    session[SESSION_POLICY] = version or policy_version()


# --- Sessions ------------------------------------------------------------------------------
#: Ended sessions are kept this many days in the sessions list and the admin
#: (``CUIDAR_RETENTION_STAFF_SESSIONS``); the security trail keeps the sign-ins themselves.
STAFF_SESSION_RETENTION_DAYS = 90
#: No session outlives this without a request (the longest idle timeout a policy allows is
#: 720 minutes, the longest lifetime 12 h): a row still open after it ended unseen.
STAFF_SESSION_STALE = timedelta(hours=12)


def staff_sessions_cleanup(*, now=None) -> dict[str, int]:
    """The weekly job: sessions that ended without a sign-out (timed out, browser closed)
    are marked ended, and ended ones past their retention are deleted. Idempotent."""
    now = now or timezone.now()
    expired = StaffSession.objects.filter(
        ended_at__isnull=True, last_seen_at__lt=now - STAFF_SESSION_STALE
    ).update(ended_at=now, end_reason="expired")
    days = getattr(settings, "CUIDAR_RETENTION_STAFF_SESSIONS", STAFF_SESSION_RETENTION_DAYS)
    deleted, _by_model = StaffSession.objects.filter(
        ended_at__lt=now - timedelta(days=days)
    ).delete()
    return {"expired": expired, "deleted": deleted}


def session_register(*, request: HttpRequest, user) -> StaffSession:
    """After sign-in: the session's limits and what the user sees first (their previous
    sign-in and the failures since), and its row in the sessions list."""
    from axes.models import AccessFailureLog

    now = timezone.now()
    previous = SecurityEvent.objects.filter(user=user, kind=K.SIGN_IN).order_by("-at").first()
    failures = AccessFailureLog.objects.filter(username=user.get_username())
    if previous is not None:
        failures = failures.filter(attempt_time__gt=previous.at)
    session = request.session
    if session.session_key is None:
        session.save()
    session[SESSION_STARTED] = int(now.timestamp())
    session[SESSION_LAST_SEEN] = int(now.timestamp())
    session_policy_apply(session=session, user=user)
    session[SESSION_PRIVILEGES] = privileges_token(user.pk)
    session[SESSION_MUST_CHANGE_PASSWORD] = StaffProfile.objects.filter(
        user=user, must_change_password=True
    ).exists()
    session[SESSION_WELCOME] = {
        "previous_at": previous.at.isoformat() if previous else None,
        "previous_ip": previous.ip if previous else None,
        "failures": failures.count(),
    }
    session.save()
    origin = request_origin(request)
    staff_session, _created = StaffSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "created_at": now,
            "last_seen_at": now,
            "ended_at": None,
            "end_reason": "",
            "ip": origin.get("ip"),
            "user_agent": origin.get("user_agent", ""),
        },
    )
    event_record(kind=K.SIGN_IN, user=user, request=request)
    return staff_session


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def session_end(*, staff_session: StaffSession, reason: str, by=None, request=None) -> None:
    """End one session at once: its Django session is deleted, so its next request is
    anonymous."""
    _session_store()(session_key=staff_session.session_key).delete()
    if staff_session.ended_at is None:
        staff_session.ended_at = timezone.now()
        staff_session.end_reason = reason
        staff_session.save(update_fields=["ended_at", "end_reason"])
    event_record(
        kind=K.SESSION_ENDED,
        user=staff_session.user,
        actor=by,
        request=request,
        reason=reason,
        session=staff_session.pk,
    )


def sessions_end_all(*, user, reason: str, by=None, request=None, keep_key: str | None = None):
    """End every open session of ``user`` (but ``keep_key``, the caller's own)."""
    sessions = StaffSession.objects.filter(user=user, ended_at__isnull=True)
    if keep_key:
        sessions = sessions.exclude(session_key=keep_key)
    ended = 0
    for staff_session in sessions:
        session_end(staff_session=staff_session, reason=reason, by=by, request=request)
        ended += 1
    return ended


def session_touch(*, session_key: str, now) -> None:
    StaffSession.objects.filter(session_key=session_key).update(last_seen_at=now)


# --- Second factors ------------------------------------------------------------------------
def user_has_second_factor(user) -> bool:
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or StaticDevice.objects.filter(user=user, confirmed=True, token_set__isnull=False).exists()
        or WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    )


def totp_device_start(*, user) -> TOTPDevice:
    """An unconfirmed authenticator-app device to enrol (the one already started, if any)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)
    return device


def totp_device_confirm(*, device: TOTPDevice, token: str, request=None) -> bool:
    """Confirm enrolment with a code from the app. Returns whether the code was right."""
    if not device.verify_token(token.replace(" ", "")):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    event_record(kind=K.MFA_ADDED, user=device.user, request=request, device="totp")
    return True


def recovery_codes_generate(*, user, request=None) -> list[str]:
    """Ten new single-use recovery codes (the old ones stop working)."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name="recovery", defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [
            f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}"
            for _i in range(RECOVERY_CODES)
        ]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
        event_record(kind=K.RECOVERY_CODES, user=user, request=request)
    return codes


def device_remove(*, user, device, request=None) -> None:
    """The user removes one of their own second factors."""
    if device.user_id != user.pk:
        raise AccountError(_("This is not your device."))
    kind = device._meta.label_lower
    device.delete()
    event_record(kind=K.MFA_REMOVED, user=user, request=request, device=kind)


def mfa_reset(*, user, by, request=None) -> None:
    """An administrator removes every second factor of another user (who enrols again at
    the next sign-in) and ends their sessions. Never one's own: a second administrator
    must do it."""
    if user.pk == by.pk:
        raise AccountError(
            _("You cannot reset your own second factors: ask another administrator.")
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        WebAuthnCredential.objects.filter(user=user).delete()
        event_record(kind=K.MFA_RESET, user=user, actor=by, request=request)
    sessions_end_all(user=user, reason="mfa_reset", by=by, request=request)


def verify_second_factor(*, user, token: str):
    """The device (TOTP or a recovery code) that accepts ``token``, or None. A recovery
    code is used up."""
    token = (token or "").strip().replace(" ", "").lower()
    if not token:
        return None
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(token):
            return device
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(token):
            return device
    return None


# --- One person, one account; deactivation --------------------------------------------------
def _active_admins(clinic_id: int):
    return Membership.objects.filter(
        clinic_id=clinic_id, role=MembershipRole.ADMIN, is_active=True, user__is_active=True
    )


def ensure_admin_remains(*, membership: Membership | None = None, user=None) -> None:
    """Refuse a change that would leave a clinic without an active administrator: demoting
    or deactivating ``membership``, or deactivating ``user`` (all their clinics)."""
    if membership is not None:
        current = Membership.objects.filter(pk=membership.pk).first()
        if (
            current is not None
            and current.role == MembershipRole.ADMIN
            and current.is_active
            and not (membership.role == MembershipRole.ADMIN and membership.is_active)
            and not _active_admins(current.clinic_id).exclude(pk=current.pk).exists()
        ):
            raise AccountError(_("A clinic must keep at least one active administrator."))
    if user is not None:
        for admin_membership in _active_admins_of(user):
            if not _active_admins(admin_membership.clinic_id).exclude(user=user).exists():
                raise AccountError(_("A clinic must keep at least one active administrator."))


def _active_admins_of(user):
    return Membership.objects.filter(user=user, role=MembershipRole.ADMIN, is_active=True)


def user_has_recorded_acts(user) -> bool:
    """Whether anything the user did is on record (the audit trail, or any row of another
    app that points at them: appointments booked, payments registered, admin history…).
    Such a user is deactivated, never deleted (NGS1.03.09)."""
    if AuditEntry.objects.filter(actor_kind=AuditEntry.Actor.STAFF, actor_id=user.pk).exists():
        return True
    own = {"accounts", "otp_totp", "otp_static", "django_otp_webauthn", "axes", "sessions"}
    for relation in user._meta.related_objects:
        model = relation.related_model
        if model._meta.app_label in own or model is Membership:
            continue
        if relation.many_to_many or relation.one_to_many or relation.one_to_one:
            name = relation.field.name
            if model._default_manager.filter(**{name: user.pk}).exists():
                return True
    return False


def user_deactivate(*, user, by, request=None) -> None:
    """Deactivate a staff account: it can no longer sign in, its sessions end and the API
    keys it created are revoked, at once."""
    if user.pk == by.pk:
        raise AccountError(_("You cannot deactivate your own account."))
    ensure_admin_remains(user=user)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        user_offboard(user=user, by=by, request=request)


def user_offboard(*, user, by=None, request=None) -> None:
    """What deactivation does besides the flag (also run when an admin unticks "active")."""
    from clinic.partner_api.keys import api_key_revoke

    for key in ApiKey.objects.filter(created_by=user, revoked_at__isnull=True):
        api_key_revoke(key=key)
    sessions_end_all(user=user, reason="deactivated", by=by, request=request)
    event_record(kind=K.DEACTIVATED, user=user, actor=by, request=request)


# --- Invitations ---------------------------------------------------------------------------
def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *, clinic, email: str, full_name: str, cpf: str, role: str, by, request=None
) -> tuple[Invitation, str]:
    """Invite someone: an e-mail with a one-time link, valid CUIDAR_INVITATION_DAYS. The
    person chooses their username and password and enrols a second factor on it."""
    if StaffProfile.objects.filter(cpf=cpf).exists():
        raise AccountError(_("Another staff account already has this CPF."))
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        clinic=clinic,
        email=email,
        full_name=full_name,
        cpf=cpf,
        role=role,
        token_hash=_token_hash(token),
        invited_by=by,
        expires_at=timezone.now() + timedelta(days=settings.CUIDAR_INVITATION_DAYS),
    )
    event_record(
        kind=K.INVITED, username=email, actor=by, request=request, clinic=clinic.pk, role=role
    )
    link = settings.CUIDAR_PUBLIC_URL + reverse("accounts:invitation", args=[token])
    body = render_to_string(
        "accounts/email/invitation.txt",
        {"invitation": invitation, "link": link, "days": settings.CUIDAR_INVITATION_DAYS},
    )
    subject = _("Your access to %(clinic)s on Cuidar") % {"clinic": clinic.name}
    # Sent after commit: no transaction is held across the mail server's answer.
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email]))
    return invitation, token


def invitation_for_token(token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("clinic").filter(token_hash=_token_hash(token)).first()
    )
    if invitation is None or not invitation.is_open():
        return None
    return invitation


def invitation_accept(*, invitation: Invitation, username: str, password: str, request=None):
    """Create the account the invitation is for (staff, in its clinic and role) and close
    the invitation: the link works once."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not locked.is_open():
            raise AccountError(_("This invitation was already used or has expired."))
        first, _sep, last = locked.full_name.partition(" ")
        user = User(
            username=username, email=locked.email, first_name=first, last_name=last, is_staff=True
        )
        user.set_password(password)
        user.save()
        StaffProfile.objects.create(user=user, cpf=locked.cpf)
        clinic_services.membership_save(
            membership=Membership(user=user, clinic=locked.clinic, role=locked.role)
        )
        locked.accepted_at = timezone.now()
        locked.user = user
        locked.save(update_fields=["accepted_at", "user"])
        event_record(kind=K.INVITATION_ACCEPTED, user=user, request=request)
    return user
