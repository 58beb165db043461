"""Admin of the clinic's people and places: what the reception uses all day (patients,
with their consents — their message timeline is messaging's page, linked from the
patient's; professionals, rooms, consent decisions)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import selectors, services
from ..audit import audit_staff_view
from ..kernel.tenancy import current_clinic
from ..models import Consent, Patient, Professional, Room
from .base import ClinicScopedAdmin, ClinicScopedInline

User = get_user_model()

ADDRESS_FIELDS = ("postal_code", "street", "number", "complement", "district", "city", "state")


class ConsentInline(ClinicScopedInline, admin.TabularInline):
    """Consents shown on the patient: old decisions are read-only, new ones are added."""

    model = Consent
    extra = 0
    fields = (
        "channel",
        "purpose",
        "status",
        "legal_basis",
        "source",
        "text_version",
        "recorded_at",
        "recorded_by",
    )
    readonly_fields = ("recorded_at", "recorded_by")
    ordering = ("-recorded_at", "-pk")
    verbose_name = _("consent decision")
    verbose_name_plural = _("consents (LGPD) — record a new decision to change one")

    def has_change_permission(self, request, obj=None):
        return False  # append-only

    def has_delete_permission(self, request, obj=None):
        return False  # append-only


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    list_display = (
        "display_name",
        "cpf_display",
        "phone_display",
        "birth_date",
        "preferred_channel",
        "no_show_count",
    )
    list_filter = ("preferred_channel", "sex", "state", "created_at")
    list_per_page = 50
    search_fields = ("search_name",)  # widened in get_search_results (CPF, phone)
    search_help_text = _("Search by name, CPF (with or without punctuation) or phone.")
    readonly_fields = ("no_show_count", "checkin_token", "created_at", "updated_at")
    inlines = (ConsentInline,)
    actions = ("rotate_checkin_token",)
    change_form_template = "clinic/admin/patient_change_form.html"
    fieldsets = (
        (
            _("Identification"),
            {
                "fields": (
                    "clinic",
                    "full_name",
                    "social_name",
                    "cpf",
                    "birth_date",
                    "sex",
                    "gender_identity",
                    "mother_name",
                    ("birthplace_city", "birthplace_state"),
                )
            },
        ),
        (_("Contact"), {"fields": ("phone", "email", "preferred_channel")}),
        # Not collapsed: CFM 1.638 asks for the full address with CEP in the record.
        (_("Address"), {"fields": ADDRESS_FIELDS}),
        (
            _("Health"),
            {"fields": ("blood_type", "allergies", "chronic_conditions", "medications")},
        ),
        (_("Reception"), {"fields": ("lead_source", "notes", "no_show_count")}),
        (
            _("System"),
            {"classes": ("collapse",), "fields": ("checkin_token", "created_at", "updated_at")},
        ),
    )

    @admin.display(description=_("CPF"), ordering="cpf")
    def cpf_display(self, obj):
        return obj.cpf_formatted or "—"

    @admin.display(description=_("mobile phone"), ordering="phone")
    def phone_display(self, obj):
        return obj.phone_formatted

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Opening a record shows clinical fields: each opening is in the audit trail. An
        incomplete registration (CFM 1.638 art. 5 identification) is pointed out."""
        response = super().change_view(request, object_id, form_url, extra_context)
        patient = getattr(response, "context_data", {}).get("original")
        if request.method == "GET" and response.status_code == 200 and patient is not None:
            audit_staff_view(request=request, obj=patient)
            gaps = selectors.registration_gaps(patient)
            if gaps:
                response.context_data["registration_gaps"] = gaps
                response.context_data["registration_gaps_title"] = _(
                    "Incomplete registration: the clinical record (CFM 1.638/2002) also needs"
                )
        return response

    def get_search_results(self, request, queryset, search_term):
        # CPF typed without punctuation, phone in any format, name without accents.
        clinic = current_clinic(request)
        return selectors.patient_search(clinic=clinic, term=search_term, queryset=queryset), False

    def save_model(self, request, obj, form, change):
        editable = services.PATIENT_EDITABLE_FIELDS
        if change:
            changed = {n: form.cleaned_data[n] for n in form.changed_data if n in editable}
            services.patient_update(patient=obj, **changed)
            return
        data = {n: v for n, v in form.cleaned_data.items() if n in editable}
        created = services.patient_create(clinic=obj.clinic, **data)
        # The admin goes on with `obj` (inlines, log entry, redirect): make it the saved row.
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        if formset.model is not Consent:
            return super().save_formset(request, form, formset, change)
        patient = form.instance
        # The admin's change message reads these, as after a normal formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for consent_form in formset.extra_forms:
            if not consent_form.has_changed():
                continue
            data = consent_form.cleaned_data
            consent = services.consent_record(
                patient=patient,
                channel=data["channel"],
                purpose=data["purpose"],
                status=data["status"],
                legal_basis=data["legal_basis"],
                source=data["source"],
                text_version=data["text_version"],
                recorded_by=request.user,
            )
            formset.new_objects.append(consent)
        return None

    @admin.action(description=_("Rotate the check-in QR code"), permissions=["change"])
    def rotate_checkin_token(self, request, queryset):
        with transaction.atomic():
            for patient in queryset:
                services.patient_rotate_checkin_token(patient=patient)
        self.message_user(
            request,
            _("New check-in codes issued for %(count)d patient(s).") % {"count": len(queryset)},
            messages.SUCCESS,
        )


