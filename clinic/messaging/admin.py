"""Messaging in the admin: the clinic's message texts (with a live preview), the messages
sent and received, reception's "unanswered" inbox and each patient's message timeline."""

from __future__ import annotations

import json
from itertools import chain

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from clinic.admin.base import ClinicScopedAdmin, scope_queryset
from clinic.audit import audit_staff_view
from clinic.choices import ConsentPurpose, ContactChannel, MessageStatus
from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient

from . import catalogue
from .channels import MESSAGE_CHANNELS
from .models import MessageTemplate, OutboundMessage, ReceivedMessage
from .replies import message_reply, received_mark_answered

TIMELINE_LIMIT = 200


# --- Templates ------------------------------------------------------------------------------
def _preview(name: str, body: str, subject: str) -> dict:
    spec = catalogue.CATALOGUE.get(name)
    if spec is None:
        return {"errors": [gettext("Choose a template.")], "body": "", "subject": ""}
    errors = catalogue.template_errors(body, allowed=spec.allowed_variables)
    errors += catalogue.template_errors(subject, allowed=spec.allowed_variables)
    if errors:
        return {"errors": errors, "body": "", "subject": ""}
    context = catalogue.SAMPLE_CONTEXT
    return {
        "errors": [],
        "body": catalogue.render(body, context),
        "subject": catalogue.render(subject, context) if subject else "",
    }


