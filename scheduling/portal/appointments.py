"""The patient's appointments: the list, one appointment, confirm, cancel, reschedule
and its ``.ics`` file."""

from __future__ import annotations

from datetime import UTC

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.kernel.timezones import clinic_zone
from clinic.models import Room
from clinic.portal.sessions import portal_view, safe_next

from .. import feeds, links, selectors, services
from ..availability import Slot
from ..choices import Channel
from ..exceptions import CancellationWindowClosed, InvalidTransition, SlotUnavailable
from ..models import Appointment
from .booking import _patient_busy_message, _taken_message
from .common import (
    CANCEL_REASON,
    HISTORY_PER_PAGE,
    TEMPLATES,
    S,
    _detail_url,
    _get,
    _window_message,
    appointment_actions,
    clinic_context,
    decorate,
)


# --- Appointments ---------------------------------------------------------------------------
@portal_view
@require_GET
def appointments(request: HttpRequest) -> HttpResponse:
    """``/portal/consultas/``: upcoming appointments, then the history (20 a page)."""
    patient = request.portal.patient
    now = timezone.now()
    upcoming = [
        decorate(a, now=now)
        for a in selectors.appointment_list_upcoming_for_patient(patient=patient, now=now)
    ]
    page = Paginator(
        selectors.appointment_list_history_for_patient(patient=patient, now=now),
        HISTORY_PER_PAGE,
    ).get_page(request.GET.get("page"))
    for appointment in page.object_list:
        decorate(appointment, now=now)
    return render(
        request,
        TEMPLATES + "appointments.html",
        {"nav": "appointments", "upcoming": upcoming, "page": page},
    )


@portal_view
@require_GET
def appointment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/portal/consultas/<id>/``: the appointment, how to prepare and get there, and what
    can be done with it."""
    clinic = clinic_context(request.portal.clinic)
    appointment = decorate(_get(request, pk), clinic_phone=clinic["clinic_phone"])
    return render(
        request,
        TEMPLATES + "appointment.html",
        {
            "nav": "appointments",
            "appointment": appointment,
            "moved_to": getattr(appointment, "replaced_by", None),
            "moved_from": appointment.replaces,
            **clinic,
        },
    )


@portal_view
@require_POST
def appointment_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """POST: the patient says they will come."""
    appointment = _get(request, pk)
    back = safe_next(request, request.POST.get("next") or _detail_url(appointment))
    if appointment_actions(appointment).confirm:
        try:
            services.appointment_confirm(appointment=appointment, via=Channel.PORTAL)
        except InvalidTransition:  # changed meanwhile (the reception, another tab)
            messages.error(request, _("This appointment can no longer be confirmed online."))
        else:
            messages.success(request, _("Thank you! Your appointment is confirmed."))
    elif appointment.status == S.CONFIRMED:
        messages.info(request, _("This appointment is already confirmed."))
    else:
        messages.error(request, _("This appointment can no longer be confirmed online."))
    return HttpResponseRedirect(back)


def _cannot_change(request: HttpRequest, appointment: Appointment, *, title: str) -> HttpResponse:
    """The appointment cannot be changed online: say why, and whom to call (a POST that
    tried is refused with 409; a GET just explains)."""
    clinic = clinic_context(request.portal.clinic)
    actions = appointment.actions
    if actions.window_closed:
        message = _window_message(appointment, clinic["clinic_phone"])
    elif appointment.status in (S.SCHEDULED, S.CONFIRMED) and appointment.start > timezone.now():
        message = _("This appointment cannot be rescheduled online. Please call the clinic.")
    else:
        message = _("This appointment can no longer be changed online.")
    return render(
        request,
        TEMPLATES + "unavailable.html",
        {
            "nav": "appointments",
            "appointment": appointment,
            "title": title,
            "message": message,
            **clinic,
        },
        status=409 if request.method == "POST" else 200,
    )


@portal_view
@require_http_methods(["GET", "POST"])
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks "are you sure?"; POST cancels (inside the service's cancellation window the
    service refuses, and the page says to call the clinic)."""
    appointment = decorate(_get(request, pk))
    title = _("Cancel appointment")
    if not appointment.actions.cancel and not (
        request.method == "POST" and appointment.actions.window_closed
    ):
        return _cannot_change(request, appointment, title=title)
    context = {
        "nav": "appointments",
        "appointment": appointment,
        "reason": "",
        **clinic_context(request.portal.clinic),
    }
    if request.method != "POST":
        return render(request, TEMPLATES + "cancel.html", context)
    reason = request.POST.get("reason", "").strip()[:255]
    try:
        services.appointment_cancel(
            appointment=appointment,
            via=Channel.PORTAL,
            reason=reason or CANCEL_REASON,
            enforce_window=True,
        )
    except CancellationWindowClosed:
        return _cannot_change(request, appointment, title=title)
    except InvalidTransition:
        appointment.refresh_from_db(fields=["status"])
        decorate(appointment)
        return _cannot_change(request, appointment, title=title)
    messages.success(request, _("Your appointment was cancelled."))
    return HttpResponseRedirect(_detail_url(appointment))


