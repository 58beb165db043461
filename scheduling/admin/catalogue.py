"""Admin of the agenda's catalogue: services, working hours, time off, clinic closures, the
waitlist and professionals' calendar feeds.

Every ModelAdmin here is a :class:`~clinic.admin.base.ClinicScopedAdmin` (rows, FK and M2M
choices and object URLs limited to the current clinic). Related-field filters use
``RelatedOnlyFieldListFilter``: its choices come from the scoped queryset, whereas the plain
related filter would list every clinic's professionals and rooms.
"""

from __future__ import annotations

from contextlib import contextmanager
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from clinic.admin.base import ClinicScopedAdmin, ClinicScopedInline
from clinic.kernel.tenancy import current_clinic
from clinic.kernel.timezones import clinic_zone as kernel_clinic_zone

from .. import services
from ..models import (
    CalendarFeed,
    ClinicClosure,
    Service,
    TimeOff,
    WaitlistEntry,
    WaitlistOffer,
    WorkingHours,
)

RelatedOnly = admin.RelatedOnlyFieldListFilter


# --- Shared pieces --------------------------------------------------------------------------
def clinic_zone(request) -> ZoneInfo | None:
    """The current clinic's time zone; ``None`` (the project default) for a superuser
    viewing all clinics."""
    clinic = current_clinic(request)
    return kernel_clinic_zone(clinic) if clinic is not None else None


@contextmanager
def clinic_time(request):
    """Read and show datetimes in the clinic's time zone while a view runs."""
    with timezone.override(clinic_zone(request)):
        yield


def _rendered(response):
    # Admin views return lazy TemplateResponses: render them while the clinic's time zone is
    # still active, or the dates would be shown in the project's default zone.
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    return response


class ClinicTimeZoneMixin:
    """Changelist and change form of a ModelAdmin in the clinic's time zone."""

    def changelist_view(self, request, extra_context=None):
        with clinic_time(request):
            return _rendered(super().changelist_view(request, extra_context))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with clinic_time(request):
            return _rendered(super().changeform_view(request, object_id, form_url, extra_context))


class SameClinicForm(forms.ModelForm):
    """Refuses related rows of another clinic than the row's.

    Staff never see such choices (the admin scopes them); a superuser working in "all
    clinics" chooses the clinic in the form, so related rows must be checked against it.
    """

    def clean(self):
        cleaned = super().clean()
        if "clinic" not in self.fields or not cleaned.get("clinic"):
            return cleaned
        clinic_id = cleaned["clinic"].pk
        for name, value in list(cleaned.items()):
            if name == "clinic" or value is None:
                continue
            if isinstance(value, models.QuerySet):
                rows = list(value)
            elif isinstance(value, models.Model):
                rows = [value]
            else:
                continue
            if any(getattr(row, "clinic_id", clinic_id) != clinic_id for row in rows):
                self.add_error(name, gettext("Choose among the chosen clinic's own records."))
        return cleaned


class CatalogueAdmin(ClinicScopedAdmin):
    """ClinicScopedAdmin whose changelists also join the clinic when a superuser viewing all
    clinics gets the extra "clinic" column (constant queries in that view too)."""

    def get_list_select_related(self, request):
        related = super().get_list_select_related(request)
        if related and related is not True and not self._clinic_is_implicit(request):
            return (*related, "clinic")
        return related


def _date(value) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _validity(valid_from, valid_until) -> str:
    if valid_from and valid_until:
        return f"{_date(valid_from)} – {_date(valid_until)}"
    if valid_from:
        return gettext("from %(date)s") % {"date": _date(valid_from)}
    if valid_until:
        return gettext("until %(date)s") % {"date": _date(valid_until)}
    return gettext("always")


def _end_after_start(form, start_name: str, end_name: str, message) -> None:
    start, end = form.cleaned_data.get(start_name), form.cleaned_data.get(end_name)
    if start is not None and end is not None and start >= end:
        form.add_error(end_name, message)