class MessageTemplateForm(forms.ModelForm):
    name = forms.ChoiceField(label=_("template"), choices=catalogue.NAME_CHOICES)

    class Meta:
        model = MessageTemplate
        fields = (
            "clinic",
            "name",
            "is_active",
            "subject",
            "body",
            "meta_template_name",
            "meta_language",
        )
        widgets = {"body": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def clean(self):
        data = super().clean()
        spec = catalogue.CATALOGUE.get(data.get("name") or "")
        if spec is None:
            return data
        for field in ("body", "subject"):
            errors = catalogue.template_errors(
                data.get(field) or "", allowed=spec.allowed_variables
            )
            if errors:
                self.add_error(field, errors)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ClinicScopedAdmin):
    """A clinic's own texts. The catalogue (every named template, its purpose and Meta
    mapping, overridden or not) is shown above the list."""

    form = MessageTemplateForm
    list_display = ("name", "label", "purpose", "meta_name_display", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "body")
    readonly_fields = ("variables_help", "preview")
    change_form_template = "messaging/admin/messagetemplate_change_form.html"
    change_list_template = "messaging/admin/messagetemplate_change_list.html"
    fieldsets = (
        (None, {"fields": ("clinic", "name", "is_active")}),
        (_("Text"), {"fields": ("subject", "body", "variables_help", "preview")}),
        (_("WhatsApp (Meta)"), {"fields": ("meta_template_name", "meta_language")}),
    )

    @admin.display(description=_("label"))
    def label(self, obj):
        spec = catalogue.CATALOGUE.get(obj.name)
        return spec.label if spec else "—"

    @admin.display(description=_("purpose"))
    def purpose(self, obj):
        spec = catalogue.CATALOGUE.get(obj.name)
        return _purpose_label(spec.purpose) if spec else "—"

    @admin.display(description=_("Meta template"))
    def meta_name_display(self, obj):
        spec = catalogue.CATALOGUE.get(obj.name)
        return obj.meta_template_name or (spec.meta_name if spec else "") or "—"

    @admin.display(description=_("variables you may use"))
    def variables_help(self, obj):
        spec = catalogue.CATALOGUE.get(obj.name) if obj and obj.name else None
        if spec is None:
            return _("Choose a template and save to see its variables.")
        items = format_html_join(
            "",
            "<li><code>{{{{ {} }}}}</code> — {}</li>",
            ((name, catalogue.VARIABLE_HELP.get(name, "")) for name in spec.allowed_variables),
        )
        return format_html("<ul>{}</ul>", items)

    @admin.display(description=_("preview (sample data)"))
    def preview(self, obj):
        if not obj or not obj.name:
            return "—"
        result = _preview(obj.name, obj.body, obj.subject)
        text = "\n".join(result["errors"]) or result["body"]
        return format_html('<pre id="template-preview" class="template-preview">{}</pre>', text)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        spec = catalogue.CATALOGUE.get(request.GET.get("name", ""))
        if spec is not None:
            initial.setdefault("body", spec.body)
            initial.setdefault("subject", spec.subject)
            initial.setdefault("meta_template_name", spec.meta_name)
        return initial

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [
            path("preview/", preview, name="messaging_messagetemplate_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """The live preview: the text rendered with sample data, or why it cannot be."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        return JsonResponse(
            _preview(
                request.POST.get("name", ""),
                request.POST.get("body", ""),
                request.POST.get("subject", ""),
            )
        )

    def changelist_view(self, request, extra_context=None):
        clinic = current_clinic(request)
        overridden = set(MessageTemplate.objects.for_clinic(clinic).values_list("name", flat=True))
        rows = [
            {
                "spec": spec,
                "purpose": _purpose_label(spec.purpose),
                "overridden": spec.name in overridden,
            }
            for spec in catalogue.CATALOGUE.values()
        ]
        extra_context = {**(extra_context or {}), "catalogue": rows}
        return super().changelist_view(request, extra_context=extra_context)


def _purpose_label(purpose: str) -> str:
    return ConsentPurpose(purpose).label


# --- Messages sent and received -------------------------------------------------------------
class _ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def warn_uncertain(model_admin, request) -> None:
    """Tell reception how many messages may or may not have reached the patient (their
    send's outcome is unknown and they are never resent), with a link to the list."""
    if request.method != "GET":
        return
    uncertain = OutboundMessage.objects.filter(status=MessageStatus.UNCERTAIN)
    count = scope_queryset(request, uncertain).count()
    if not count:
        return
    url = reverse("admin:messaging_outboundmessage_changelist")
    model_admin.message_user(
        request,
        format_html(
            '{} <a href="{}?status__exact={}">{}</a>',
            ngettext(
                "%(count)d message may not have reached the patient: check with them.",
                "%(count)d messages may not have reached their patients: check with them.",
                count,
            )
            % {"count": count},
            url,
            MessageStatus.UNCERTAIN.value,
            gettext("See which"),
        ),
        messages.WARNING,
    )


@admin.register(OutboundMessage)
class OutboundMessageAdmin(_ReadOnly, ClinicScopedAdmin):
    """Every message sent (or not): on which channel, through which provider, and why.
    "Uncertain" ones (the send's outcome is unknown, never resent) are counted on top."""

    list_display = (
        "created_at",
        "patient",
        "template",
        "channel",
        "status",
        "provider",
    )
    list_filter = ("status", "channel", "purpose", "template", "created_at")
    list_select_related = ("patient",)
    search_fields = ("patient__search_name", "to_address", "idempotency_key")
    date_hierarchy = "created_at"
    list_per_page = 50
    readonly_fields = (
        "patient",
        "template",
        "purpose",
        "status",
        "channel",
        "to_address",
        "subject",
        "body",
        "provider",
        "provider_message_id",
        "attempts_display",
        "error",
        "idempotency_key",
        "in_reply_to",
        "sent_by",
        "created_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
    )
    fields = readonly_fields

    @admin.display(description=_("attempts"))
    def attempts_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.attempts, indent=2, ensure_ascii=False))

    def get_urls(self):
        # The patient's timeline, linked from the patient's page ("Messages"): it is
        # messaging's page, so it lives here; the patient admin decides who sees whom.
        view = self.admin_site.admin_view(self.patient_messages)
        return [
            path("patient/<int:pk>/", view, name="messaging_patient_messages"),
            *super().get_urls(),
        ]

    def patient_messages(self, request, pk):
        return patient_messages_view(self.admin_site.get_model_admin(Patient), request, pk)

    def changelist_view(self, request, extra_context=None):
        warn_uncertain(self, request)
        return super().changelist_view(request, extra_context)


class UnansweredFilter(admin.SimpleListFilter):
    title = _("inbox")
    parameter_name = "inbox"

    def lookups(self, request, model_admin):
        return (("unanswered", _("Unanswered")), ("answered", _("Answered or handled")))

    def queryset(self, request, queryset):
        if self.value() == "unanswered":
            return queryset.filter(needs_reply=True, answered_at__isnull=True)
        if self.value() == "answered":
            return queryset.exclude(needs_reply=True, answered_at__isnull=True)
        return queryset


