"""Signal receivers (connected in ``AccountsConfig.ready``): sign-ins, sign-outs and
failures go to the security trail; a privilege change rotates the user's session keys; a
deactivated account loses its sessions and API keys at once; an account with recorded acts
is never deleted."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from clinic.models import Membership

from . import services
from .exceptions import AccountError
from .models import SecurityEvent, SecurityPolicy, StaffSession

User = get_user_model()
K = SecurityEvent.Kind


def on_logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        from .views import welcome_message

        services.session_register(request=request, user=user)
        welcome_message(request)


def on_logged_out(sender, request, user, **kwargs):
    if user is None or request is None or not hasattr(request, "session"):
        return
    key = request.session.session_key
    if key:
        StaffSession.objects.filter(session_key=key, ended_at__isnull=True).update(
            ended_at=services.timezone.now(), end_reason="signed_out"
        )
    services.event_record(kind=K.SIGN_OUT, user=user, request=request)


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = (credentials or {}).get("username") or ""
    user = User.objects.filter(username=username).first() if username else None
    services.event_record(
        kind=K.SIGN_IN_FAILED,
        user=user,
        username=username,
        request=request,
        step=(credentials or {}).get("cuidar_step", "password"),
    )


def on_locked_out(sender, request, username, ip_address, **kwargs):
    user = User.objects.filter(username=username).first() if username else None
    services.event_record(kind=K.LOCKED_OUT, user=user, username=username or "", request=request)


def on_policy_saved(sender, instance, **kwargs):
    # After the commit: a session that re-read the policy before it would keep old limits.
    transaction.on_commit(services.policy_changed)


def on_membership_changed(sender, instance, **kwargs):
    services.privileges_changed(user_id=instance.user_id)


def on_user_m2m_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # from the group's or the permission's side
        for user_id in pk_set or ():
            services.privileges_changed(user_id=user_id)
    else:
        services.privileges_changed(user_id=instance.pk)


def on_user_pre_save(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None:
        instance._accounts_was_active = True
        return
    if update_fields is not None and "is_active" not in update_fields:
        instance._accounts_was_active = instance.is_active
        return
    previous = User.objects.filter(pk=instance.pk).values("is_active").first()
    instance._accounts_was_active = previous["is_active"] if previous else True


def on_user_saved(sender, instance, created, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login", "password"}:
        return
    services.privileges_changed(user_id=instance.pk)
    if not instance.is_active and getattr(instance, "_accounts_was_active", False):
        # Unticking "active" in the admin is a deactivation: sessions and keys end now.
        services.user_offboard(user=instance)


def on_user_delete(sender, instance, **kwargs):
    if services.user_has_recorded_acts(instance):
        raise AccountError(
            "A user with recorded acts cannot be deleted, only deactivated (NGS1.03.09)."
        )


def on_webauthn_saved(sender, instance, created, **kwargs):
    if created:
        services.event_record(kind=K.MFA_ADDED, user=instance.user, device="webauthn")


def connect():
    from axes.signals import user_locked_out
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
    from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
    from django_otp_webauthn.models import WebAuthnCredential

    uid = "clinic.accounts."
    user_logged_in.connect(on_logged_in, dispatch_uid=uid + "logged_in")
    user_logged_out.connect(on_logged_out, dispatch_uid=uid + "logged_out")
    user_login_failed.connect(on_login_failed, dispatch_uid=uid + "login_failed")
    user_locked_out.connect(on_locked_out, dispatch_uid=uid + "locked_out")
    post_save.connect(on_membership_changed, sender=Membership, dispatch_uid=uid + "m_saved")
    post_delete.connect(on_membership_changed, sender=Membership, dispatch_uid=uid + "m_deleted")
    post_save.connect(on_policy_saved, sender=SecurityPolicy, dispatch_uid=uid + "policy")
    m2m_changed.connect(on_user_m2m_changed, sender=User.groups.through, dispatch_uid=uid + "g")
    m2m_changed.connect(
        on_user_m2m_changed, sender=User.user_permissions.through, dispatch_uid=uid + "p"
    )
    pre_save.connect(on_user_pre_save, sender=User, dispatch_uid=uid + "u_pre_save")
    post_save.connect(on_user_saved, sender=User, dispatch_uid=uid + "u_saved")
    pre_delete.connect(on_user_delete, sender=User, dispatch_uid=uid + "u_delete")
    post_save.connect(on_webauthn_saved, sender=WebAuthnCredential, dispatch_uid=uid + "wa")
