"""The receptionist's agenda in the admin: the day (per professional or per room), a
professional's week, one-click status changes and rescheduling to a free slot.

The views are registered by ``AppointmentAdmin.get_urls()`` (wrapped in
``admin_site.admin_view``) and take the ModelAdmin as their first argument, so that scoping
and permissions are the admin's own: an appointment is looked up through
``model_admin.get_queryset(request)``, which is limited to the current clinic, so another
clinic's id is a 404. Every change goes through ``scheduling/services.py``; what the pages
show is computed in ``scheduling/agenda.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from clinic.kernel import views as kernel_views
from clinic.kernel.tenancy import current_clinic
from clinic.models import Professional, Room

from .. import services
from ..agenda import (
    GRID_STATUSES,
    RESCHEDULE_DAYS,
    STATUS_ACTIONS,
    AgendaItem,
    Column,
    Row,
    actions_allowed,
    appointments_for_agenda,
    bookables,
    can_reschedule,
    clinic_zone,
    closure_on,
    grid_build,
    hours_minutes,
    local_label,
    off_minutes,
    slot_step,
)
from ..availability import holiday_name, slot_list_available, slots_for_reception
from ..choices import OCCUPYING_STATUSES, AppointmentStatus
from ..exceptions import SchedulingError
from ..models import Appointment, ClinicClosure, TimeOff, WorkingHours

S = AppointmentStatus


def render_in_zone(zone, view: Callable, *args, **kwargs):
    """Run a view and render its response with ``zone`` active: forms read and templates
    show datetimes in the clinic's time zone (a TemplateResponse renders lazily, after the
    view returned, so it is rendered here)."""
    with timezone.override(zone):
        response = view(*args, **kwargs)
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
    return response


# --- Shared view helpers --------------------------------------------------------------------
def _admin_url(model_admin, name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args, current_app=model_admin.admin_site.name)


def day_url(model_admin, day: date, **params) -> str:
    query = urlencode({"date": day.isoformat(), **{k: v for k, v in params.items() if v}})
    return f"{_admin_url(model_admin, 'scheduling_agenda')}?{query}"


def week_url(model_admin, professional_id: int, day: date) -> str:
    query = urlencode({"professional": professional_id, "date": day.isoformat()})
    return f"{_admin_url(model_admin, 'scheduling_agenda_week')}?{query}"


def _parse_day(value: str | None, zone) -> date:
    """The ``date`` asked for, or today; nonsense (or a year the calendar arithmetic of a
    week could overflow) is today too."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return timezone.localdate(timezone=zone)
    return day if 1900 <= day.year <= 2999 else timezone.localdate(timezone=zone)


def clinic_or_redirect(model_admin, request):
    """The current clinic, or a redirect to the dashboard for a superuser viewing all
    clinics (an agenda is always one clinic's)."""
    return kernel_views.clinic_or_redirect(
        model_admin,
        request,
        current_clinic(request),
        _("Choose a clinic at the top of the page to see its agenda."),
    )


def page_context(model_admin, request, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "can_change": model_admin.has_change_permission(request),
        "can_add": model_admin.has_add_permission(request),
        "status_choices": S.choices,
        **extra,
    }


def _item(model_admin, appointment: Appointment, zone) -> AgendaItem:
    return AgendaItem(
        appointment=appointment,
        start=appointment.start.astimezone(zone),
        end=appointment.end.astimezone(zone),
        first_visit=not appointment.has_earlier_visit,
        actions=actions_allowed(appointment),
        reschedule=can_reschedule(appointment),
        change_url=_admin_url(model_admin, "scheduling_appointment_change", appointment.pk),
    )