@admin.register(ReceivedMessage)
class ReceivedMessageAdmin(_ReadOnly, ClinicScopedAdmin):
    """What patients wrote, and what the system did; "Unanswered" is reception's inbox."""

    list_display = (
        "received_at",
        "sender",
        "channel",
        "text_excerpt",
        "action",
        "unanswered",
        "timeline_link",
    )
    list_filter = (UnansweredFilter, "channel", "action", "received_at")
    list_select_related = ("patient",)
    search_fields = ("patient__search_name", "from_address", "text")
    date_hierarchy = "received_at"
    list_per_page = 50
    actions = ("mark_answered",)
    fields = (
        "patient",
        "channel",
        "from_address",
        "sender_name",
        "text",
        "received_at",
        "action",
        "needs_reply",
        "answered_at",
        "answered_by",
        "provider",
        "provider_message_id",
    )
    readonly_fields = fields

    @admin.display(description=_("from"), ordering="patient__full_name")
    def sender(self, obj):
        if obj.patient_id:
            return obj.patient.display_name
        return format_html("{} <small>({})</small>", obj.from_address, gettext("unknown"))

    @admin.display(description=_("text"))
    def text_excerpt(self, obj):
        return obj.text[:80] + ("…" if len(obj.text) > 80 else "")

    @admin.display(description=_("unanswered"), boolean=True)
    def unanswered(self, obj):
        return obj.is_unanswered

    @admin.display(description=_("timeline"))
    def timeline_link(self, obj):
        if not obj.patient_id:
            return "—"
        url = reverse("admin:messaging_patient_messages", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, gettext("Open"))

    def has_change_permission(self, request, obj=None):
        # "Mark as answered" is a change; the rows themselves are read-only (fields).
        return request.user.has_perm("messaging.change_receivedmessage")

    def changelist_view(self, request, extra_context=None):
        warn_uncertain(self, request)
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Mark as answered"), permissions=["change"])
    def mark_answered(self, request, queryset):
        count = received_mark_answered(messages=list(queryset), by=request.user)
        self.message_user(
            request,
            _("%(count)d message(s) marked as answered.") % {"count": count},
            messages.SUCCESS,
        )


# --- The patient's timeline -----------------------------------------------------------------
class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Message"), widget=forms.Textarea(attrs={"rows": 3}), max_length=1000
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        required=False,
        choices=[("", _("By the patient's preference and consent"))]
        + [(c.value, c.label) for c in MESSAGE_CHANNELS],
    )


def patient_messages_view(model_admin, request, pk):
    """Every message to and from one patient, newest first, with a reply box.
    ``model_admin`` is the patient's: its permissions and clinic scope apply."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    patient = model_admin.get_queryset(request).filter(pk=pk).first()
    if patient is None:
        raise Http404
    may_reply = request.user.has_perm("messaging.add_outboundmessage")
    form = ReplyForm(request.POST or None)
    if request.method == "POST":
        if not may_reply:
            raise PermissionDenied
        if form.is_valid():
            message = message_reply(
                patient=patient,
                text=form.cleaned_data["text"],
                channel=form.cleaned_data["channel"],
                by=request.user,
            )
            if message.status == MessageStatus.NOT_SENT:
                model_admin.message_user(request, message.error, messages.WARNING)
            else:
                model_admin.message_user(request, gettext("Message queued."), messages.SUCCESS)
            return HttpResponseRedirect(request.path)
    sent = OutboundMessage.objects.for_clinic(patient.clinic_id).filter(patient=patient)
    received = ReceivedMessage.objects.for_clinic(patient.clinic_id).filter(patient=patient)
    entries = sorted(
        chain(
            ({"out": True, "at": m.created_at, "m": m} for m in sent[:TIMELINE_LIMIT]),
            ({"out": False, "at": m.received_at, "m": m} for m in received[:TIMELINE_LIMIT]),
        ),
        key=lambda e: e["at"],
        reverse=True,
    )[:TIMELINE_LIMIT]
    audit_staff_view(request=request, obj=patient, page="messages")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Messages: %(patient)s") % {"patient": patient.display_name},
        "patient": patient,
        "entries": entries,
        "form": form,
        "may_reply": may_reply,
        "opts": Patient._meta,
        "channels": dict(ContactChannel.choices),
    }
    return TemplateResponse(request, "messaging/admin/patient_messages.html", context)


# The assistant's conversations and settings, and its knowledge base (issue 24), in their
# own modules.
from . import admin_knowledge  # noqa: E402, F401
from .assistant import admin as assistant_admin  # noqa: E402, F401
