"""The CRM in the admin (the staff app): leads with their timeline and the kanban board,
hot-lead alerts, segments with a live count and preview, campaigns with their metrics and
lift, marketing settings (the form's embed code, the technical director, quiet hours …),
marketing spend and the attribution report. Every write goes through ``services``."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from clinic.admin.base import ClinicScopedAdmin
from clinic.kernel.errors import ApplicationError
from clinic.kernel.tenancy import current_clinic

from . import selectors, services
from .choices import (
    OPEN_STAGES,
    CampaignStatus,
    InteractionChannel,
    InteractionKind,
    LeadStatus,
    LossReason,
    SegmentTarget,
    Temperature,
)
from .models import Campaign, Lead, LeadAlert, MarketingSettings, MarketingSpend, Segment

#: Cards shown per column of the board (the oldest beyond it are counted, not drawn).
BOARD_CARDS = 50


# --- Leads ----------------------------------------------------------------------------------
class LogForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What"),
        choices=[(InteractionKind.CALL, _("Call")), (InteractionKind.NOTE, _("Note"))],
    )
    summary = forms.CharField(
        label=_("Summary"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("No clinical details: this is the marketing record (LGPD art. 11)."),
    )


class MoveForm(forms.Form):
    to = forms.ChoiceField(label=_("Move to"), choices=LeadStatus.choices)
    loss_reason = forms.ChoiceField(
        label=_("Loss reason"), choices=[("", "—"), *LossReason.choices], required=False
    )


@admin.register(Lead)
class LeadAdmin(ClinicScopedAdmin):
    list_display = (
        "name",
        "status",
        "temperature",
        "score",
        "source",
        "owner",
        "last_interaction_at",
        "created_at",
    )
    list_filter = ("status", "temperature", "source", "interest_type", "owner")
    list_select_related = ("owner",)
    search_fields = ("name", "email", "phone")
    date_hierarchy = "created_at"
    change_form_template = "crm/admin/lead_change_form.html"
    change_list_template = "crm/admin/lead_change_list.html"
    fieldsets = (
        (None, {"fields": ("clinic", "name", "phone", "email", "interest_type", "message")}),
        (_("Funnel"), {"fields": ("status", "loss_reason", "owner", "score", "temperature")}),
        (
            _("Where they came from"),
            {
                "fields": (
                    "source",
                    "last_source",
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                    "utm_term",
                    "utm_content",
                    "gclid",
                    "fbclid",
                    "referrer",
                    "landing_page",
                    "referral_code",
                    "campaign",
                )
            },
        ),
        (
            _("Consent and patient"),
            {"fields": ("marketing_consent", "marketing_consent_at", "patient", "converted_at")},
        ),
    )
    readonly_fields = (
        "status",
        "loss_reason",
        "score",
        "temperature",
        "last_source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "gclid",
        "fbclid",
        "referrer",
        "landing_page",
        "referral_code",
        "campaign",
        "marketing_consent",
        "marketing_consent_at",
        "patient",
        "converted_at",
    )
    autocomplete_fields = ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            from django.contrib.auth import get_user_model

            clinic = current_clinic(request)
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(memberships__clinic=clinic, memberships__is_active=True)
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        """New leads (manual entry) go through capture: dedup, owner, event, timeline."""
        if change:
            super().save_model(request, obj, form, change)
            return
        lead, _created = services.lead_capture(
            clinic=obj.clinic,
            name=obj.name,
            phone=obj.phone,
            email=obj.email,
            message=obj.message,
            interest_type=obj.interest_type,
            source=obj.source or "manual",
            channel=InteractionChannel.SYSTEM,
            kind=InteractionKind.NOTE,
            by=request.user,
        )
        obj.pk = lead.pk
        if form.cleaned_data.get("owner"):
            Lead.objects.filter(pk=lead.pk).update(owner=form.cleaned_data["owner"])

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("board/", view(self.board_view), name="crm_lead_board"),
            path(
                "<path:object_id>/move/", view(require_POST(self.move_view)), name="crm_lead_move"
            ),
            path("<path:object_id>/log/", view(require_POST(self.log_view)), name="crm_lead_log"),
            path(
                "<path:object_id>/book/",
                view(require_POST(self.book_view)),
                name="crm_lead_book",
            ),
            *super().get_urls(),
        ]

    def _lead(self, request, object_id) -> Lead:
        lead = (
            self.get_queryset(request).filter(pk=object_id).first()
            if str(object_id).isdigit()
            else None
        )
        if lead is None:
            raise Http404
        return lead

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        lead = (
            self.get_queryset(request).filter(pk=object_id).first()
            if str(object_id).isdigit()
            else None
        )
        if lead is not None:
            extra.update(
                timeline=selectors.timeline(clinic=lead.clinic_id, lead=lead),
                log_form=LogForm(),
                move_form=MoveForm(initial={"to": lead.status}),
                lead=lead,
                may_change=self.has_change_permission(request, lead),
            )
        return super().change_view(request, object_id, form_url, extra)

    def move_view(self, request, object_id):
        """A card dropped on another column (or the keyboard's "Move to"): one transition."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        lead = self._lead(request, object_id)
        form = MoveForm(request.POST)
        wants_json = request.headers.get("Accept", "").startswith("application/json")
        error = ""
        if form.is_valid():
            try:
                services.lead_transition(
                    lead=lead,
                    to=form.cleaned_data["to"],
                    by=request.user,
                    loss_reason=form.cleaned_data["loss_reason"],
                )
            except ApplicationError as exc:
                error = str(exc.message)
        else:
            error = gettext("Choose a stage.")
        if wants_json:
            lead.refresh_from_db()
            counts = selectors.funnel_counts(clinic=lead.clinic_id)
            return JsonResponse(
                {"ok": not error, "error": error, "status": lead.status, "counts": counts},
                status=409 if error else 200,
            )
        if error:
            self.message_user(request, error, messages.ERROR)
        else:
            self.message_user(request, gettext("Lead moved."), messages.SUCCESS)
        return HttpResponseRedirect(request.POST.get("next") or reverse("admin:crm_lead_board"))

    def log_view(self, request, object_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        lead = self._lead(request, object_id)
        form = LogForm(request.POST)
        if form.is_valid():
            services.interaction_record(
                clinic=lead.clinic_id,
                lead=lead,
                kind=form.cleaned_data["kind"],
                channel=InteractionChannel.PHONE
                if form.cleaned_data["kind"] == InteractionKind.CALL
                else "",
                direction="outbound"
                if form.cleaned_data["kind"] == InteractionKind.CALL
                else "internal",
                handler="human",
                staff=request.user,
                summary=form.cleaned_data["summary"],
            )
            if lead.status == LeadStatus.NEW and form.cleaned_data["kind"] == InteractionKind.CALL:
                services.lead_transition(lead=lead, to=LeadStatus.CONTACTED, by=request.user)
            self.message_user(request, gettext("Recorded on the timeline."), messages.SUCCESS)
        else:
            self.message_user(request, gettext("Write what happened."), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:crm_lead_change", args=[lead.pk]))

    def book_view(self, request, object_id):
        """Register the lead as a patient (or find them) and open the booking form for them:
        the booking moves the lead to "scheduled", the visit converts it."""
        if not (
            self.has_change_permission(request)
            and request.user.has_perm("clinic.add_patient")
            and request.user.has_perm("scheduling.add_appointment")
        ):
            raise PermissionDenied
        lead = self._lead(request, object_id)
        try:
            patient = services.lead_patient_create(lead=lead, by=request.user)
        except ValidationError as exc:
            fields = getattr(exc, "error_dict", {})
            text = (
                gettext("Add the lead's phone number first: a patient needs one.")
                if "phone" in fields
                else "; ".join(exc.messages)
            )
            self.message_user(request, text, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:crm_lead_change", args=[lead.pk]))
        return HttpResponseRedirect(
            reverse("admin:scheduling_appointment_add") + f"?patient={patient.pk}"
        )

    def board_view(self, request):
        """The funnel as a kanban board: a column per stage with its count, cards that can
        be dragged to another column or moved with the keyboard (a "Move to" form on each
        card, which also works without JavaScript); filters by source, owner, temperature."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        clinic = current_clinic(request)
        leads = self.get_queryset(request).filter(anonymised_at__isnull=True)
        chosen = {
            "source": request.GET.get("source", ""),
            "owner": request.GET.get("owner", ""),
            "temperature": request.GET.get("temperature", ""),
        }
        if chosen["source"]:
            leads = leads.filter(source=chosen["source"])
        if chosen["owner"].isdigit():
            leads = leads.filter(owner_id=int(chosen["owner"]))
        if chosen["temperature"]:
            leads = leads.filter(temperature=chosen["temperature"])
        counts = selectors.funnel_counts(clinic=clinic, leads=leads)
        columns = []
        for stage in LeadStatus:
            cards = list(
                leads.filter(status=stage)
                .select_related("owner")
                .order_by("-score", "-pk")[:BOARD_CARDS]
            )
            columns.append({"stage": stage, "count": counts[stage.value], "cards": cards})
        from django.contrib.auth import get_user_model

        owners = (
            get_user_model()
            .objects.filter(memberships__clinic=clinic, memberships__is_active=True)
            .distinct()
            .order_by("username")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Leads: funnel"),
            "opts": Lead._meta,
            "columns": columns,
            "chosen": chosen,
            "sources": Lead._meta.get_field("source").choices,
            "temperatures": Temperature.choices,
            "owners": owners,
            "stages": LeadStatus.choices,
            "loss_reasons": LossReason.choices,
            "open_stages": OPEN_STAGES,
            "may_change": self.has_change_permission(request),
        }
        return TemplateResponse(request, "crm/admin/board.html", context)


@admin.register(LeadAlert)
class LeadAlertAdmin(ClinicScopedAdmin):
    """Hot leads shown to their owners (the admin's notification)."""

    list_display = ("lead", "user", "created_at", "sent_at", "read_at")
    list_filter = ("read_at",)
    list_select_related = ("lead", "user")
    actions = ("mark_read",)

    def get_queryset(self, request):
        alerts = super().get_queryset(request)
        if request.user.is_superuser or request.user.has_perm("crm.delete_leadalert"):
            return alerts
        return alerts.filter(user=request.user)  # reception sees its own

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark as read"), permissions=["view"])
    def mark_read(self, request, queryset):
        queryset.filter(read_at__isnull=True).update(read_at=timezone.now())


# --- Segments -------------------------------------------------------------------------------
class SegmentForm(forms.ModelForm):
    """The segment's filters as fields (stored as JSON in ``filters``)."""

    inactive_days = forms.IntegerField(
        label=_("Last attended visit over (days) ago"), min_value=1, required=False
    )
    age_min = forms.IntegerField(label=_("Age from"), min_value=0, max_value=120, required=False)
    age_max = forms.IntegerField(label=_("Age up to"), min_value=0, max_value=120, required=False)
    birthday_month = forms.IntegerField(
        label=_("Birthday month"), min_value=1, max_value=12, required=False
    )
    min_no_shows = forms.IntegerField(label=_("At least (no-shows)"), min_value=1, required=False)
    package_ending_days = forms.IntegerField(
        label=_("Package ending within (days)"), min_value=1, required=False
    )
    service_ids = forms.ModelMultipleChoiceField(
        label=_("Attended one of these services"), queryset=None, required=False
    )
    professional_ids = forms.ModelMultipleChoiceField(
        label=_("Seen by one of these professionals"), queryset=None, required=False
    )
    sources = forms.MultipleChoiceField(
        label=_("Source"),
        choices=Lead._meta.get_field("source").choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    FILTERS = (
        "inactive_days",
        "age_min",
        "age_max",
        "birthday_month",
        "min_no_shows",
        "package_ending_days",
        "service_ids",
        "professional_ids",
        "sources",
    )

    class Meta:
        model = Segment
        fields = ("clinic", "name", "target", "channel")

    def __init__(self, *args, clinic=None, **kwargs):
        super().__init__(*args, **kwargs)
        from clinic.models import Professional
        from scheduling.models import Service

        self.fields["service_ids"].queryset = Service.objects.for_clinic(clinic)
        self.fields["professional_ids"].queryset = Professional.objects.for_clinic(clinic)
        for name in self.FILTERS:
            value = (self.instance.filters or {}).get(name)
            if value not in (None, "", []):
                self.initial[name] = value
        self.fields["channel"].help_text = _(
            "Only people who agreed to marketing on this channel are counted: always."
        )

    def clean(self):
        data = super().clean()
        low, high = data.get("age_min"), data.get("age_max")
        if low is not None and high is not None and low > high:
            self.add_error("age_max", _("Must be at least the starting age."))
        return data

    def save(self, commit=True):
        filters = {}
        for name in self.FILTERS:
            value = self.cleaned_data.get(name)
            if hasattr(value, "values_list"):
                value = list(value.values_list("pk", flat=True))
            if value not in (None, "", []):
                filters[name] = value
        self.instance.filters = filters
        return super().save(commit)


@admin.register(Segment)
class SegmentAdmin(ClinicScopedAdmin):
    form = SegmentForm
    list_display = ("name", "target", "channel", "people", "created_at")
    readonly_fields = ("people", "preview")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        clinic = current_clinic(request)

        class Scoped(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, clinic=clinic, **kw)

        return Scoped

    def get_fields(self, request, obj=None):
        fields = [*super().get_fields(request, obj)]
        for name in SegmentForm.FILTERS:
            if name not in fields:
                fields.append(name)
        return [f for f in fields if f not in ("people", "preview")] + (
            ["people", "preview"] if obj else []
        )

    @admin.display(description=_("people now (with consent)"))
    def people(self, obj):
        return selectors.segment_count(segment=obj)

    @admin.display(description=_("preview"))
    def preview(self, obj):
        rows = selectors.segment_preview(segment=obj, limit=10)
        if not rows:
            return "—"
        name = "name" if obj.target == SegmentTarget.LEADS else "full_name"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((getattr(r, name),) for r in rows))
        )


# --- Campaigns ------------------------------------------------------------------------------
class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = (
            "clinic",
            "name",
            "kind",
            "segment",
            "template",
            "text",
            "holdout_percent",
            "starts_at",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from clinic.messaging.catalogue import CATALOGUE

        marketing = [
            (n, f"{n} — {s.label}") for n, s in CATALOGUE.items() if s.purpose == "marketing"
        ]
        self.fields["template"] = forms.ChoiceField(
            label=_("Message template"), choices=marketing, initial="promocao"
        )


@admin.register(Campaign)
class CampaignAdmin(ClinicScopedAdmin):
    form = CampaignForm
    list_display = ("name", "kind", "status", "segment", "started_at", "completed_at")
    list_filter = ("status", "kind")
    list_select_related = ("segment",)
    readonly_fields = ("status", "started_at", "completed_at", "results")
    actions = ("start_now", "schedule", "pause", "resume", "complete")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        conf = (
            services.marketing_settings(current_clinic(request))
            if current_clinic(request)
            else None
        )
        if conf and conf.director_line:
            initial.setdefault("text", f"\n{conf.director_line}")
        initial.setdefault("holdout_percent", conf.holdout_percent if conf else 10)
        return initial

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            return False  # what was sent stays as it was sent
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("results"))
    def results(self, obj):
        if obj.pk is None or obj.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            return "—"
        m = selectors.campaign_metrics(campaign=obj)
        rows = [
            (_("recipients"), m.targeted),
            (_("held out (control group)"), m.holdout),
            (_("skipped: no consent"), m.skipped_consent),
            (_("skipped: frequency cap"), m.skipped_cap),
            (_("sent"), m.sent),
            (_("delivered"), m.delivered),
            (_("read"), m.read),
            (_("replied"), m.replied),
            (_("opted out"), m.opted_out),
            (_("booked"), m.booked),
            (_("attended"), m.attended),
            (_("revenue (R$)"), m.revenue),
            (_("booked in the control group"), m.holdout_booked),
            (
                _("lift (booking rate, points)"),
                "—" if m.lift_points is None else f"{m.lift_points:+.2f}",
            ),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows),
        )

    def _each(self, request, queryset, act, done: str):
        count = 0
        for campaign in queryset:
            try:
                act(campaign)
                count += 1
            except ApplicationError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.ERROR)
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Start now"), permissions=["view"])
    def start_now(self, request, queryset):
        self._require(request)
        self._each(
            request,
            queryset,
            lambda c: services.campaign_start(campaign=c),
            gettext("%(count)s campaign(s) started."),
        )

    @admin.action(description=_("Schedule (at its start time)"), permissions=["view"])
    def schedule(self, request, queryset):
        self._require(request)
        self._each(
            request,
            queryset,
            lambda c: services.campaign_schedule(
                campaign=c, starts_at=c.starts_at or timezone.now()
            ),
            gettext("%(count)s campaign(s) scheduled."),
        )

    @admin.action(description=_("Pause"), permissions=["view"])
    def pause(self, request, queryset):
        self._require(request)
        self._each(
            request,
            queryset,
            lambda c: services.campaign_transition(campaign=c, to=CampaignStatus.PAUSED),
            gettext("%(count)s campaign(s) paused."),
        )

    @admin.action(description=_("Resume"), permissions=["view"])
    def resume(self, request, queryset):
        self._require(request)
        self._each(
            request,
            queryset,
            lambda c: services.campaign_transition(campaign=c, to=CampaignStatus.RUNNING),
            gettext("%(count)s campaign(s) resumed."),
        )

    @admin.action(description=_("Complete (stop sending)"), permissions=["view"])
    def complete(self, request, queryset):
        self._require(request)
        self._each(
            request,
            queryset,
            lambda c: services.campaign_transition(campaign=c, to=CampaignStatus.COMPLETED),
            gettext("%(count)s campaign(s) completed."),
        )

    def _require(self, request):
        if not request.user.has_perm("crm.change_campaign"):
            raise PermissionDenied


# --- Settings, spend, attribution -----------------------------------------------------------
@admin.register(MarketingSettings)
class MarketingSettingsAdmin(ClinicScopedAdmin):
    list_display = ("__str__", "technical_director_name", "technical_director_crm")
    readonly_fields = ("embed_code",)
    fieldsets = (
        (None, {"fields": ("clinic", "embed_code")}),
        (
            _("Medical advertising (CFM 2.336/2023)"),
            {"fields": ("technical_director_name", "technical_director_crm")},
        ),
        (
            _("Sending rules"),
            {
                "fields": (
                    "quiet_from",
                    "quiet_until",
                    "frequency_cap_days",
                    "holdout_percent",
                    "throughput_per_minute",
                )
            },
        ),
        (
            _("Reactivation (Mondays 10:00)"),
            {"fields": ("reactivation_enabled", "reactivation_days", "reactivation_text")},
        ),
        (_("Scoring"), {"fields": ("warm_from", "hot_from", "scoring_rules")}),
    )

    def has_add_permission(self, request):
        clinic = current_clinic(request)
        return (
            super().has_add_permission(request)
            and clinic is not None
            and not MarketingSettings.objects.filter(clinic=clinic).exists()
        )

    def changelist_view(self, request, extra_context=None):
        clinic = current_clinic(request)
        if clinic is not None and self.has_view_permission(request):
            services.marketing_settings(clinic)  # every clinic has its settings
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("how to embed the lead form"))
    def embed_code(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("crm:lead-form", args=[obj.form_key])
        return format_html(
            '<p>{}</p><pre>&lt;iframe src="https://&lt;cuidar&gt;{}" title="Contato" '
            'style="width:100%;min-height:720px;border:0"&gt;&lt;/iframe&gt;</pre><p>{}</p>'
            '<pre>&lt;script src="https://&lt;cuidar&gt;/static/crm/embed.js" '
            'data-form="https://&lt;cuidar&gt;{}" async&gt;&lt;/script&gt;</pre>',
            gettext("Without JavaScript (an iframe):"),
            url,
            gettext("Or with the script (passes the page's UTM parameters along):"),
            url,
        )


@admin.register(MarketingSpend)
class MarketingSpendAdmin(ClinicScopedAdmin):
    list_display = ("month", "source", "amount")
    list_filter = ("source",)
    change_list_template = "crm/admin/marketingspend_change_list.html"

    def get_urls(self):
        return [
            path(
                "attribution/",
                self.admin_site.admin_view(self.attribution_view),
                name="crm_marketingspend_attribution",
            ),
            *super().get_urls(),
        ]

    def attribution_view(self, request):
        """Per source and month: leads, conversion, bookings, revenue, spend, CAC."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        clinic = current_clinic(request)
        today = timezone.localdate()
        since = date(today.year - 1, today.month, 1)
        touch = "last" if request.GET.get("touch") == "last" else "first"
        figures = (
            selectors.attribution(clinic=clinic, since=since, until=today, touch=touch)
            if clinic
            else []
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Attribution and acquisition cost"),
            "opts": MarketingSpend._meta,
            "figures": figures,
            "touch": touch,
        }
        return TemplateResponse(request, "crm/admin/attribution.html", context)


def unread_alerts(request) -> int:
    """Hot-lead alerts waiting for the signed-in user (shown on the board)."""
    return (
        LeadAlert.objects.filter(
            clinic=current_clinic(request), user=request.user, read_at__isnull=True
        ).count()
        if request.user.is_authenticated
        else 0
    )
