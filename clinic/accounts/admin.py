"""Staff security in the admin: the clinic's policy, invitations, who is signed in (and
ending their sessions), lockouts (and unlocking), the security trail; on staff accounts,
CPF, deactivation and resetting second factors; and re-authentication added to the admins
listed in CUIDAR_REAUTH_ADMIN_MODELS.

These pages are for clinic administrators (the ``admin`` role in the current clinic) and
the operator (superuser); a clinic administrator sees only the members of their clinic.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.choices import MembershipRole
from clinic.kernel.tenancy import current_clinic
from clinic.models import Membership

from . import services
from .exceptions import AccountError
from .forms import InvitationForm
from .models import Invitation, SecurityEvent, SecurityPolicy, StaffProfile, StaffSession
from .sudo import ReauthOnSubmitAdminMixin, ReauthRequiredAdminMixin

User = get_user_model()
K = SecurityEvent.Kind


def is_clinic_admin(request) -> bool:
    """The operator, or a clinic administrator: the one role that manages memberships
    (clinic/roles.py). Read from the permissions the admin has already loaded: the menu
    asks on every page and costs no query."""
    return request.user.is_superuser or request.user.has_perm("clinic.change_membership")


def member_ids(request):
    """Users the request's administrator may manage: members of the current clinic (every
    user for a superuser working in all clinics)."""
    clinic = current_clinic(request)
    if clinic is None and request.user.is_superuser:
        return None
    return Membership.objects.filter(clinic=clinic).values("user_id")


class ClinicAdminOnly:
    """Visible to clinic administrators and the operator; rows limited to their members."""

    user_field = "user"

    def has_module_permission(self, request):
        return is_clinic_admin(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_admin(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        members = member_ids(request)
        return qs if members is None else qs.filter(**{f"{self.user_field}__in": members})


@admin.register(SecurityPolicy)
class SecurityPolicyAdmin(ReauthRequiredAdminMixin, admin.ModelAdmin):
    """Each clinic's staff security: inactivity timeouts, longest session, roles allowed
    to sign in without a second factor (only roles without clinical or financial data)."""

    list_display = ("clinic", "idle_minutes_sensitive", "idle_minutes_other", "absolute_hours")
    fields = (
        "clinic",
        "idle_minutes_sensitive",
        "idle_minutes_other",
        "absolute_hours",
        "mfa_optional_roles",
    )

    def has_module_permission(self, request):
        return is_clinic_admin(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_admin(request)

    def has_change_permission(self, request, obj=None):
        return is_clinic_admin(request)

    def has_add_permission(self, request):
        return is_clinic_admin(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        clinic = current_clinic(request)
        if clinic is None and request.user.is_superuser:
            return qs
        return qs.filter(clinic=clinic)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "clinic" and not request.user.is_superuser:
            clinic = current_clinic(request)
            kwargs["queryset"] = type(clinic).objects.filter(pk=getattr(clinic, "pk", None))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(StaffSession)
class StaffSessionAdmin(ClinicAdminOnly, admin.ModelAdmin):
    """Who is signed in, where from; end a session (a lost phone, someone who left)."""

    list_display = ("user", "user_agent", "ip", "created_at", "last_seen_at", "ended_at")
    list_filter = ("ended_at",)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    actions = ("end_sessions",)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not is_clinic_admin(request):
            actions.pop("end_sessions", None)
        return actions

    @admin.action(description=_("End the selected sessions"))
    def end_sessions(self, request, queryset):
        ended = 0
        for staff_session in queryset.filter(ended_at__isnull=True).select_related("user"):
            services.session_end(
                staff_session=staff_session,
                reason="ended_by_admin",
                by=request.user,
                request=request,
            )
            ended += 1
        self.message_user(request, gettext("%(count)d session(s) ended.") % {"count": ended})


@admin.register(SecurityEvent)
class SecurityEventAdmin(ClinicAdminOnly, admin.ModelAdmin):
    """The staff security trail, read-only."""

    list_display = ("at", "kind", "username", "actor", "ip")
    list_filter = ("kind", "at")
    search_fields = ("username", "ip")
    date_hierarchy = "at"
    list_select_related = ("actor",)

    def get_queryset(self, request):
        qs = admin.ModelAdmin.get_queryset(self, request)
        members = member_ids(request)
        return qs if members is None else qs.filter(user_id__in=members)


class LockoutStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return (("yes", _("Locked")),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
        return queryset


@admin.register(AccessAttempt)
class LockoutAdmin(admin.ModelAdmin):
    """Failed sign-ins counted towards the lockout, per username and address. "Unlock"
    clears them at once (and is recorded in the security trail)."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "locked")
    list_filter = (LockoutStateFilter,)
    search_fields = ("username", "ip_address")
    fields = list_display
    readonly_fields = list_display
    actions = ("unlock",)

    @admin.display(description=_("locked"), boolean=True)
    def locked(self, obj):
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    def has_module_permission(self, request):
        return is_clinic_admin(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_admin(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if is_clinic_admin(request):
            actions["unlock"] = self.get_action("unlock")
        return actions

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        members = member_ids(request)
        if members is None:
            return qs
        usernames = User.objects.filter(pk__in=members).values("username")
        return qs.filter(username__in=usernames)

    @admin.action(description=_("Unlock"))
    def unlock(self, request, queryset):
        count = 0
        for attempt in queryset:
            services.event_record(
                kind=K.UNLOCKED,
                user=User.objects.filter(username=attempt.username).first(),
                username=attempt.username or "",
                actor=request.user,
                request=request,
                ip_address=attempt.ip_address,
            )
            attempt.delete()
            count += 1
        self.message_user(request, gettext("%(count)d lock(s) cleared.") % {"count": count})


@admin.register(Invitation)
class InvitationAdmin(ReauthRequiredAdminMixin, admin.ModelAdmin):
    """Invite someone to the current clinic, in a role: they get an e-mail with a one-time
    link, choose their username and password and enrol a second factor."""

    list_display = (
        "email",
        "full_name",
        "role",
        "clinic",
        "created_at",
        "expires_at",
        "accepted_at",
    )
    list_filter = ("role", "accepted_at")
    readonly_fields = (
        "email",
        "full_name",
        "role",
        "clinic",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "user",
    )
    fields = readonly_fields

    def has_module_permission(self, request):
        return is_clinic_admin(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_admin(request)

    def has_add_permission(self, request):
        return is_clinic_admin(request) and current_clinic(request) is not None

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        clinic = current_clinic(request)
        return qs if clinic is None and request.user.is_superuser else qs.filter(clinic=clinic)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        clinic = current_clinic(request)
        form = InvitationForm(request.POST or None)
        form.fields["role"].choices = MembershipRole.choices
        if request.method == "POST" and form.is_valid():
            try:
                services.invitation_create(
                    clinic=clinic, by=request.user, request=request, **form.cleaned_data
                )
            except AccountError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    gettext("Invitation sent to %(email)s.")
                    % {"email": form.cleaned_data["email"]},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:accounts_invitation_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Invite someone to %(clinic)s") % {"clinic": clinic.name},
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "accounts/admin/invite.html", context)


# --- Staff accounts and roles: guards added to the existing admins --------------------------
class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    fields = ("cpf", "must_change_password")
    readonly_fields = ("must_change_password",)
    verbose_name_plural = _("person")


class UserGuardMixin:
    """On staff accounts: CPF (one person, one account); nobody grants themselves a
    permission; an account with recorded acts is deactivated, never deleted; the last
    active administrator of a clinic stays; a password an administrator sets must be
    changed at the next sign-in; actions to deactivate and to reset second factors."""

    def get_inlines(self, request, obj):
        return (*super().get_inlines(request, obj), StaffProfileInline)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            readonly += ["is_superuser", "is_staff", "is_active", "groups", "user_permissions"]
        return readonly

    def has_delete_permission(self, request, obj=None):
        if obj is not None and (obj.pk == request.user.pk or services.user_has_recorded_acts(obj)):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            if user.pk == request.user.pk or services.user_has_recorded_acts(user):
                raise PermissionDenied
        super().delete_queryset(request, queryset)

    def save_model(self, request, obj, form, change):
        if (
            change
            and obj.pk == request.user.pk
            and {"is_superuser", "groups", "user_permissions"} & set(form.changed_data)
        ):
            raise PermissionDenied
        if change and "is_active" in form.changed_data and not obj.is_active:
            try:
                services.ensure_admin_remains(user=obj)
            except AccountError as error:
                self.message_user(request, error.message, messages.ERROR)
                obj.is_active = True
        super().save_model(request, obj, form, change)
        if not change:  # created with a password chosen by the administrator
            StaffProfile.objects.update_or_create(user=obj, defaults={"must_change_password": True})

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if (
            request.method == "POST"
            and response.status_code == 302
            and str(id) != str(request.user.pk)
        ):
            StaffProfile.objects.update_or_create(
                user_id=id, defaults={"must_change_password": True}
            )
            services.sessions_end_all(
                user=User.objects.get(pk=id),
                reason="password_set_by_admin",
                by=request.user,
                request=request,
            )
        return response

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions["deactivate"] = self.get_action("deactivate")
        actions["reset_second_factors"] = self.get_action("reset_second_factors")
        return actions

    @admin.action(description=_("Deactivate (ends sessions, revokes API keys)"))
    def deactivate(self, request, queryset):
        for user in queryset:
            try:
                services.user_deactivate(user=user, by=request.user, request=request)
            except AccountError as error:
                self.message_user(request, f"{user}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, gettext("%(user)s deactivated.") % {"user": user})

    @admin.action(description=_("Reset second factors (the user enrols again)"))
    def reset_second_factors(self, request, queryset):
        for user in queryset:
            try:
                services.mfa_reset(user=user, by=request.user, request=request)
            except AccountError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request, gettext("Second factors of %(user)s reset.") % {"user": user}
                )


class MembershipGuardMixin:
    """Roles: nobody changes their own; each clinic keeps an active administrator."""

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.user_id == request.user.pk and not request.user.is_superuser:
            readonly += ["role", "is_active"]
        return readonly

    def save_model(self, request, obj, form, change):
        if obj.user_id == request.user.pk and not request.user.is_superuser:
            raise PermissionDenied
        try:
            services.ensure_admin_remains(membership=obj)
        except AccountError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        obj.is_active = False
        try:
            services.ensure_admin_remains(membership=obj)
        except AccountError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        obj.is_active = True
        super().delete_model(request, obj)


GUARDS = {"auth.user": UserGuardMixin, "clinic.membership": MembershipGuardMixin}


def _wrap_registered_admins() -> None:
    """Re-register the admins of CUIDAR_REAUTH_ADMIN_MODELS (and the role admins) with
    re-authentication and the guards above, without their modules importing this one."""
    on_submit = set(settings.CUIDAR_REAUTH_ON_SUBMIT_ADMIN_MODELS)
    labels = {*settings.CUIDAR_REAUTH_ADMIN_MODELS, *on_submit, *GUARDS}
    for label in sorted(labels):
        model = apps.get_model(label)
        if not admin.site.is_registered(model):
            continue
        current = type(admin.site.get_model_admin(model))
        bases = []
        if label in settings.CUIDAR_REAUTH_ADMIN_MODELS and not issubclass(
            current, ReauthRequiredAdminMixin
        ):
            bases.append(ReauthRequiredAdminMixin)
        elif label in on_submit and not issubclass(current, ReauthRequiredAdminMixin):
            bases.append(ReauthOnSubmitAdminMixin)
        if label in GUARDS:
            bases.append(GUARDS[label])
        if not bases:
            continue
        admin.site.unregister(model)
        admin.site.register(
            model, type(current.__name__, (*bases, current), {"__module__": current.__module__})
        )


_wrap_registered_admins()
