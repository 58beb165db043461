"""Staff accounts: each clinic's security policy, the person behind an account (CPF), the
sessions they hold, invitations, password history and the security trail.

The second factors themselves are django-otp's devices (``otp_totp.TOTPDevice``,
``otp_static.StaticDevice`` for recovery codes, ``django_otp_webauthn.WebAuthnCredential``
for passkeys); lockouts are django-axes' ``AccessAttempt`` rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.choices import MembershipRole
from clinic.fields import CPFField


class SecurityPolicy(models.Model):
    """One clinic's staff security settings (one row per clinic; a clinic without a row has
    the defaults). The second factor can be relaxed only for roles without clinical or
    financial access (``policy.role_has_sensitive_access``)."""

    clinic = models.OneToOneField(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="security_policy",
        verbose_name=_("clinic"),
    )
    idle_minutes_sensitive = models.PositiveSmallIntegerField(
        _("inactivity timeout, clinical and financial roles (minutes)"),
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(240)],
    )
    idle_minutes_other = models.PositiveSmallIntegerField(
        _("inactivity timeout, other roles (minutes)"),
        default=120,
        validators=[MinValueValidator(5), MaxValueValidator(720)],
    )
    absolute_hours = models.PositiveSmallIntegerField(
        _("longest session (hours)"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text=_("A session ends this long after sign-in, however active."),
    )
    mfa_optional_roles = models.JSONField(
        _("roles that may sign in without a second factor"),
        default=list,
        blank=True,
        help_text=_("Only roles with no access to clinical or financial data can be listed."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("staff security policy")
        verbose_name_plural = _("staff security policies")

    def __str__(self) -> str:
        return str(self.clinic)

    def clean(self):
        from .policy import role_has_sensitive_access

        roles = set(self.mfa_optional_roles or [])
        unknown = roles - set(MembershipRole.values)
        if unknown:
            raise ValidationError({"mfa_optional_roles": _("Unknown role.")})
        sensitive = sorted(role for role in roles if role_has_sensitive_access(role))
        if sensitive:
            raise ValidationError(
                {
                    "mfa_optional_roles": _(
                        "These roles reach clinical or financial data and must always use "
                        "a second factor: %(roles)s."
                    )
                    % {"roles": ", ".join(str(MembershipRole(r).label) for r in sensitive)}
                }
            )


class StaffProfile(models.Model):
    """The person behind a staff account (NGS1.03.09: one person, one account): their CPF,
    unique across the installation, and the account's security state."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_profile",
        verbose_name=_("user"),
    )
    cpf = CPFField(_("CPF"), blank=True)
    must_change_password = models.BooleanField(
        _("must change password at next sign-in"),
        default=False,
        help_text=_("Set when an administrator chose the password."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        constraints = [
            models.UniqueConstraint(
                fields=["cpf"],
                condition=~models.Q(cpf=""),
                name="staffprofile_unique_cpf",
                violation_error_message=_("Another staff account already has this CPF."),
            )
        ]

    def __str__(self) -> str:
        return str(self.user)


class PasswordHistory(models.Model):
    """A password a user had (its hash), so a new one differs from the last N."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_history"
    )
    password = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d}"


class StaffSession(models.Model):
    """A signed-in staff session, as the user and administrators see it: which device,
    from where, since when. Ending one deletes the Django session at once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_sessions",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("signed in at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("why it ended"), max_length=40, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("device"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("staff session")
        verbose_name_plural = _("staff sessions")
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="staffsession_user_open_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d %H:%M}"


class Invitation(models.Model):
    """An invitation to join a clinic in a role, sent by e-mail with a one-time link. The
    token itself is never stored, only its hash."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.CASCADE,
        related_name="staff_invitations",
        verbose_name=_("clinic"),
    )
    email = models.EmailField(_("e-mail"))
    full_name = models.CharField(_("full name"), max_length=150)
    cpf = CPFField(_("CPF"))
    role = models.CharField(_("role"), max_length=20, choices=MembershipRole.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("sent at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("account created"),
    )

    class Meta:
        verbose_name = _("staff invitation")
        verbose_name_plural = _("staff invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_role_display()})"

    def is_open(self, now=None) -> bool:
        return self.accepted_at is None and self.expires_at > (now or timezone.now())


class SecurityEvent(models.Model):
    """The staff security trail: sign-ins and failures, lockouts and unlocks, second factors
    added and reset, sessions ended, deactivations. Append-only (a PostgreSQL trigger
    refuses UPDATE and DELETE). A failure for an unknown username is kept with the name
    tried and no user."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
        SIGN_OUT = "sign_out", _("Signed out")
        LOCKED_OUT = "locked_out", _("Locked out")
        UNLOCKED = "unlocked", _("Unlocked")
        MFA_ADDED = "mfa_added", _("Second factor added")
        MFA_REMOVED = "mfa_removed", _("Second factor removed")
        MFA_RESET = "mfa_reset", _("Second factors reset by an administrator")
        RECOVERY_CODES = "recovery_codes", _("Recovery codes generated")
        REAUTHENTICATED = "reauthenticated", _("Confirmed identity for a critical act")
        SESSION_ENDED = "session_ended", _("Session ended")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET_REQUESTED = "password_reset", _("Password reset requested")
        INVITED = "invited", _("Invited")
        INVITATION_ACCEPTED = "invitation_accepted", _("Invitation accepted")
        DEACTIVATED = "deactivated", _("Account deactivated")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    kind = models.CharField(_("what"), max_length=30, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,  # the trail outlives nothing: users are deactivated, not deleted
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("account"),
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("done by"),
    )
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("device"), max_length=255, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security trail")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "kind", "-at"], name="secevent_user_kind_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.kind}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError(_("The security trail is append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("The security trail is append-only."))
