"""The professional's day: today's appointments of the signed-in professional, with the
arrival status and waiting time; one click starts the encounter of an arrived patient
(``services.appointment_start_encounter``: the appointment goes ``in_progress`` and the
clinical record's encounter opens); the drafts left unsigned over 24 h; a walk-in reaches
the record from the patient's clinical page. The first page of a clinical role: the
dashboard leads to it in one click."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.errors import ApplicationError
from clinic.kernel.tenancy import current_clinic
from clinic.kernel.timezones import clinic_zone
from clinic.records.access import professional_of
from clinic.records.models import Encounter
from clinic.records.selectors import pending_drafts

from ..agenda import appointments_for_agenda
from ..choices import AppointmentStatus as S
from ..models import Appointment
from ..services import appointment_start_encounter


def professional_day(*, clinic, professional, now: datetime | None = None) -> dict:
    """Today's appointments of ``professional`` with their encounter, in three queries."""
    zone = clinic_zone(clinic)
    now = now or timezone.now()
    today = timezone.localdate(now, zone)
    start = datetime.combine(today, time.min, tzinfo=zone)
    appointments = list(
        appointments_for_agenda(clinic=clinic, start=start, end=start + timedelta(days=1))
        .filter(professional=professional)
        .exclude(status__in=[S.CANCELLED, S.RESCHEDULED])
    )
    encounters = dict(
        Encounter.objects.filter(appointment__in=appointments).values_list("appointment_id", "pk")
    )
    rows = []
    for a in appointments:
        waiting = None
        if a.status == S.ARRIVED and a.arrived_at:
            waiting = max(0, int((now - a.arrived_at).total_seconds() // 60))
        rows.append(
            {
                "appointment": a,
                "start": a.start.astimezone(zone),
                "waiting": waiting,
                "encounter_id": encounters.get(a.pk),
                "can_start": a.status in (S.ARRIVED, S.IN_PROGRESS),
            }
        )
    return {"today": today, "rows": rows}


def _professional_or_404(request):
    clinic = current_clinic(request)
    professional = professional_of(request.user, clinic)
    if professional is None:
        raise Http404(_("You have no professional profile in this clinic."))
    return clinic, professional


def my_day_view(model_admin, request):
    clinic, professional = _professional_or_404(request)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("My day"),
        "professional": professional,
        "day": professional_day(clinic=clinic, professional=professional),
        "pending": list(pending_drafts(professional=professional)),
    }
    return TemplateResponse(request, "scheduling/admin/my_day.html", context)


def start_encounter_view(model_admin, request, object_id: int):
    """One click on an arrived patient: the appointment starts, the encounter opens."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    clinic, professional = _professional_or_404(request)
    appointment = get_object_or_404(
        Appointment.objects.for_clinic(clinic).select_related("patient", "service", "professional"),
        pk=object_id,
        professional=professional,
    )
    try:
        encounter = appointment_start_encounter(appointment=appointment, by=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(reverse("admin:scheduling_my_day"))
    return HttpResponseRedirect(reverse("admin:records_encounter_record", args=[encounter.pk]))


def my_day_urls(admin_site) -> list:
    def wrap(view):
        def wrapped(request, *args, **kwargs):
            return view(admin_site._registry[Appointment], request, *args, **kwargs)

        return admin_site.admin_view(wrapped)

    return [
        path("scheduling/my-day/", wrap(my_day_view), name="scheduling_my_day"),
        path(
            "scheduling/my-day/<int:object_id>/start/",
            wrap(start_encounter_view),
            name="scheduling_my_day_start",
        ),
    ]