# --- Services -------------------------------------------------------------------------------
@admin.register(Service)
class ServiceAdmin(CatalogueAdmin):
    form = SameClinicForm
    list_display = (
        "name",
        "category",
        "duration_display",
        "price_display",
        "online_bookable",
        "is_active",
    )
    list_filter = (
        "is_active",
        "category",
        "online_bookable",
        ("professionals", RelatedOnly),
    )
    search_fields = ("name",)
    filter_horizontal = ("professionals", "rooms")
    fieldsets = (
        (_("What"), {"fields": ("clinic", "name", "category", "price", "is_active")}),
        (
            # A context: Django's own "Time" means a time of day ("Hora") and would win.
            pgettext_lazy("service fieldset", "Time"),
            {"fields": ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes")},
        ),
        (_("Who and where"), {"fields": ("professionals", "rooms")}),
        (
            _("Online booking"),
            {
                "fields": (
                    "online_bookable",
                    "min_notice_minutes",
                    "max_advance_days",
                    "cancellation_window_hours",
                )
            },
        ),
        (_("Preparation"), {"fields": ("preparation_instructions",)}),
    )

    @admin.display(description=_("duration"), ordering="duration_minutes")
    def duration_display(self, obj):
        text = gettext("%(minutes)d min") % {"minutes": obj.duration_minutes}
        buffers = obj.buffer_before_minutes + obj.buffer_after_minutes
        if buffers:
            text += " " + gettext("(+%(minutes)d min buffer)") % {"minutes": buffers}
        return text

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, obj):
        return "R$ " + formats.number_format(obj.price, 2, use_l10n=True, force_grouping=True)


# --- Working hours --------------------------------------------------------------------------
class WorkingHoursForm(SameClinicForm):
    def clean(self):
        cleaned = super().clean()
        _end_after_start(
            self, "start_time", "end_time", gettext("The interval must end after it starts.")
        )
        _validity_in_order(self)
        if not self.errors:
            self._refuse_overlaps(cleaned)
        return cleaned

    def _refuse_overlaps(self, cleaned):
        professional, weekday = cleaned.get("professional"), cleaned.get("weekday")
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if professional is None or weekday in (None, "") or start is None or end is None:
            return
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        others = WorkingHours.objects.filter(
            professional=professional, weekday=weekday, start_time__lt=end, end_time__gt=start
        )
        # Validity ranges are open-ended when a bound is empty.
        if valid_until is not None:
            others = others.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=valid_until))
        if valid_from is not None:
            others = others.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=valid_from))
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        clash = others.order_by("start_time").first()
        if clash is not None:
            raise forms.ValidationError(
                gettext(
                    "These hours overlap %(professional)s's hours on %(weekday)s, "
                    "%(start)s–%(end)s (valid %(validity)s). Change the times or the "
                    "validity dates."
                )
                % {
                    "professional": professional,
                    "weekday": clash.get_weekday_display(),
                    "start": f"{clash.start_time:%H:%M}",
                    "end": f"{clash.end_time:%H:%M}",
                    "validity": _validity(clash.valid_from, clash.valid_until),
                },
                code="overlap",
            )


