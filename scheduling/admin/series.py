"""The admin page "Book a series": a patient's recurring appointments, checked whole.

Step 1 asks who, what, when and how often; step 2 lists every date, free or with what
clashes, each with a "skip" box (ticked for the dates that clash); "Book" calls
``series_book`` with the skipped dates. Nothing is booked until then, and if a date was
taken in between, nothing is booked at all and the page says which.

The page belongs to the admin site; wire it in ``CuidarAdminSite.get_urls`` *before* the
admin's own URLs (their catch-all would swallow it)::

    from scheduling.admin.series import series_urls
    return [..., *series_urls(self), *super().get_urls()]

It is then ``reverse("admin:scheduling_series")`` → ``/admin/scheduling/series/``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.contrib import messages
from django.contrib.admin.widgets import AdminDateWidget, AdminSplitDateTime, AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient, Professional, Room

from .. import services
from ..choices import Channel
from ..exceptions import SchedulingError, SeriesClash
from ..models import Appointment, Service
from .catalogue import clinic_time

TEMPLATE = "scheduling/series.html"

CONFLICT_LABELS = {
    "professional": _("the professional is busy"),
    "room": _("the room is taken"),
    "patient": _("the patient already has an appointment then"),
    "hours": _("outside the available hours"),
}


def conflict_labels(conflicts) -> list[str]:
    return [str(CONFLICT_LABELS.get(name, name)) for name in conflicts]


class SeriesForm(forms.Form):
    """Step 1. Every choice is limited to the clinic; times are in the clinic's zone (the
    view activates it)."""

    first_start = forms.SplitDateTimeField(
        label=_("first appointment"),
        widget=AdminSplitDateTime,
        help_text=_("Date and time in the clinic's time zone."),
    )
    interval_weeks = forms.IntegerField(
        label=_("every N weeks"), min_value=1, max_value=12, initial=1
    )
    occurrences = forms.IntegerField(
        label=_("number of appointments"),
        min_value=1,
        max_value=services.MAX_SERIES_OCCURRENCES,
        required=False,
    )
    until = forms.DateField(
        label=_("or until"),
        widget=AdminDateWidget,
        required=False,
        help_text=_("Give the number of appointments or the last date."),
    )

    def __init__(self, *args, clinic, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        patient_field = Appointment._meta.get_field("patient")
        # Fields declared here, in the order a receptionist fills them in.
        head = {
            "patient": forms.ModelChoiceField(
                label=_("patient"),
                queryset=Patient.objects.for_clinic(clinic),
                # Searches through the patient admin (scoped to the clinic, CPF or name).
                widget=AutocompleteSelect(patient_field, admin_site),
            ),
            "service": forms.ModelChoiceField(
                label=_("service"),
                queryset=Service.objects.for_clinic(clinic).filter(is_active=True),
            ),
            "professional": forms.ModelChoiceField(
                label=_("professional"),
                queryset=Professional.objects.for_clinic(clinic).filter(is_active=True),
            ),
            "room": forms.ModelChoiceField(
                label=_("room"),
                queryset=Room.objects.for_clinic(clinic).filter(is_active=True),
                required=False,
                help_text=_("Leave empty to use any free room of the service."),
            ),
        }
        self.fields = {**head, **self.fields}

    def clean(self):
        cleaned = super().clean()
        occurrences, until = cleaned.get("occurrences"), cleaned.get("until")
        no_end = not occurrences and not until
        if no_end and not self.has_error("occurrences") and not self.has_error("until"):
            raise forms.ValidationError(
                gettext("Say how many appointments, or until which date."), code="no_end"
            )
        if occurrences and until:
            self.add_error(
                "until", gettext("Give the number of appointments or the last date, not both.")
            )
        first_start = cleaned.get("first_start")
        if first_start and until and until < timezone.localtime(first_start).date():
            self.add_error("until", gettext("The last date is before the first appointment."))
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
        room = cleaned.get("room")
        if service and room:
            rooms = service.rooms.all()
            if rooms.exists() and not rooms.filter(pk=room.pk).exists():
                self.add_error(
                    "room",
                    gettext("%(service)s cannot take place in %(room)s.")
                    % {"service": service, "room": room},
                )
        return cleaned

    def series_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "clinic": self.clinic,
            "patient": data["patient"],
            "professional": data["professional"],
            "service": data["service"],
            "first_start": data["first_start"],
            "interval_weeks": data["interval_weeks"],
            "occurrences": data["occurrences"],
            "until": data["until"],
            "room": data["room"],
        }


def _parse_skip(values) -> set[datetime]:
    """The dates ticked "skip" (ISO datetimes in UTC); anything else is ignored."""
    skip = set()
    for value in values:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            continue
        if timezone.is_aware(moment):
            skip.add(moment)
    return skip


def _rows(plan, *, skip: set[datetime] | None, clashing: set[datetime] = frozenset()):
    """Table rows of step 2. With no explicit choice yet, the dates that clash are ticked."""
    rows = []
    for occurrence in plan:
        value = occurrence.start.astimezone(UTC).isoformat()
        rows.append(
            {
                "start": occurrence.start,
                "end": occurrence.end,
                "free": occurrence.free,
                "conflicts": conflict_labels(occurrence.conflicts),
                "value": value,
                "skip": (not occurrence.free) if skip is None else occurrence.start in skip,
                "clashed": occurrence.start in clashing,
            }
        )
    return rows


def _day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT")


def _done_url() -> str:
    try:
        return reverse("admin:scheduling_appointment_changelist")
    except NoReverseMatch:
        return reverse("admin:index")


def series_view(request, *, admin_site):
    """Both steps of "Book a series" (see the module docstring)."""
    if not request.user.has_perm("scheduling.add_appointment"):
        raise PermissionDenied
    clinic = current_clinic(request)
    context = {
        **admin_site.each_context(request),
        "title": gettext("Book a series"),
        "clinic": clinic,
        "cancel_url": _done_url(),
        "step": 1,
    }
    if clinic is None:
        # A superuser viewing all clinics: a series belongs to one clinic.
        return render(request, TEMPLATE, context)

    with clinic_time(request):
        if request.method != "POST":
            initial = {
                name: request.GET[name]
                for name in ("patient", "service", "professional", "room")
                if request.GET.get(name, "").isdigit()
            }
            form = SeriesForm(initial=initial, clinic=clinic, admin_site=admin_site)
            return render(request, TEMPLATE, {**context, "form": form, "media": form.media})

        form = SeriesForm(request.POST, clinic=clinic, admin_site=admin_site)
        context.update(form=form, media=form.media)
        if "_back" in request.POST or not form.is_valid():
            return render(request, TEMPLATE, context)

        kwargs = form.series_kwargs()
        if "_confirm" in request.POST:
            skip = _parse_skip(request.POST.getlist("skip"))
            try:
                _series, booked = services.series_book(
                    **kwargs, skip=skip, booked_via=Channel.RECEPTION, booked_by=request.user
                )
            except SeriesClash as exc:
                clashing = {o.start for o in exc.clashes}
                context.update(
                    error=str(exc),
                    clashes=[
                        {"start": o.start, "conflicts": conflict_labels(o.conflicts)}
                        for o in exc.clashes
                    ],
                )
                return _step_two(request, context, form, kwargs, skip=skip, clashing=clashing)
            except SchedulingError as exc:
                context["error"] = str(exc)
                return _step_two(request, context, form, kwargs, skip=skip)
            booked_text = gettext(
                "Series booked for %(patient)s: %(count)d appointment(s), from %(first)s to "
                "%(last)s."
            ) % {
                "patient": kwargs["patient"],
                "count": len(booked),
                "first": _day(booked[0].start),
                "last": _day(booked[-1].start),
            }
            if skip:
                booked_text += " " + gettext("%(count)d date(s) skipped.") % {"count": len(skip)}
            messages.success(request, booked_text)
            return redirect(_done_url())

        return _step_two(request, context, form, kwargs, skip=None)


def _step_two(request, context, form, kwargs, *, skip, clashing=frozenset()):
    try:
        plan = services.series_plan(**kwargs)
    except SchedulingError as exc:
        form.add_error(None, str(exc))
        return render(request, TEMPLATE, context)
    rows = _rows(plan, skip=skip, clashing=clashing)
    context.update(
        step=2,
        rows=rows,
        free_count=sum(1 for r in rows if r["free"]),
        clash_count=sum(1 for r in rows if not r["free"]),
        patient=kwargs["patient"],
        service=kwargs["service"],
        professional=kwargs["professional"],
        room=kwargs["room"],
    )
    return render(request, TEMPLATE, context)


def series_urls(admin_site) -> list:
    """URL patterns of the page, to be included in the admin site's ``get_urls``."""

    def view(request):
        return series_view(request, admin_site=admin_site)

    return [path("scheduling/series/", admin_site.admin_view(view), name="scheduling_series")]