# --- Day view -------------------------------------------------------------------------------
def day_view(model_admin, request):
    """``?date=YYYY-MM-DD&by=professional|room``: the clinic's day, one column per
    professional (or room)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic, redirect = clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    return render_in_zone(zone, _day_view, model_admin, request, clinic, zone)


def _day_view(model_admin, request, clinic, zone):
    day = _parse_day(request.GET.get("date"), zone)
    by = "room" if request.GET.get("by") == "room" else "professional"
    day_start = datetime.combine(day, time.min, tzinfo=zone)
    day_end = day_start + timedelta(days=1)

    appointments = list(appointments_for_agenda(clinic=clinic, start=day_start, end=day_end))
    hours = [
        h
        for h in WorkingHours.objects.for_clinic(clinic)
        .filter(weekday=day.weekday(), professional__is_active=True)
        .order_by("start_time")
        if h.applies_on(day)
    ]
    time_off = list(TimeOff.objects.for_clinic(clinic).filter(start__lt=day_end, end__gt=day_start))
    closed = closure_on(
        ClinicClosure.objects.for_clinic(clinic).filter(start_date__lte=day, end_date__gte=day),
        day,
    ) or holiday_name(clinic, day)
    offered = bookables(slots_for_reception(clinic=clinic, start=day_start, end=day_end), zone)
    items = [_item(model_admin, a, zone) for a in appointments]
    in_grid = [i for i in items if i.appointment.status in GRID_STATUSES]
    columns = (
        _room_columns(clinic, day, zone, in_grid, hours, time_off, closed, offered)
        if by == "room"
        else _professional_columns(
            model_admin, clinic, day, zone, in_grid, hours, time_off, closed, offered
        )
    )
    add_url = _admin_url(model_admin, "scheduling_appointment_add")
    rows = grid_build(columns=columns, zone=zone, step=slot_step(clinic), add_url=add_url)
    context = page_context(
        model_admin,
        request,
        title=_("Agenda"),
        subtitle=formats.date_format(day, "DATE_FORMAT"),
        clinic=clinic,
        day=day,
        by=by,
        show_professional=by == "room",
        show_room=by == "professional",
        today=timezone.localdate(timezone=zone),
        columns=columns,
        rows=rows,
        closed=closed,
        off_grid=[i for i in items if i.appointment.status not in GRID_STATUSES],
        count_active=sum(1 for i in items if i.appointment.status in OCCUPYING_STATUSES),
        prev_url=day_url(model_admin, day - timedelta(days=1), by=by),
        next_url=day_url(model_admin, day + timedelta(days=1), by=by),
        today_url=day_url(model_admin, timezone.localdate(timezone=zone), by=by),
        by_professional_url=day_url(model_admin, day),
        by_room_url=day_url(model_admin, day, by="room"),
        checkin_url=_admin_url(model_admin, "scheduling_checkin"),
        list_url=_admin_url(model_admin, "scheduling_appointment_changelist"),
        add_url=add_url,
        next_path=request.get_full_path(),
    )
    return TemplateResponse(request, "scheduling/admin/agenda_day.html", context)


def _professional_columns(model_admin, clinic, day, zone, items, hours, time_off, closed, offered):
    booked = {i.appointment.professional_id for i in items}
    working = {h.professional_id for h in hours}
    professionals = [
        p
        for p in Professional.objects.for_clinic(clinic).order_by("full_name")
        if p.pk in booked or (p.is_active and p.pk in working)
    ]
    if not professionals:
        # Nobody has hours that day: show the team anyway, so the day is not a blank page.
        professionals = list(
            Professional.objects.for_clinic(clinic).filter(is_active=True).order_by("full_name")
        )
    return [
        Column(
            label=p.full_name,
            sublabel=p.specialty,
            day=day,
            color=p.color,
            link=week_url(model_admin, p.pk, day),
            items=[i for i in items if i.appointment.professional_id == p.pk],
            open_minutes=hours_minutes(h for h in hours if h.professional_id == p.pk),
            off_minutes=off_minutes((t for t in time_off if t.professional_id == p.pk), day, zone),
            book_params={"professional": p.pk},
            bookable=[b for b in offered if b.professional_id == p.pk],
            closed=closed,
        )
        for p in professionals
    ]


def _room_columns(clinic, day, zone, items, hours, time_off, closed, offered):
    used = {i.appointment.room_id for i in items}
    rooms = [
        r for r in Room.objects.for_clinic(clinic).order_by("name") if r.is_active or r.pk in used
    ]
    columns = []
    for room in rooms:
        # A room is open while someone works in it, or (no hours name it) while anyone works.
        own = [h for h in hours if h.room_id == room.pk]
        columns.append(
            Column(
                label=room.name,
                day=day,
                items=[i for i in items if i.appointment.room_id == room.pk],
                open_minutes=hours_minutes(own or hours),
                off_minutes=off_minutes((t for t in time_off if t.room_id == room.pk), day, zone),
                book_params={"room": room.pk},
                bookable=[b for b in offered if b.room_id == room.pk],
                closed=closed,
            )
        )
    without_room = [i for i in items if i.appointment.room_id is None]
    if without_room:
        columns.append(
            Column(
                label=_("No room"),
                day=day,
                items=without_room,
                open_minutes=[],
                off_minutes=[],
                book_params={},
                closed=closed,
            )
        )
    return columns


# --- Week view ------------------------------------------------------------------------------
def week_view(model_admin, request):
    """``?professional=ID&date=YYYY-MM-DD``: one professional's week (Monday to Sunday)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    clinic, redirect = clinic_or_redirect(model_admin, request)
    if redirect:
        return redirect
    zone = clinic_zone(clinic)
    return render_in_zone(zone, _week_view, model_admin, request, clinic, zone)