@admin.register(Professional)
class ProfessionalAdmin(ClinicScopedAdmin):
    list_display = ("full_name", "registration_display", "specialty", "color_swatch", "is_active")
    list_filter = ("is_active", "council", "specialty")
    list_select_related = ("user",)
    search_fields = ("full_name", "registration", "specialty", "email")
    fieldsets = (
        (None, {"fields": ("clinic", "full_name", "specialty", "is_active")}),
        (_("Council registration"), {"fields": ("council", "registration", "council_state")}),
        (_("Contact"), {"fields": ("email", "phone")}),
        (_("Agenda and sign-in"), {"fields": ("color", "user")}),
    )

    @admin.display(description=_("registration"), ordering="registration")
    def registration_display(self, obj):
        return obj.registration_display or "—"

    @admin.display(description=_("colour"))
    def color_swatch(self, obj):
        return format_html(
            '<span style="display:inline-block;width:1.2em;height:1.2em;border-radius:50%;'
            'background:{};vertical-align:middle" title="{}"></span>',
            obj.color,
            obj.color,
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # Only staff of this clinic can be linked: never list other clinics' users.
            clinic = current_clinic(request)
            users = User.objects.filter(memberships__is_active=True)
            if clinic is not None or not request.user.is_superuser:
                users = users.filter(memberships__clinic=clinic)
            kwargs["queryset"] = users.distinct().order_by("first_name", "username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Room)
class RoomAdmin(ClinicScopedAdmin):
    list_display = ("name", "resource_summary", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "resources")
    fields = ("clinic", "name", "resources", "is_active")

    @admin.display(description=_("resources"))
    def resource_summary(self, obj):
        return ", ".join(obj.resource_list) or "—"


@admin.register(Consent)
class ConsentAdmin(ClinicScopedAdmin):
    """The consent log: a read-only history, with new decisions added from here or from
    the patient's page."""

    list_display = ("recorded_at", "patient", "channel", "purpose", "status", "source")
    list_filter = ("status", "channel", "purpose", "source", "legal_basis", "recorded_at")
    list_select_related = ("patient",)
    search_fields = ("patient__search_name", "patient__cpf")
    autocomplete_fields = ("patient",)
    date_hierarchy = "recorded_at"
    fields = (
        "clinic",
        "patient",
        "channel",
        "purpose",
        "status",
        "legal_basis",
        "source",
        "text_version",
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return (*self.fields, "recorded_at", "recorded_by")
        return ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        created = services.consent_record(
            patient=obj.patient,
            channel=obj.channel,
            purpose=obj.purpose,
            status=obj.status,
            legal_basis=obj.legal_basis,
            source=obj.source,
            text_version=obj.text_version,
            recorded_by=request.user,
        )
        obj.pk = created.pk
        obj._state.adding = False
