"""The receptionist's calendar in the admin: the page (``calendar.html`` with the vendored
Event Calendar component and ``calendar.js``) and the JSON it talks to — the day's cards and
shading (polled with an ETag, so other people's changes appear within seconds), moving a
card (drag and drop, resize or the keyboard dialog), the status menu, and the booking side
panel (patient search, new patient inline, the next free times).

Every view is wrapped in ``admin_site.admin_view`` (staff sign-in) and reads through the
appointment admin: its permissions decide, and every query is the current clinic's, so
another clinic's ids answer 404. Every change goes through ``scheduling.services``.
Times travel as the clinic's wall-clock time (``calendar_data.local_str``/``local_parse``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _

from clinic import services as clinic_services
from clinic.audit import audit_staff
from clinic.kernel import views as kernel_views
from clinic.kernel.tenancy import current_clinic
from clinic.kernel.timezones import clinic_zone
from clinic.models import Patient, Professional, Room
from clinic.selectors import patient_search

from .. import services
from ..agenda import STATUS_ACTIONS
from ..availability import slots_for_reception
from ..exceptions import SchedulingError, SlotUnavailable
from ..models import Appointment, Service
from .calendar_data import (
    CalendarQuery,
    calendar_payload,
    calendar_version,
    local_parse,
    local_str,
)

#: How many free times the booking panel offers as buttons.
NEXT_TIMES = 8
#: How far ahead the panel looks for them.
NEXT_TIMES_DAYS = 14
#: Patients listed by the search.
SEARCH_LIMIT = 8
#: The audit trail's action for a deliberate overbooking.
AUDIT_ENCAIXE = "encaixe"


def _labels() -> dict:
    """The page script's words, translated here (the script has no gettext)."""
    return {
        "day": _("Day"),
        "week": _("Week"),
        "list": _("List"),
        "appointments": _("%(count)s appointments"),
        "closed": _("Closed: %(reason)s"),
        "noTimes": _("No free time in the next 14 days for this service."),
        "chooseTime": _("Choose a time."),
        "noResults": _("No patient found. Register a new one below."),
        "change": _("Change"),
        "open": _("Open"),
        "move": _("Move…"),
        "message": _("Send a WhatsApp message"),
        "actionsOf": _("Actions: %(patient)s, %(time)s"),
        "cancelReason": _("Reason for the cancellation (optional):"),
        "moveQuestion": _("Move %(patient)s to %(time)s with %(professional)s?"),
        "refused": _("Not moved: %(reason)s"),
        "past": _("That time has passed: choose a time from now on."),
        "closedTime": _("The clinic is closed then."),
        "encaixeWarning": _(
            "%(reason)s You can still squeeze the patient in (encaixe): it will be flagged "
            "and recorded."
        ),
        "live": _("Live"),
        "offline": _("Offline: retrying…"),
        "moveHint": _("Moving %(patient)s: choose the new date, time and professional."),
        "selected": _("selected"),
        "newBooking": _("New booking"),
        "booking": _("Booking %(time)s with %(professional)s"),
        "error": _("Something went wrong. Try again."),
    }


def calendar_urls(admin_site) -> list:
    """URL patterns of the calendar, for the admin site's ``get_urls`` (before the admin's
    own catch-all)."""

    def wrap(view):
        def wrapped(request, *args, **kwargs):
            model_admin = admin_site._registry[Appointment]
            return view(model_admin, request, *args, **kwargs)

        return admin_site.admin_view(wrapped)

    base = "scheduling/calendar/"
    return [
        path(base, wrap(calendar_page), name="scheduling_calendar"),
        path(f"{base}events/", wrap(calendar_events), name="scheduling_calendar_events"),
        path(f"{base}patients/", wrap(calendar_patients), name="scheduling_calendar_patients"),
        path(f"{base}times/", wrap(calendar_times), name="scheduling_calendar_times"),
        path(f"{base}book/", wrap(calendar_book), name="scheduling_calendar_book"),
        path(
            f"{base}<int:object_id>/move/",
            wrap(calendar_move),
            name="scheduling_calendar_move",
        ),
        path(
            f"{base}<int:object_id>/status/<slug:action>/",
            wrap(calendar_status),
            name="scheduling_calendar_status",
        ),
    ]


# --- Helpers --------------------------------------------------------------------------------
def _clinic(request):
    """The current clinic; a calendar is always one clinic's (404 for "all clinics")."""
    clinic = current_clinic(request)
    if clinic is None:
        raise Http404(_("Choose a clinic at the top of the page to see its agenda."))
    return clinic


