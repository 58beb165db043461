"""Appointments in the admin: the changelist, booking through ``appointment_book``, the
read-only change page (times and people change by rescheduling), bulk status actions, and
the agenda and check-in pages registered on the appointment admin's URLs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, scope_queryset
from clinic.audit import audit_staff_view
from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient, Professional
from clinic.selectors import patient_search

from .. import services
from ..agenda import STATUS_ACTIONS, actions_allowed, can_reschedule, clinic_zone, local_label
from ..choices import AppointmentStatus
from ..exceptions import SchedulingError, wrong_pair_message
from ..models import Appointment, Service
from . import agenda as pages
from . import checkin

S = AppointmentStatus

# ============================================================================================
# Appointments
# ============================================================================================


class ServiceSelect(forms.Select):
    """The service list of the booking form, with the services of other professionals
    hidden (``offered``: the ids shown)."""

    def __init__(self, *args, offered: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.offered = offered

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value not in ("", None) and str(value) not in self.offered:
            option["attrs"].update(hidden=True, disabled=True)
        return option


class AppointmentBookForm(forms.ModelForm):
    """The add form: its validation books through ``appointment_book``.

    Only an attempted booking can tell that a slot is free (on PostgreSQL an exclusion
    constraint decides between two concurrent bookings), so the booking is the last step
    of validation: a taken slot becomes a form error, and the admin then only logs and
    redirects. The admin's add view runs in one transaction, so nothing is half-written.
    """

    clinic = None  # set by AppointmentAdmin.get_form
    user = None
    booked: Appointment | None = None  # the appointment, once booked

    class Meta:
        model = Appointment
        fields = ("patient", "service", "professional", "room", "start", "notes", "internal_notes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Opened from the agenda with a professional: only their services are shown; the
        # others stay in the list, hidden and disabled, for the page's script to show when
        # another professional is chosen. Every service stays valid, so that a wrong pair
        # gets the message below rather than "Select a valid choice".
        field = self.fields.get("service")
        professional = self.initial.get("professional")
        if field is not None and not self.is_bound and str(professional or "").isdigit():
            offered = performed_by(field.queryset, int(professional)).values_list("pk", flat=True)
            select = ServiceSelect(offered={str(pk) for pk in offered}, choices=field.choices)
            if isinstance(field.widget, RelatedFieldWidgetWrapper):  # keep its "+" link
                field.widget.widget = select
            else:
                field.widget = select

    def clean(self):
        cleaned = super().clean()
        service, professional = cleaned.get("service"), cleaned.get("professional")
        if service and professional:
            offered = performed_by(self.fields["service"].queryset, professional.pk)
            if not offered.filter(pk=service.pk).exists():
                self.add_error("service", wrong_pair_message(professional, service, offered))
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if self.errors or self.booked is not None:
            return
        data = self.cleaned_data
        try:
            self.booked = services.appointment_book(
                clinic=self.clinic,
                patient=data["patient"],
                professional=data["professional"],
                service=data["service"],
                start=data["start"],
                room=data.get("room"),
                booked_by=self.user,
                notes=data.get("notes", ""),
                internal_notes=data.get("internal_notes", ""),
            )
        except SchedulingError as exc:
            # SlotUnavailable's message names what clashes (professional, room, patient).
            for name, errors in exc.fields.items():
                self.add_error(name if name in self.fields else None, errors)
            if not exc.fields:
                self.add_error(None, ValidationError(exc.message, code=exc.code))


def performed_by(services, professional_id: int):
    """The services a professional performs: those naming them, and those naming nobody
    (anyone may perform them, as ``appointment_book`` decides)."""
    return services.filter(Q(professionals=professional_id) | Q(professionals=None)).distinct()


def services_by_professional(clinic) -> dict[str, list[int]]:
    """For the add form's script: each active professional's active services (ids), in two
    queries."""
    professionals = list(
        Professional.objects.for_clinic(clinic).filter(is_active=True).values_list("pk", flat=True)
    )
    found: dict[str, list[int]] = {str(pk): [] for pk in professionals}
    rows = Service.objects.for_clinic(clinic).filter(is_active=True)
    for service_id, professional_id in rows.values_list("pk", "professionals").order_by("pk"):
        for pk in professionals if professional_id is None else [professional_id]:
            if str(pk) in found and service_id not in found[str(pk)]:
                found[str(pk)].append(service_id)
    return found


class AppointmentDayFilter(admin.SimpleListFilter):
    """Today, tomorrow or this week, in the clinic's time zone."""

    title = _("day")
    parameter_name = "day"

    def lookups(self, request, model_admin):
        return (("today", _("Today")), ("tomorrow", _("Tomorrow")), ("week", _("This week")))

    def queryset(self, request, queryset):
        zone = clinic_zone(current_clinic(request))
        today = timezone.localdate(timezone=zone)
        first, days = {
            "today": (today, 1),
            "tomorrow": (today + timedelta(days=1), 1),
            "week": (today - timedelta(days=today.weekday()), 7),
        }.get(self.value(), (None, 0))
        if first is None:
            return queryset
        start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
        return queryset.filter(start__gte=start, start__lt=start + timedelta(days=days))


