"""The reception's check-in page in the admin.

The patient shows the QR code of their check-in token; a USB scanner types it (and Enter)
into the code field, and ``appointment_check_in_by_token`` checks in today's appointment.
An unknown code and another clinic's code get the same "not found": a scan reveals
nothing. Reception can also search a patient by name or CPF, or pick from the list of
patients expected today, and check one in with one click (``appointment_check_in``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.selectors import patient_search

from .. import services
from ..agenda import local_label
from ..choices import TRANSITIONS, AppointmentStatus
from ..exceptions import NoAppointmentToday, SchedulingError
from . import agenda as pages

S = AppointmentStatus
MAX_PATIENTS = 20


def token_from_scan(text: str) -> str:
    """The token in what the scanner typed: the bare token, or the last part of a URL
    (a QR code may hold a link such as ``https://…/checkin/<token>``)."""
    text = (text or "").strip()
    if "token=" in text:
        text = text.split("token=", 1)[1].split("&", 1)[0]
    elif "/" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return text.strip()


def checkin_view(model_admin, request):
    """GET: the scan field, the search and today's expected patients. POST ``code`` (a
    scan) or ``appointment`` (a click): check in, then back here (ready for the next)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    clinic, redirect = pages.clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    if request.method == "POST":
        return _checkin_post(model_admin, request, clinic, zone)
    return pages.render_in_zone(zone, _checkin_page, model_admin, request, clinic, zone)


def _here(model_admin, request) -> str:
    url = reverse("admin:scheduling_checkin", current_app=model_admin.admin_site.name)
    term = request.POST.get("q", "").strip()
    return f"{url}?{urlencode({'q': term})}" if term else url


def _done_message(appointment, zone) -> str:
    return _("%(patient)s checked in for %(time)s: %(service)s with %(professional)s.") % {
        "patient": appointment.patient.display_name,
        "time": formats.time_format(appointment.start.astimezone(zone), "TIME_FORMAT"),
        "service": appointment.service,
        "professional": appointment.professional,
    }


def _checkin_post(model_admin, request, clinic, zone):
    if "code" in request.POST:
        token = token_from_scan(request.POST["code"])
        try:
            if not token:
                raise NoAppointmentToday(_("No appointment today for this code."))
            appointment = services.appointment_check_in_by_token(
                clinic=clinic, token=token, by=request.user
            )
        except SchedulingError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _done_message(appointment, zone))
        return HttpResponseRedirect(_here(model_admin, request))

    appointment = (
        model_admin.get_queryset(request)
        .select_related("patient", "service", "professional")
        .filter(pk=request.POST.get("appointment") or None)
        .first()
    )
    if appointment is None:  # another clinic's, or none: the same 404
        raise Http404
    try:
        services.appointment_check_in(appointment=appointment, by=request.user)
    except SchedulingError as exc:
        messages.error(
            request,
            _("%(appointment)s was not changed: %(reason)s")
            % {"appointment": local_label(appointment, zone), "reason": exc.message},
        )
    else:
        messages.success(request, _done_message(appointment, zone))
    return HttpResponseRedirect(_here(model_admin, request))


def _checkin_page(model_admin, request, clinic, zone):
    today = services.appointments_today(clinic=clinic).select_related(
        "patient", "service", "professional", "room"
    )
    term = request.GET.get("q", "").strip()
    patients = []
    if term:
        patients = list(
            patient_search(clinic=clinic, term=term)
            .prefetch_related(
                Prefetch("appointments", queryset=today.order_by("start"), to_attr="today")
            )
            .order_by("full_name")[:MAX_PATIENTS]
        )
        for patient in patients:
            patient.today = [_row(a, zone) for a in patient.today]
    expected = [
        _row(a, zone) for a in today.filter(status__in=[S.SCHEDULED, S.CONFIRMED]).order_by("start")
    ]
    context = pages.page_context(
        model_admin,
        request,
        title=_("Check-in"),
        clinic=clinic,
        term=term,
        patients=patients,
        expected=expected,
        max_patients=MAX_PATIENTS,
        agenda_url=pages.day_url(model_admin, timezone.localdate(timezone=zone)),
    )
    return TemplateResponse(request, "scheduling/admin/checkin.html", context)


def _row(appointment, zone) -> dict:
    return {
        "appointment": appointment,
        "start": appointment.start.astimezone(zone),
        "can_check_in": S.ARRIVED in TRANSITIONS[appointment.status],
    }