def _validity_in_order(form) -> None:
    valid_from = form.cleaned_data.get("valid_from")
    valid_until = form.cleaned_data.get("valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        form.add_error("valid_until", gettext("'Valid until' must not be before 'valid from'."))


@admin.register(WorkingHours)
class WorkingHoursAdmin(CatalogueAdmin):
    form = WorkingHoursForm
    list_display = ("professional", "weekday", "start_time", "end_time", "room", "validity")
    list_filter = (("professional", RelatedOnly), "weekday", ("room", RelatedOnly))
    list_select_related = ("professional", "room")
    search_fields = ("professional__full_name",)
    fieldsets = (
        (None, {"fields": ("clinic", "professional", "weekday", "start_time", "end_time")}),
        (_("Where"), {"fields": ("room",)}),
        (
            _("Validity"),
            {
                "fields": ("valid_from", "valid_until"),
                "description": _("Leave empty for hours that always apply."),
            },
        ),
    )

    @admin.display(description=_("valid"))
    def validity(self, obj):
        return _validity(obj.valid_from, obj.valid_until)


# --- Time off and closures ------------------------------------------------------------------
class WhenFilter(admin.SimpleListFilter):
    """Current and upcoming rows by default: what the reception plans around."""

    title = _("when")
    parameter_name = "when"
    default = "upcoming"

    def lookups(self, request, model_admin):
        return (("upcoming", _("Current and upcoming")), ("past", _("Past")), ("all", _("All")))

    def value(self):
        return super().value() or self.default

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "upcoming":
            return queryset.filter(end__gt=timezone.now())
        if self.value() == "past":
            return queryset.filter(end__lte=timezone.now())
        return queryset


class TimeOffForm(SameClinicForm):
    # "Choose a professional or a room" is the model's own constraint message.
    def clean(self):
        cleaned = super().clean()
        _end_after_start(self, "start", "end", gettext("Time off must end after it starts."))
        return cleaned


@admin.register(TimeOff)
class TimeOffAdmin(ClinicTimeZoneMixin, CatalogueAdmin):
    form = TimeOffForm
    list_display = ("who", "start", "end", "reason")
    list_filter = (WhenFilter, ("professional", RelatedOnly), ("room", RelatedOnly))
    list_select_related = ("professional", "room")
    search_fields = ("reason", "professional__full_name", "room__name")
    ordering = ("start", "pk")  # the soonest first
    fieldsets = (
        (
            _("Who or what"),
            {
                "fields": ("clinic", "professional", "room"),
                "description": _("A professional, a room, or both."),
            },
        ),
        (
            _("When"),
            {
                "fields": ("start", "end"),
                "description": _("Dates and times in the clinic's time zone."),
            },
        ),
        (None, {"fields": ("reason",)}),
    )

    @admin.display(description=_("professional or room"))
    def who(self, obj):
        return " · ".join(str(x) for x in (obj.professional, obj.room) if x is not None)


class ClosureWhenFilter(WhenFilter):
    def queryset(self, request, queryset):
        zone = clinic_zone(request)
        today = timezone.localdate(timezone=zone) if zone else timezone.localdate()
        if self.value() == "upcoming":
            return queryset.filter(end_date__gte=today)
        if self.value() == "past":
            return queryset.filter(end_date__lt=today)
        return queryset


class ClinicClosureForm(SameClinicForm):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", gettext("The closure must end on or after its first day."))
        return cleaned


@admin.register(ClinicClosure)
class ClinicClosureAdmin(CatalogueAdmin):
    form = ClinicClosureForm
    list_display = ("reason", "start_date", "end_date", "days")
    list_filter = (ClosureWhenFilter,)
    search_fields = ("reason",)
    ordering = ("start_date", "pk")
    fields = ("clinic", "reason", "start_date", "end_date")

    @admin.display(description=_("days"))
    def days(self, obj):
        return (obj.end_date - obj.start_date).days + 1


# --- Waitlist -------------------------------------------------------------------------------
class WaitlistOfferInline(ClinicScopedInline, admin.TabularInline):
    """Slots offered to the entry: a history written by the waitlist service. The claim
    token is the patient's key and is never shown."""

    model = WaitlistOffer
    fk_name = "entry"
    extra = 0
    can_delete = False
    fields = ("start", "end", "professional", "room", "status", "expires_at", "created_at")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    verbose_name_plural = _("slots offered")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("professional", "room")

    def has_view_permission(self, request, obj=None):
        # Offers are part of the entry: whoever sees the entry sees them.
        return request.user.has_perm("scheduling.view_waitlistentry")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WaitlistEntryForm(SameClinicForm):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("earliest_date"), cleaned.get("latest_date")
        if start and end and end < start:
            self.add_error("latest_date", gettext("'Until' must not be before 'from'."))
        service, professional = cleaned.get("service"), cleaned.get("professional")
        if (
            service
            and professional
            and not service.professionals.filter(pk=professional.pk).exists()
        ):
            self.add_error(
                "professional",
                gettext("%(professional)s does not perform %(service)s.")
                % {"professional": professional, "service": service},
            )
        return cleaned


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ClinicTimeZoneMixin, CatalogueAdmin):
    form = WaitlistEntryForm
    list_display = (
        "patient",
        "service",
        "professional_display",
        "earliest_date",
        "latest_date",
        "period",
        "status",
        "created_at",
    )
    list_filter = (
        "status",
        ("service", RelatedOnly),
        ("professional", RelatedOnly),
        "period",
    )
    list_select_related = ("patient", "service", "professional")
    search_fields = ("patient__search_name", "service__name")
    autocomplete_fields = ("patient",)
    readonly_fields = ("status", "appointment", "created_at")
    inlines = (WaitlistOfferInline,)
    fieldsets = (
        (None, {"fields": ("clinic", "patient", "service", "professional")}),
        (_("When"), {"fields": ("earliest_date", "latest_date", "period")}),
        (None, {"fields": ("notes",)}),
        (_("Situation"), {"fields": ("status", "appointment", "created_at")}),
    )

    @admin.display(description=_("professional"), ordering="professional__full_name")
    def professional_display(self, obj):
        return obj.professional or gettext("any")

    def save_model(self, request, obj, form, change):
        if change:
            # Dates, period and notes are plain data; the status moves only through the
            # waitlist services (offer, claim, expiry).
            super().save_model(request, obj, form, change)
            return
        entry = services.waitlist_add(
            clinic=obj.clinic,
            patient=obj.patient,
            service=obj.service,
            professional=obj.professional,
            earliest_date=obj.earliest_date,
            latest_date=obj.latest_date,
            period=obj.period,
            notes=obj.notes,
        )
        obj.pk = entry.pk
        obj.created_at = entry.created_at
        obj._state.adding = False