def _week_view(model_admin, request, clinic, zone):
    day = _parse_day(request.GET.get("date"), zone)
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    professionals = list(Professional.objects.for_clinic(clinic).order_by("full_name"))
    wanted = request.GET.get("professional")
    if wanted:
        # Another clinic's professional is not in the list: the same 404 as a missing one.
        professional = next((p for p in professionals if str(p.pk) == wanted), None)
        if professional is None:
            raise Http404
    else:
        professional = next((p for p in professionals if p.is_active), None)
    week_start = datetime.combine(monday, time.min, tzinfo=zone)
    week_end = week_start + timedelta(days=7)
    columns: list[Column] = []
    rows: list[Row] = []
    if professional is not None:
        appointments = appointments_for_agenda(clinic=clinic, start=week_start, end=week_end)
        items = [
            _item(model_admin, a, zone)
            for a in appointments.filter(professional=professional, status__in=GRID_STATUSES)
        ]
        hours = list(WorkingHours.objects.for_clinic(clinic).filter(professional=professional))
        time_off = list(
            TimeOff.objects.for_clinic(clinic).filter(
                professional=professional, start__lt=week_end, end__gt=week_start
            )
        )
        closures = list(
            ClinicClosure.objects.for_clinic(clinic).filter(
                start_date__lte=days[-1], end_date__gte=days[0]
            )
        )
        offered = bookables(
            slots_for_reception(
                clinic=clinic, professional=professional, start=week_start, end=week_end
            ),
            zone,
        )
        for d in days:
            day_items = [i for i in items if i.start.date() == d]
            day_hours = [h for h in hours if h.applies_on(d)]
            if d.weekday() >= 5 and not day_items and not day_hours:
                continue  # a weekend day with nothing on it
            columns.append(
                Column(
                    label=formats.date_format(d, "l"),
                    sublabel=formats.date_format(d, "SHORT_DATE_FORMAT"),
                    day=d,
                    link=day_url(model_admin, d),
                    items=day_items,
                    open_minutes=hours_minutes(day_hours),
                    off_minutes=off_minutes(time_off, d, zone),
                    book_params={"professional": professional.pk},
                    bookable=[b for b in offered if b.start.date() == d],
                    closed=closure_on(closures, d) or holiday_name(clinic, d),
                )
            )
        add_url = _admin_url(model_admin, "scheduling_appointment_add")
        rows = grid_build(columns=columns, zone=zone, step=slot_step(clinic), add_url=add_url)
    pk = professional.pk if professional else ""
    context = page_context(
        model_admin,
        request,
        title=_("Week agenda"),
        subtitle=professional.full_name if professional else "",
        clinic=clinic,
        day=day,
        monday=monday,
        sunday=days[-1],
        professional=professional,
        professionals=[p for p in professionals if p.is_active or p == professional],
        columns=columns,
        rows=rows,
        prev_url=week_url(model_admin, pk, monday - timedelta(days=7)),
        next_url=week_url(model_admin, pk, monday + timedelta(days=7)),
        today_url=week_url(model_admin, pk, timezone.localdate(timezone=zone)),
        day_url=day_url(model_admin, day),
        today=timezone.localdate(timezone=zone),
        add_url=_admin_url(model_admin, "scheduling_appointment_add"),
        next_path=request.get_full_path(),
    )
    return TemplateResponse(request, "scheduling/admin/agenda_week.html", context)


# --- One-click status changes ---------------------------------------------------------------
def _appointment_or_404(model_admin, request, object_id) -> Appointment:
    appointment = (
        model_admin.get_queryset(request)
        .select_related("patient", "service", "professional", "room", "clinic")
        .filter(pk=object_id)
        .first()
    )
    if appointment is None:  # another clinic's, or none: the same 404
        raise Http404
    return appointment