def _error(message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": str(message), **extra}, status=status)


def _refused(exc: SchedulingError) -> JsonResponse:
    conflicts = getattr(exc, "conflicts", [])
    return _error(
        exc.message,
        status=409 if isinstance(exc, SlotUnavailable) else 400,
        conflicts=conflicts,
        # Only the professional's time can be booked over, deliberately, by reception.
        encaixe_possible=conflicts == ["professional"],
    )


def _flag(request, name: str) -> bool:
    return request.POST.get(name, "") in {"1", "true", "on", "yes"}


def _appointment(model_admin, request, object_id) -> Appointment:
    appointment = (
        model_admin.get_queryset(request)
        .select_related("patient", "service", "professional", "room", "clinic")
        .filter(pk=object_id)
        .first()
    )
    if appointment is None:  # another clinic's, or none: the same 404
        raise Http404
    if not model_admin.has_change_permission(request, appointment):
        raise PermissionDenied
    return appointment


def _audit_encaixe(request, appointment: Appointment, warning: str) -> None:
    audit_staff(
        request=request,
        clinic=appointment.clinic_id,
        action=AUDIT_ENCAIXE,
        patient=appointment.patient_id,
        obj=appointment,
        details={
            "professional_id": appointment.professional_id,
            "start": appointment.start.isoformat(),
            "warning": warning[:500],
        },
    )


# --- The page -------------------------------------------------------------------------------
def calendar_page(model_admin, request):
    """The calendar: ``?date=YYYY-MM-DD&view=day|week|list&by=professional|room``."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic, redirect = kernel_views.clinic_or_redirect(
        model_admin,
        request,
        current_clinic(request),
        _("Choose a clinic at the top of the page to see its agenda."),
    )
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    services_list = [
        {
            "id": s.pk,
            "name": s.name,
            "minutes": s.duration_minutes,
            "professionals": sorted(p.pk for p in s.professionals.all()),
        }
        for s in Service.objects.for_clinic(clinic)
        .filter(is_active=True)
        .prefetch_related("professionals")
        .order_by("name")
    ]
    professionals = [
        {"id": p.pk, "name": p.full_name}
        for p in Professional.objects.for_clinic(clinic)
        .filter(is_active=True)
        .order_by("full_name")
    ]
    rooms = [
        {"id": r.pk, "name": r.name}
        for r in Room.objects.for_clinic(clinic).filter(is_active=True).order_by("name")
    ]
    today = timezone.localdate(timezone=zone)
    wanted = request.GET.get("date", "")
    config = {
        "date": wanted[:10] if wanted[:10] and _is_day(wanted[:10]) else today.isoformat(),
        "today": today.isoformat(),
        "view": request.GET.get("view")
        if request.GET.get("view") in {"day", "week", "list"}
        else "day",
        "by": "room" if request.GET.get("by") == "room" else "professional",
        "zone": clinic.time_zone,
        "clinic": clinic.name,
        "canChange": model_admin.has_change_permission(request),
        "canAdd": model_admin.has_add_permission(request),
        "canAddPatient": request.user.has_perm("clinic.add_patient"),
        "services": services_list,
        "professionals": professionals,
        "rooms": rooms,
        "actions": {name: str(a.label) for name, a in STATUS_ACTIONS.items()},
        "urls": {
            "events": reverse("admin:scheduling_calendar_events"),
            "patients": reverse("admin:scheduling_calendar_patients"),
            "times": reverse("admin:scheduling_calendar_times"),
            "book": reverse("admin:scheduling_calendar_book"),
            "move": reverse("admin:scheduling_calendar_move", args=[0]),
            "status": reverse("admin:scheduling_calendar_status", args=[0, "confirm"]),
            "checkin": reverse("admin:scheduling_checkin"),
            "add": reverse("admin:scheduling_appointment_add"),
        },
        "pollSeconds": 3,
        "labels": _labels(),
    }
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "title": _("Calendar"),
        # The calendar needs the width: the admin's model list is one click away.
        "is_nav_sidebar_enabled": False,
        "clinic": clinic,
        "config": config,
    }
    return render(request, "scheduling/admin/calendar.html", context)


def _is_day(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


# --- The cards, polled ----------------------------------------------------------------------
def calendar_events(model_admin, request):
    """GET ``?start=&end=&by=&professional=…``: the JSON the calendar draws. Its ETag is
    ``calendar_version`` (three aggregates), checked before anything is built: a poll that
    finds nothing new gets 304 and no body."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic = _clinic(request)
    zone = clinic_zone(clinic)
    query = CalendarQuery.from_params(request.GET, zone)
    # The clinic's clock to the minute: the past's shading moves once a minute, not on
    # every poll, so an idle calendar keeps getting 304.
    now = timezone.now().replace(second=0, microsecond=0)
    etag = f'"{calendar_version(clinic=clinic, query=query, now=now)}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        payload = calendar_payload(clinic=clinic, query=query, now=now)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


# --- Moving a card --------------------------------------------------------------------------
def calendar_move(model_admin, request, object_id):
    """POST ``start`` (the clinic's wall-clock time), ``resource`` (the professional, or the
    room when the calendar shows rooms; empty: unchanged), ``end`` (a resize), ``notify``
    (tell the patient), ``encaixe`` (book over the professional's time, after the
    warning). Through ``appointment_reschedule``: a refusal answers 409 with the reason."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    appointment = _appointment(model_admin, request, object_id)
    clinic = appointment.clinic
    zone = clinic_zone(clinic)
    try:
        start = local_parse(request.POST.get("start", ""), zone)
        end = local_parse(request.POST["end"], zone) if request.POST.get("end") else None
    except ValueError:
        return _error(_("Choose a valid date and time."))
    if start < timezone.now():
        return _error(_("An appointment cannot be moved to the past."), status=409)
    professional, room = appointment.professional, None
    resource = request.POST.get("resource", "")
    if request.POST.get("by") == "room":
        if resource and resource != "none":
            room = Room.objects.for_clinic(clinic).filter(pk=_int(resource)).first()
            if room is None:
                raise Http404
    elif resource:
        professional = Professional.objects.for_clinic(clinic).filter(pk=_int(resource)).first()
        if professional is None:
            raise Http404
    duration = None
    if end is not None and end - start != appointment.end - appointment.start:
        duration = end - start
    elif appointment.end - appointment.start != appointment.service.duration:
        duration = appointment.end - appointment.start  # a resized card keeps its length
    encaixe = _flag(request, "encaixe")
    warning = request.POST.get("warning", "")
    try:
        new = services.appointment_reschedule(
            appointment=appointment,
            start=start,
            professional=professional if professional != appointment.professional else None,
            room=room,
            by=request.user,
            encaixe=encaixe,
            duration=duration,
            notify_patient=_flag(request, "notify"),
        )
        if encaixe:
            _audit_encaixe(request, new, warning)
    except SchedulingError as exc:
        return _refused(exc)
    return JsonResponse(
        {
            "id": new.pk,
            "start": local_str(new.start, zone),
            "end": local_str(new.end, zone),
            "message": _("%(patient)s moved to %(start)s with %(professional)s.")
            % {
                "patient": new.patient.display_name,
                "start": new.start.astimezone(zone).strftime("%d/%m %H:%M"),
                "professional": new.professional.full_name,
            },
        }
    )


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- The status menu ------------------------------------------------------------------------
def calendar_status(model_admin, request, object_id, action):
    """POST: one transition of the status machine (``reason`` for a cancellation)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    status_action = STATUS_ACTIONS.get(action)
    if status_action is None:
        raise Http404
    appointment = _appointment(model_admin, request, object_id)
    try:
        status_action.run(
            appointment, user=request.user, reason=request.POST.get("reason", "").strip()
        )
    except SchedulingError as exc:
        return _refused(exc)
    return JsonResponse(
        {
            "id": appointment.pk,
            "status": appointment.status,
            "message": _("%(done)s: %(patient)s.")
            % {"done": status_action.done, "patient": appointment.patient.display_name},
        }
    )


# --- The booking panel ----------------------------------------------------------------------
def calendar_patients(model_admin, request):
    """GET ``?q=``: the clinic's patients matching a name, a CPF or a phone (a few)."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    clinic = _clinic(request)
    term = request.GET.get("q", "").strip()
    if len(term) < 2:
        return JsonResponse({"results": []})
    found = patient_search(clinic=clinic, term=term).order_by("full_name")[:SEARCH_LIMIT]
    return JsonResponse(
        {
            "results": [
                {
                    "id": p.pk,
                    "name": p.display_name,
                    "cpf": _cpf_masked(p.cpf),
                    "phone": p.phone,
                    "birth": p.birth_date.strftime("%d/%m/%Y") if p.birth_date else "",
                }
                for p in found
            ]
        }
    )


def _cpf_masked(cpf: str) -> str:
    """Enough of a CPF to tell two namesakes apart, not the whole number on screen."""
    return f"***.{cpf[3:6]}.{cpf[6:9]}-**" if len(cpf or "") == 11 else ""


def calendar_times(model_admin, request):
    """GET ``?professional=&service=&from=``: the next free times of that service with that
    professional from then (never the past), as the agenda offers them."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    clinic = _clinic(request)
    zone = clinic_zone(clinic)
    professional = (
        Professional.objects.for_clinic(clinic)
        .filter(pk=_int(request.GET.get("professional")))
        .first()
    )
    service_id = _int(request.GET.get("service"))
    if professional is None or not service_id:
        return JsonResponse({"times": []})
    now = timezone.now()
    try:
        start = max(now, local_parse(request.GET.get("from", ""), zone))
    except ValueError:
        start = now
    found = slots_for_reception(
        clinic=clinic,
        professional=professional,
        start=start,
        end=start + timedelta(days=NEXT_TIMES_DAYS),
        now=now,
    ).get(service_id, [])
    times, seen = [], set()
    for slot in found:
        if slot.start in seen:
            continue
        seen.add(slot.start)
        local = slot.start.astimezone(zone)
        times.append(
            {
                "start": local_str(slot.start, zone),
                "label": local.strftime("%d/%m %H:%M"),
                "room": slot.room_id,
            }
        )
        if len(times) == NEXT_TIMES:
            break
    return JsonResponse({"times": times})


def calendar_book(model_admin, request):
    """POST ``patient`` (an id) or ``new_name``, ``new_phone``, ``new_cpf``; ``service``,
    ``professional``, ``start``, ``room``, ``notes``, ``encaixe``: book through
    ``appointment_book``. The new patient and the booking are one transaction: a refused
    time leaves no patient behind."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    clinic = _clinic(request)
    zone = clinic_zone(clinic)
    post = request.POST
    professional = (
        Professional.objects.for_clinic(clinic).filter(pk=_int(post.get("professional"))).first()
    )
    service = Service.objects.for_clinic(clinic).filter(pk=_int(post.get("service"))).first()
    room = (
        Room.objects.for_clinic(clinic).filter(pk=_int(post.get("room"))).first()
        if post.get("room")
        else None
    )
    fields = {}
    if professional is None:
        fields["professional"] = _("Choose a professional.")
    if service is None:
        fields["service"] = _("Choose a service.")
    if post.get("room") and room is None:  # another clinic's, or none: never silently dropped
        fields["room"] = _("Choose a room of this clinic.")
    try:
        start = local_parse(post.get("start", ""), zone)
        if start < timezone.now():
            fields["start"] = _("Choose a time in the future.")
    except ValueError:
        fields["start"] = _("Choose one of the free times.")
    patient = None
    if post.get("patient"):
        patient = Patient.objects.for_clinic(clinic).filter(pk=_int(post.get("patient"))).first()
        if patient is None:
            fields["patient"] = _("Choose a patient from the search.")
    elif not post.get("new_name", "").strip():
        fields["patient"] = _("Search for the patient, or register a new one.")
    elif not request.user.has_perm("clinic.add_patient"):
        raise PermissionDenied
    if fields:
        return _error(_("Please correct the marked fields."), fields=fields)
    encaixe = _flag(request, "encaixe")
    try:
        with transaction.atomic():
            if patient is None:
                patient = clinic_services.patient_create(
                    clinic=clinic,
                    full_name=post.get("new_name", "").strip(),
                    phone=post.get("new_phone", "").strip(),
                    cpf=post.get("new_cpf", "").strip(),
                )
            appointment = services.appointment_book(
                clinic=clinic,
                patient=patient,
                professional=professional,
                service=service,
                start=start,
                room=room,
                booked_by=request.user,
                notes=post.get("notes", "").strip(),
                encaixe=encaixe,
            )
            if encaixe:
                _audit_encaixe(request, appointment, post.get("warning", ""))
    except ValidationError as exc:
        names = {"full_name": "new_name", "phone": "new_phone", "cpf": "new_cpf"}
        errors = getattr(exc, "message_dict", {"__all__": exc.messages})
        return _error(
            _("Please correct the marked fields."),
            fields={names.get(k, k): " ".join(v) for k, v in errors.items()},
        )
    except SchedulingError as exc:
        return _refused(exc)
    return JsonResponse(
        {
            "id": appointment.pk,
            "message": _("Booked: %(patient)s, %(service)s at %(start)s with %(professional)s.")
            % {
                "patient": patient.display_name,
                "service": service.name,
                "start": appointment.start.astimezone(zone).strftime("%d/%m %H:%M"),
                "professional": professional.full_name,
            },
        },
        status=201,
    )