# --- Calendar feeds -------------------------------------------------------------------------
def feed_url(request, feed: CalendarFeed) -> str:
    """The absolute private URL of a feed (the token is its only key)."""
    return request.build_absolute_uri(reverse("scheduling:calendar_feed", args=[feed.token]))


@admin.register(CalendarFeed)
class CalendarFeedAdmin(CatalogueAdmin):
    """Professionals' private ICS links (managers hand them out). The link is the only key
    to the feed: "issue a new link" revokes the old one at once."""

    list_display = ("professional", "created_at")
    list_select_related = ("professional",)
    search_fields = ("professional__full_name",)
    actions = ("rotate",)
    change_form_template = "scheduling/calendarfeed_change_form.html"

    def _url_column(self, request):
        # Display callables get no request, and the link must be absolute: one closure per
        # request, the same object each time the admin asks (fields vs readonly fields).
        column = getattr(request, "_cuidar_feed_link", None)
        if column is None:

            @admin.display(description=_("private calendar link"))
            def column(obj):
                url = feed_url(request, obj)
                return format_html('<a href="{}"><code>{}</code></a>', url, url)

            request._cuidar_feed_link = column
        return column

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        display.insert(1, self._url_column(request))
        return display

    def get_fields(self, request, obj=None):
        if obj is None:
            available = super().get_fields(request)
            return [f for f in ("clinic", "professional") if f in available]
        return ["professional", self._url_column(request), "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is editable; the link changes only through "rotate"
        feed = services.calendar_feed_rotate(professional=obj.professional)
        obj.pk, obj.token, obj.created_at = feed.pk, feed.token, feed.created_at
        obj._state.adding = False

    def response_change(self, request, obj):
        if "_rotate" in request.POST:
            services.calendar_feed_rotate(professional=obj.professional)
            self.message_user(
                request,
                gettext("A new link was issued; the old one no longer works."),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if change:
            # Nothing to edit on a feed: the only thing to do is to issue a new link.
            context.update(
                can_rotate=self.has_change_permission(request, obj),
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=_("Issue a new link (revokes the old one)"), permissions=["change"])
    def rotate(self, request, queryset):
        with transaction.atomic():
            feeds = list(queryset.select_related("professional"))
            for feed in feeds:
                services.calendar_feed_rotate(professional=feed.professional)
        self.message_user(
            request,
            gettext("New links issued for %(count)d professional(s); the old links no longer work.")
            % {"count": len(feeds)},
            messages.SUCCESS,
        )
