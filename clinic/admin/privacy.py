"""Privacy (LGPD) in the admin: the patients' requests made on the portal, and the audit
trail. (Who is signed in to the portal is the portal's admin: ``clinic.portal.admin``.)

A deletion request is handled on its page: "Anonymise contact and marketing data and
close" ("Anonimizar dados de contato e marketing e concluir") runs
``privacy.patient_anonymise`` (what is erased and what is kept, and why, is written there);
"Refuse" closes it with the reason the patient will read. Requests are
never added or deleted here: patients make them, and they are the clinic's evidence.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import privacy
from ..models import AuditEntry, PrivacyRequest
from .base import ClinicScopedAdmin, ReadOnlyScopedAdmin, search_by_patient

REQUEST_FIELDS = (
    "patient",
    "kind",
    "status",
    "details",
    "requested_at",
    "handled_at",
    "handled_by",
    "resolution",
    "retention_basis",
)


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ClinicScopedAdmin):
    """Data exports (recorded when downloaded) and deletion requests to handle."""

    list_display = ("requested_at", "patient", "kind", "status", "handled_at", "handled_by")
    list_filter = ("kind", "status", "requested_at")
    list_select_related = ("patient", "handled_by")
    search_fields = ("patient__search_name",)  # widened in get_search_results (CPF)
    search_help_text = _("Search by the patient's name or CPF.")
    date_hierarchy = "requested_at"
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        return search_by_patient(request, queryset, search_term)

    def get_fields(self, request, obj=None):
        if obj is not None and self._can_handle(request, obj):
            return (*REQUEST_FIELDS, "handle")
        return REQUEST_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request):
        return False  # made by patients on the portal

    def has_delete_permission(self, request, obj=None):
        return False  # evidence of what was asked and done

    def _can_handle(self, request, obj) -> bool:
        return obj.status == PrivacyRequest.Status.OPEN and self.has_change_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Nothing is edited on a request: it is handled with the buttons.
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("handle the request"))
    def handle(self, obj):
        anonymise = ""
        if obj.kind == PrivacyRequest.Kind.DELETION:
            anonymise = format_html(
                '<p>{}</p><p><label><input type="checkbox" name="confirm" value="yes"> {}</label>'
                '</p><p><button type="submit" class="button default" formaction="{}" '
                "formnovalidate>{}</button></p>",
                gettext(
                    "Erases the patient's phone, e-mail, address and how they found the "
                    "clinic, revokes their marketing and data-sharing consents and ends their "
                    "portal sessions. Name, CPF, birth date and the clinical and financial "
                    "records are kept (Lei 13.787/2018: health records are kept for 20 years)."
                ),
                gettext("I understand this cannot be undone."),
                reverse("admin:clinic_privacyrequest_anonymise", args=[obj.pk]),
                gettext("Anonymise contact and marketing data and close"),
            )
        refuse = format_html(
            '<p><label for="id_refusal">{}</label><br><textarea id="id_refusal" '
            'name="refusal" rows="3" cols="60"></textarea></p><p><button type="submit" '
            'class="button" formaction="{}" formnovalidate>{}</button></p>',
            gettext("Or refuse it — the reason (the patient will read it):"),
            reverse("admin:clinic_privacyrequest_refuse", args=[obj.pk]),
            gettext("Refuse the request"),
        )
        return format_html("{}{}", anonymise, refuse)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/anonymise/",
                view(require_POST(self.anonymise_view)),
                name="clinic_privacyrequest_anonymise",
            ),
            path(
                "<int:pk>/refuse/",
                view(require_POST(self.refuse_view)),
                name="clinic_privacyrequest_refuse",
            ),
            *super().get_urls(),
        ]

    def _open_request(self, request, pk: int) -> PrivacyRequest:
        obj = self.get_object(request, str(pk))  # another clinic's request: 404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _back(self, obj) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:clinic_privacyrequest_change", args=[obj.pk]))

    def anonymise_view(self, request, pk: int):
        obj = self._open_request(request, pk)
        if obj.kind != PrivacyRequest.Kind.DELETION or obj.status != PrivacyRequest.Status.OPEN:
            self.message_user(
                request,
                gettext("Only an open deletion request can be carried out."),
                messages.ERROR,
            )
            return self._back(obj)
        if request.POST.get("confirm") != "yes":
            self.message_user(
                request,
                gettext("Tick “I understand this cannot be undone” to anonymise the data."),
                messages.ERROR,
            )
            return self._back(obj)
        privacy.patient_anonymise(patient=obj.patient, by=request.user)
        self.message_user(
            request,
            gettext("The patient's contact and marketing data were anonymised; request done."),
            messages.SUCCESS,
        )
        return self._back(obj)

    def refuse_view(self, request, pk: int):
        obj = self._open_request(request, pk)
        try:
            privacy.privacy_request_refuse(
                request=obj, by=request.user, resolution=request.POST.get("refusal", "")
            )
        except privacy.PrivacyError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, gettext("The request was refused."), messages.SUCCESS)
        return self._back(obj)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyScopedAdmin):
    """The clinic's audit trail: read-only, append-only (who read or changed whose data,
    when and from where). Search by the actor or a patient's id."""

    list_display = (
        "at",
        "actor_kind",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "ip",
    )
    list_filter = ("action", "actor_kind", "at")
    search_fields = ("actor_label", "=patient_id", "=object_id")
    search_help_text = _("Search by who acted, or by a patient's or an object's id.")
    date_hierarchy = "at"
    fields = (*list_display, "user_agent", "details")
    readonly_fields = fields
    list_per_page = 100