class ClinicRelatedFilter(admin.RelatedFieldListFilter):
    """A related filter listing only the current clinic's rows (the plain one lists every
    clinic's; "related only" would scan all the clinic's appointments for distinct ids)."""

    def field_choices(self, field, request, model_admin):
        rows = scope_queryset(request, field.related_model._default_manager.all())
        return [(row.pk, str(row)) for row in rows]


def _run_status_action(modeladmin, request, queryset, name: str, reason: str = ""):
    """Apply one status change to each selected appointment through its service, and report
    what changed and, row by row, what the status machine refused."""
    action = STATUS_ACTIONS[name]
    zone = clinic_zone(current_clinic(request))
    done = []
    for appointment in queryset.select_related("patient", "service").order_by("start", "pk"):
        label = local_label(appointment, zone)
        try:
            action.run(appointment, user=request.user, reason=reason)
        except SchedulingError as exc:
            modeladmin.message_user(
                request,
                gettext("%(appointment)s was not changed: %(reason)s")
                % {"appointment": label, "reason": exc.message},
                messages.ERROR,
            )
        else:
            done.append(label)
    if done:
        modeladmin.message_user(
            request,
            gettext("%(done)s: %(appointments)s.")
            % {"done": action.done, "appointments": ", ".join(done)},
            messages.SUCCESS,
        )


def _status_action(name: str, description):
    def run(modeladmin, request, queryset):
        _run_status_action(modeladmin, request, queryset, name)

    run.__name__ = f"{name}_selected"
    return admin.action(description=description, permissions=["change"])(run)


