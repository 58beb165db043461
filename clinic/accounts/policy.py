"""What the clinics' security policies mean for one staff user: must they use a second
factor, and how long may their session sit idle.

A user working in several clinics gets the strictest answer of them all. Superusers (the
operator) and users with no active membership always need a second factor and get the
shortest idle timeout.
"""

from __future__ import annotations

from clinic.models import Membership
from clinic.roles import ROLE_PERMISSIONS

from .models import SecurityPolicy

#: Permissions that reach clinical or financial data: a role holding any of them always
#: signs in with a second factor (issue 19: "only for roles without clinical or financial
#: access").
SENSITIVE_PREFIXES = ("billing.",)
SENSITIVE_PERMISSIONS = {
    "clinic.view_patient",
    "clinic.change_patient",
    "clinic.view_consent",
    "clinic.view_auditentry",
    "clinic.view_privacyrequest",
    "clinic.view_outboundmessage",
    "clinic.view_receivedmessage",
    "scheduling.view_appointment",
}

DEFAULT_POLICY = SecurityPolicy()


def role_has_sensitive_access(role: str) -> bool:
    perms = ROLE_PERMISSIONS.get(role, set())
    return any(p in SENSITIVE_PERMISSIONS or p.startswith(SENSITIVE_PREFIXES) for p in perms)


def policy_for(clinic_id: int) -> SecurityPolicy:
    """The clinic's policy, or the defaults (unsaved) when it has none."""
    return SecurityPolicy.objects.filter(clinic_id=clinic_id).first() or DEFAULT_POLICY


def _memberships(user) -> list[tuple[str, SecurityPolicy]]:
    rows = list(
        Membership.objects.filter(user=user, is_active=True, clinic__is_active=True).values_list(
            "clinic_id", "role"
        )
    )
    policies = {
        p.clinic_id: p for p in SecurityPolicy.objects.filter(clinic_id__in=[c for c, _ in rows])
    }
    return [(role, policies.get(clinic_id, DEFAULT_POLICY)) for clinic_id, role in rows]


def mfa_required_for(user) -> bool:
    """Whether this staff user must sign in with a second factor."""
    if user.is_superuser:
        return True
    memberships = _memberships(user)
    if not memberships:
        return True
    return any(
        role_has_sensitive_access(role) or role not in (policy.mfa_optional_roles or [])
        for role, policy in memberships
    )


def idle_seconds_for(user) -> int:
    """The shortest inactivity timeout among the user's clinics, in seconds."""
    memberships = _memberships(user)
    if user.is_superuser or not memberships:
        return DEFAULT_POLICY.idle_minutes_sensitive * 60
    return 60 * min(
        policy.idle_minutes_sensitive
        if role_has_sensitive_access(role)
        else policy.idle_minutes_other
        for role, policy in memberships
    )


def absolute_seconds_for(user) -> int:
    memberships = _memberships(user)
    hours = min([policy.absolute_hours for _role, policy in memberships] or [12])
    return hours * 3600