def transition_view(model_admin, request, object_id, action):
    """POST: move one appointment through the status machine (``action`` is a key of
    ``STATUS_ACTIONS``; ``reason`` for a cancellation), then go back where the click was."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    status_action = STATUS_ACTIONS.get(action)
    if status_action is None:
        raise Http404
    appointment = _appointment_or_404(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, appointment):
        raise PermissionDenied
    zone = clinic_zone(appointment.clinic)
    label = local_label(appointment, zone)
    reason = request.POST.get("reason", "").strip()
    try:
        status_action.run(appointment, user=request.user, reason=reason)
    except SchedulingError as exc:
        messages.error(
            request,
            _("%(appointment)s was not changed: %(reason)s")
            % {"appointment": label, "reason": exc.message},
        )
    else:
        messages.success(
            request,
            _("%(done)s: %(appointment)s.") % {"done": status_action.done, "appointment": label},
        )
    fallback = day_url(model_admin, appointment.start.astimezone(zone).date())
    return HttpResponseRedirect(kernel_views.safe_next(request, fallback))


# --- Reschedule -----------------------------------------------------------------------------
def reschedule_view(model_admin, request, object_id):
    """GET: the free slots of the next 14 days for the same service (same professional,
    another one, or anyone); POST ``start``, ``professional``, ``room``: move it there."""
    appointment = _appointment_or_404(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, appointment):
        raise PermissionDenied
    zone = clinic_zone(appointment.clinic)
    return render_in_zone(zone, _reschedule_view, model_admin, request, appointment, zone)


def _reschedule_view(model_admin, request, appointment, zone):
    clinic = appointment.clinic
    change_url = _admin_url(model_admin, "scheduling_appointment_change", appointment.pk)
    if not can_reschedule(appointment):
        messages.error(
            request,
            _("An appointment that is %(status)s cannot be rescheduled.")
            % {"status": appointment.get_status_display().lower()},
        )
        return HttpResponseRedirect(change_url)
    if request.method == "POST":
        return _reschedule_post(model_admin, request, appointment, zone)

    performers = list(
        Professional.objects.for_clinic(clinic)
        .filter(is_active=True)
        .filter(Q(services=appointment.service) | Q(pk=appointment.professional_id))
        .distinct()
        .order_by("full_name")
    )
    wanted = request.GET.get("professional", str(appointment.professional_id))
    chosen = None if wanted == "any" else next((p for p in performers if str(p.pk) == wanted), None)
    if wanted != "any" and chosen is None:
        chosen = appointment.professional
    now = timezone.now()
    slots = slot_list_available(
        clinic=clinic,
        service=appointment.service,
        professional=chosen,
        start=now,
        end=now + timedelta(days=RESCHEDULE_DAYS),
        now=now,
    )
    names = {p.pk: p.full_name for p in performers}
    room_names = dict(Room.objects.for_clinic(clinic).values_list("pk", "name"))
    days: dict[date, list[dict]] = {}
    for slot in slots:
        local = slot.start.astimezone(zone)
        days.setdefault(local.date(), []).append(
            {
                "start": local,
                "value": slot.start.isoformat(),
                "professional_id": slot.professional_id,
                "professional": names.get(slot.professional_id, ""),
                "room_id": slot.room_id or "",
                "room": room_names.get(slot.room_id, ""),
            }
        )
    context = page_context(
        model_admin,
        request,
        title=_("Reschedule"),
        subtitle=local_label(appointment, zone),
        appointment=appointment,
        item=_item_plain(appointment, zone),
        performers=performers,
        chosen=wanted if wanted == "any" else str(chosen.pk),
        days=sorted(days.items()),
        reschedule_days=RESCHEDULE_DAYS,
        change_url=change_url,
        agenda_url=day_url(model_admin, appointment.start.astimezone(zone).date()),
    )
    return TemplateResponse(request, "scheduling/admin/reschedule.html", context)


def _item_plain(appointment, zone) -> dict:
    return {
        "start": appointment.start.astimezone(zone),
        "end": appointment.end.astimezone(zone),
    }


def _reschedule_post(model_admin, request, appointment, zone):
    clinic = appointment.clinic
    back = request.get_full_path()
    try:
        start = datetime.fromisoformat(request.POST.get("start", ""))
        if timezone.is_naive(start):
            start = start.replace(tzinfo=zone)
        professional_id = int(request.POST.get("professional", ""))
        room_id = int(request.POST["room"]) if request.POST.get("room") else None
    except (TypeError, ValueError):
        messages.error(request, _("Choose one of the free times listed."))
        return HttpResponseRedirect(back)
    professional = Professional.objects.for_clinic(clinic).filter(pk=professional_id).first()
    room = Room.objects.for_clinic(clinic).filter(pk=room_id).first() if room_id else None
    if professional is None or (room_id and room is None):
        messages.error(request, _("Choose one of the free times listed."))
        return HttpResponseRedirect(back)
    label = local_label(appointment, zone)
    try:
        new = services.appointment_reschedule(
            appointment=appointment,
            start=start,
            professional=professional,
            room=room,
            by=request.user,
        )
    except SchedulingError as exc:
        messages.error(
            request,
            _("%(appointment)s was not rescheduled: %(reason)s")
            % {"appointment": label, "reason": exc.message},
        )
        return HttpResponseRedirect(back)
    messages.success(
        request,
        _("%(appointment)s moved to %(start)s with %(professional)s.")
        % {
            "appointment": label,
            "start": formats.date_format(new.start.astimezone(zone), "SHORT_DATETIME_FORMAT"),
            "professional": professional.full_name,
        },
    )
    return HttpResponseRedirect(day_url(model_admin, new.start.astimezone(zone).date()))