@admin.register(Appointment)
class AppointmentAdmin(ClinicScopedAdmin):
    change_list_template = "scheduling/admin/appointment_change_list.html"
    change_form_template = "scheduling/admin/appointment_change_form.html"
    list_display = (
        "when",
        "patient_name",
        "service",
        "professional",
        "room",
        "status_display",
        "booked_via",
    )
    list_display_links = ("when", "patient_name")
    list_filter = (
        AppointmentDayFilter,
        ("professional", ClinicRelatedFilter),
        ("room", ClinicRelatedFilter),
        "status",
        "booked_via",
    )
    # "clinic" too: a superuser viewing all clinics gets the clinic column.
    list_select_related = ("patient", "service", "professional", "room", "clinic")
    list_per_page = 100
    date_hierarchy = "start"
    search_fields = ("patient__search_name",)  # widened in get_search_results (CPF)
    search_help_text = _("Search by the patient's name or CPF.")
    autocomplete_fields = ("patient",)
    actions = (
        _status_action("confirm", _("Confirm selected appointments")),
        _status_action("check_in", _("Check in selected appointments")),
        _status_action("start", _("Start selected appointments")),
        _status_action("complete", _("Complete selected appointments")),
        _status_action("no_show", _("Mark selected appointments as no-show")),
        "cancel_selected",
    )
    add_fieldsets = (
        (None, {"fields": ("patient", "service", "professional", "room", "start")}),
        (_("Notes"), {"fields": ("notes", "internal_notes")}),
    )
    fieldsets = (
        (
            _("Appointment"),
            {
                "fields": (
                    "clinic",
                    "patient",
                    "service",
                    "professional",
                    "room",
                    "when",
                    "status_display",
                    "price",
                )
            },
        ),
        (_("Notes"), {"fields": ("notes", "internal_notes")}),
        (
            _("History"),
            {
                "fields": (
                    ("booked_via", "booked_by", "created_at"),
                    ("confirmed_via", "confirmed_by", "confirmed_at"),
                    "arrived_at",
                    "started_at",
                    "completed_at",
                    "no_show_at",
                    ("cancelled_via", "cancelled_by", "cancelled_at"),
                    ("cancellation_reason", "late_cancellation"),
                    ("replaces_link", "replaced_by_link"),
                    "series",
                )
            },
        ),
    )
    change_readonly_fields = (
        "clinic",
        "patient",
        "service",
        "professional",
        "room",
        "when",
        "status_display",
        "price",
        "booked_via",
        "booked_by",
        "created_at",
        "confirmed_via",
        "confirmed_by",
        "confirmed_at",
        "arrived_at",
        "started_at",
        "completed_at",
        "no_show_at",
        "cancelled_via",
        "cancelled_by",
        "cancelled_at",
        "cancellation_reason",
        "late_cancellation",
        "replaces_link",
        "replaced_by_link",
        "series",
    )

    # --- Display ----------------------------------------------------------------------------
    @admin.display(description=_("when"), ordering="start")
    def when(self, obj):
        start, end = timezone.localtime(obj.start), timezone.localtime(obj.end)
        return (
            f"{formats.date_format(start, 'SHORT_DATETIME_FORMAT')}–"
            f"{formats.time_format(end, 'TIME_FORMAT')}"
        )

    @admin.display(description=_("patient"), ordering="patient__full_name")
    def patient_name(self, obj):
        return obj.patient.display_name

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return format_html(
            '<span class="cuidar-status cuidar-status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("rescheduled from"))
    def replaces_link(self, obj):
        return self._link(obj.replaces)

    @admin.display(description=_("rescheduled to"))
    def replaced_by_link(self, obj):
        return self._link(getattr(obj, "replaced_by", None))

    def _link(self, other):
        if other is None:
            return "—"
        url = reverse("admin:scheduling_appointment_change", args=[other.pk])
        return format_html('<a href="{}">{}</a>', url, self.when(other))

    # --- Querysets and search ---------------------------------------------------------------
    def get_search_results(self, request, queryset, search_term):
        # The patient's name without accents, or the CPF typed any way (clinic.selectors).
        if not search_term.strip():
            return queryset, False
        patients = patient_search(
            clinic=current_clinic(request),
            term=search_term,
            queryset=scope_queryset(request, Patient.objects.all()),
        )
        return queryset.filter(patient__in=patients.values("pk")), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- Forms ------------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly_fields if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AppointmentBookForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form.clinic = current_clinic(request)
            form.user = request.user
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        clinic = current_clinic(request)
        if db_field.name in ("service", "professional", "room") and clinic is not None:
            model = db_field.related_model
            kwargs["queryset"] = model.objects.for_clinic(clinic).filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        """Prefilled from the agenda: ``?professional=&room=&start=YYYY-MM-DDTHH:MM`` (the
        clinic's local time)."""
        initial = {
            name: request.GET[name]
            for name in ("patient", "service", "professional", "room")
            if request.GET.get(name, "").isdigit()
        }
        try:
            start = datetime.fromisoformat(request.GET.get("start", ""))
        except ValueError:
            start = None
        if start is not None:
            initial["start"] = timezone.make_aware(start) if timezone.is_naive(start) else start
        return initial

    # --- Saving: booking happened in the form; changes are notes only -------------------------
    def save_form(self, request, form, change):
        if not change:
            return form.booked
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if not change:
            return  # booked by appointment_book while the form validated
        # Only the notes are editable here: no status, time or people change, so no event.
        services.appointment_notes_update(
            appointment=obj, notes=obj.notes, internal_notes=obj.internal_notes
        )

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def response_add(self, request, obj, post_url_continue=None):
        if any(k in request.POST for k in ("_continue", "_addanother", IS_POPUP_VAR)):
            return super().response_add(request, obj, post_url_continue)
        # Back to the agenda of the booked day, where the new appointment shows.
        zone = clinic_zone(obj.clinic)
        self.message_user(
            request,
            gettext("Booked: %(appointment)s, %(service)s with %(professional)s.")
            % {
                "appointment": local_label(obj, zone),
                "service": obj.service,
                "professional": obj.professional,
            },
            messages.SUCCESS,
        )
        return HttpResponseRedirect(pages.day_url(self, obj.start.astimezone(zone).date()))

    def has_delete_permission(self, request, obj=None):
        return False  # appointments are cancelled, never deleted

    # --- Views in the clinic's time zone ----------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        zone = clinic_zone(current_clinic(request))
        extra = {
            "agenda_url": reverse("admin:scheduling_agenda", current_app=self.admin_site.name),
            "checkin_url": reverse("admin:scheduling_checkin", current_app=self.admin_site.name),
            "can_check_in": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return pages.render_in_zone(zone, super().changelist_view, request, extra)

    def add_view(self, request, form_url="", extra_context=None):
        clinic = current_clinic(request)
        if clinic is None:
            messages.warning(request, gettext("Choose a clinic at the top of the page first."))
            return HttpResponseRedirect(
                reverse("admin:scheduling_appointment_changelist", current_app=self.admin_site.name)
            )
        extra = {"services_by_professional": services_by_professional(clinic)}
        return super().add_view(request, form_url, {**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))  # another clinic's: 404
        zone = clinic_zone(obj.clinic)
        extra = {"subtitle": local_label(obj, zone), **(extra_context or {})}
        if self.has_change_permission(request, obj):
            extra.update(
                status_actions=actions_allowed(obj),
                can_reschedule=can_reschedule(obj),
            )
        extra["agenda_url"] = pages.day_url(self, obj.start.astimezone(zone).date())
        response = pages.render_in_zone(
            zone, super().change_view, request, object_id, form_url, extra
        )
        if request.method == "GET" and response.status_code == 200:
            # The page shows the appointment's notes and internal notes.
            audit_staff_view(request=request, obj=obj, patient=obj.patient_id)
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None:
            zone = clinic_zone(current_clinic(request))
            return pages.render_in_zone(
                zone, super().changeform_view, request, object_id, form_url, extra_context
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    # --- Cancel, with a reason ----------------------------------------------------------------
    @admin.action(description=_("Cancel selected appointments…"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        """Asks for the reason first (an intermediate page), then cancels each one."""
        if request.POST.get("post") == "yes":
            reason = request.POST.get("reason", "").strip()
            _run_status_action(self, request, queryset, "cancel", reason=reason)
            return None
        zone = clinic_zone(current_clinic(request))
        rows = queryset.select_related("patient", "service", "professional")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Cancel appointments"),
            "opts": self.opts,
            "queryset": rows,
            "labels": [local_label(a, zone) for a in rows],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "cancel_selected",
        }
        return TemplateResponse(request, "scheduling/admin/cancel_selected.html", context)

    # --- The agenda and check-in pages ------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("agenda/", view(self.agenda_day_view), name="scheduling_agenda"),
            path("agenda/week/", view(self.agenda_week_view), name="scheduling_agenda_week"),
            path("checkin/", view(self.checkin_view), name="scheduling_checkin"),
            path(
                "<int:object_id>/status/<slug:action>/",
                view(self.transition_view),
                name="scheduling_appointment_transition",
            ),
            path(
                "<int:object_id>/reschedule/",
                view(self.reschedule_view),
                name="scheduling_appointment_reschedule",
            ),
            *super().get_urls(),
        ]

    def agenda_day_view(self, request):
        return pages.day_view(self, request)

    def agenda_week_view(self, request):
        return pages.week_view(self, request)

    def transition_view(self, request, object_id, action):
        return pages.transition_view(self, request, object_id, action)

    def reschedule_view(self, request, object_id):
        return pages.reschedule_view(self, request, object_id)

    def checkin_view(self, request):
        return checkin.checkin_view(self, request)
