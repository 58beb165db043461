"""Admin of tenancy: the clinics (tenants), who works in each one and in which role, and
the staff accounts."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from .. import services
from ..kernel.tenancy import clinics_for_user, current_clinic
from ..models import Clinic, Membership
from .people import ADDRESS_FIELDS

User = get_user_model()


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "cnpj_display", "city", "state", "time_zone", "is_active")
    list_filter = ("is_active", "state", "time_zone")
    search_fields = ("name", "legal_name", "cnpj", "city")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "legal_name", "cnpj", "is_active")}),
        (_("Contact"), {"fields": ("phone", "email")}),
        (
            _("Address"),
            {
                "fields": (*ADDRESS_FIELDS, "time_zone"),
            },
        ),
        (_("Patient portal"), {"fields": ("logo",)}),
        (_("Settings"), {"classes": ("collapse",), "fields": ("settings",)}),
        (_("System"), {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("CNPJ"), ordering="cnpj")
    def cnpj_display(self, obj):
        return obj.cnpj_formatted

    def get_queryset(self, request):
        if request.user.is_superuser:
            return super().get_queryset(request)
        return clinics_for_user(request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def has_add_permission(self, request):
        return request.user.is_superuser  # new tenants are created by the operator

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Who works in the clinic and in which role. Staff accounts themselves are created by
    the operator (Users); a clinic administrator changes roles and deactivates members."""

    list_display = ("user", "user_full_name", "role", "is_active", "created_at")
    list_filter = ("role", "is_active")
    list_select_related = ("user", "clinic")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    fields = ("clinic", "user", "role", "is_active")

    @admin.display(description=_("name"), ordering="user__first_name")
    def user_full_name(self, obj):
        return obj.user.get_full_name()

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        clinic = current_clinic(request)
        if clinic is None and request.user.is_superuser:
            return qs
        return qs.for_clinic(clinic)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        return ("clinic", "user") if obj is not None else ()

    def has_add_permission(self, request):
        # Adding means choosing among every user account: the operator's job.
        return request.user.is_superuser

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "clinic":
            kwargs["queryset"] = clinics_for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        services.membership_save(membership=obj)

    def delete_model(self, request, obj):
        services.membership_delete(membership=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for membership in queryset.select_related("user"):
                services.membership_delete(membership=membership)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("clinic", "role", "is_active")


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Staff accounts (operator only), with their clinic memberships."""

    inlines = (MembershipInline,)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.membership_sync_groups(user=form.instance)