@portal_view
@require_http_methods(["GET", "POST"])
def appointment_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """GET offers free times of the same service with the same professional in the next two
    weeks (as the reminder link does); POST moves the appointment to one of them."""
    appointment = decorate(_get(request, pk))
    title = _("Reschedule appointment")
    if not appointment.actions.reschedule:
        return _cannot_change(request, appointment, title=title)
    slots = links._free_slots(appointment)  # all of them: a POST may pick any time still free
    if request.method != "POST":
        return _reschedule_page(request, appointment, slots)
    posted = request.POST.get("start", "")
    if not posted:
        return _reschedule_page(request, appointment, slots, error=_("Choose a time."), status=400)
    if posted not in links._offered(appointment, request.POST.get("offered", "")):
        return _reschedule_page(
            request, appointment, slots, error=_("Choose one of the times listed."), status=400
        )
    slot = next((s for s in slots if s.start.isoformat() == posted), None)
    if slot is None:  # offered on the page, taken by someone else since
        return _reschedule_page(request, appointment, slots, error=_taken_message(), status=409)
    room = Room.objects.for_clinic(request.portal.clinic).filter(pk=slot.room_id).first()
    try:
        new = services.appointment_reschedule(
            appointment=appointment,
            start=slot.start,
            room=room if slot.room_id else None,
            via=Channel.PORTAL,
            check_availability=True,
        )
    except SlotUnavailable as error:
        # Rolled back: reload the old appointment (the service set its status in memory).
        appointment.refresh_from_db(fields=["status", "updated_at"])
        message = _patient_busy_message() if error.conflicts == ["patient"] else _taken_message()
        slots = links._free_slots(appointment)
        return _reschedule_page(request, appointment, slots, error=message, status=409)
    except InvalidTransition:
        appointment.refresh_from_db(fields=["status"])
        decorate(appointment)
        return _cannot_change(request, appointment, title=title)
    messages.success(request, _("Your appointment was moved to the new time."))
    return HttpResponseRedirect(_detail_url(new))


def _reschedule_page(
    request: HttpRequest,
    appointment: Appointment,
    free: list[Slot],
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    days = links._days_to_offer(free, clinic_zone(request.portal.clinic))
    shown = [slot for _day, day_slots in days for slot in day_slots]
    return render(
        request,
        TEMPLATES + "reschedule.html",
        {
            "nav": "appointments",
            "appointment": appointment,
            "days": [
                (day, [{"start": s.start, "value": s.start.isoformat()} for s in day_slots])
                for day, day_slots in days
            ],
            "offered": links._sign_offered(appointment, shown),
            "error": error,
            **clinic_context(request.portal.clinic),
        },
        status=status,
    )


@portal_view
@require_GET
def appointment_ics(request: HttpRequest, pk: int) -> HttpResponse:
    """``/portal/consultas/<id>/agenda.ics``: the appointment for the patient's calendar
    app — the service, the professional, the clinic's address and how to prepare."""
    appointment = _get(request, pk)
    clinic = request.portal.clinic
    calendar = feeds._calendar(clinic.name)
    event = feeds._event(
        appointment, stamp=timezone.now().astimezone(UTC), zone=clinic_zone(clinic)
    )
    # The staff event names the patient and the room; the patient's names whom and where.
    for key in ("summary", "location"):
        event.pop(key, None)
    event.add("summary", f"{appointment.service.name} — {appointment.professional.full_name}")
    event.add("location", ", ".join(p for p in (clinic.name, clinic.address_line) if p))
    if appointment.service.preparation_instructions:
        event.add("description", appointment.service.preparation_instructions)
    calendar.add_component(event)
    calendar.add_missing_timezones()  # local times with the clinic's VTIMEZONE
    filename = _("appointment-%(id)d.ics") % {"id": appointment.pk}
    return feeds._ics_response(calendar, filename=filename)
