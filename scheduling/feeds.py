"""Calendar (ICS) files: a professional's private feed, and one appointment for staff.

A feed may end up in a phone's calendar app, synced to a third party's servers: an event
says which service, the patient's first name and the room — never a CPF, a full name or a
clinical note. Times are written in the clinic's local time with its ``VTIMEZONE``
(generated from the tz database), which calendar clients show best: a floating UTC time is
shown right, but without the zone a client cannot tell a daylight-saving change apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext
from icalendar import Calendar, Event

from clinic.kernel.tenancy import current_clinic
from clinic.kernel.timezones import clinic_zone

from .choices import AppointmentStatus
from .models import Appointment, CalendarFeed

FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=180)
PRODID = "-//Cuidar//Agenda//PT-BR"
UID_DOMAIN = "cuidar.agenda"

# The columns an event needs, and nothing more: patients' records stay unread.
EVENT_COLUMNS = (
    "id",
    "start",
    "end",
    "status",
    "updated_at",
    "service__name",
    "patient__full_name",
    "patient__social_name",
    "room__name",
)

S = AppointmentStatus
CONFIRMED = {S.CONFIRMED, S.ARRIVED, S.IN_PROGRESS, S.COMPLETED}


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(appointment: Appointment, *, stamp: datetime, zone) -> Event:
    event = Event()
    # Stable per appointment: clients update the event in place when it changes.
    event.add("uid", f"appointment-{appointment.pk}@{UID_DOMAIN}")
    event.add("dtstamp", stamp)
    event.add("last-modified", appointment.updated_at.astimezone(UTC))
    # Local times with TZID; DTSTAMP and LAST-MODIFIED stay UTC, as RFC 5545 requires.
    event.add("dtstart", appointment.start.astimezone(zone))
    event.add("dtend", appointment.end.astimezone(zone))
    event.add("summary", f"{appointment.service.name} — {appointment.patient.first_name}")
    if appointment.room is not None:
        event.add("location", appointment.room.name)
    if appointment.status in CONFIRMED:
        event.add("status", "CONFIRMED")
    elif appointment.status == S.SCHEDULED:
        event.add("status", "TENTATIVE")
    else:
        event.add("status", "CANCELLED")
    return event


def _ics_response(calendar: Calendar, *, filename: str | None = None) -> HttpResponse:
    response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
    # The URL is a secret: keep it out of shared caches, referrers and search engines.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def calendar_feed(request, token: str) -> HttpResponse:
    """``GET /agenda/feed/<token>.ics``: the professional's occupying appointments from 30
    days ago to 180 days ahead. An unknown or revoked token is a 404. Two queries."""
    feed = (
        CalendarFeed.objects.select_related("professional", "clinic")
        .filter(token=token, clinic__is_active=True)
        .first()
    )
    if feed is None:
        raise Http404
    now = timezone.now()
    appointments = (
        Appointment.objects.filter(clinic_id=feed.clinic_id, professional_id=feed.professional_id)
        .occupying()
        .filter(start__gte=now - FEED_PAST, start__lt=now + FEED_AHEAD)
        .select_related("service", "patient", "room")
        .only(*EVENT_COLUMNS)
        .order_by("start", "pk")
    )
    calendar = _calendar(f"{feed.professional.full_name} — {feed.clinic.name}")
    calendar.add("x-wr-timezone", feed.clinic.time_zone)
    calendar.add("x-published-ttl", "PT15M")  # how often clients should refresh
    stamp = now.astimezone(UTC)
    zone = clinic_zone(feed.clinic)
    for appointment in appointments:
        calendar.add_component(_event(appointment, stamp=stamp, zone=zone))
    calendar.add_missing_timezones()  # the clinic's VTIMEZONE, from the tz database
    return _ics_response(calendar)


@staff_member_required
def appointment_ics(request, pk: int) -> HttpResponse:
    """``GET /agenda/appointment/<id>.ics``: one appointment as a calendar file, for staff
    of its clinic (another clinic's id is a 404, like an unknown one)."""
    if not request.user.has_perm("scheduling.view_appointment"):
        raise PermissionDenied
    clinic = current_clinic(request)
    if clinic is None and request.user.is_superuser:
        appointments = Appointment.objects.all()  # a superuser viewing all clinics
    else:
        appointments = Appointment.objects.for_clinic(clinic)
    appointment = get_object_or_404(
        appointments.select_related("service", "patient", "room", "clinic").only(
            *EVENT_COLUMNS, "clinic__name", "clinic__time_zone"
        ),
        pk=pk,
    )
    calendar = _calendar(appointment.clinic.name)
    calendar.add("x-wr-timezone", appointment.clinic.time_zone)
    zone = clinic_zone(appointment.clinic)
    calendar.add_component(_event(appointment, stamp=timezone.now().astimezone(UTC), zone=zone))
    calendar.add_missing_timezones()  # the clinic's VTIMEZONE, from the tz database
    filename = gettext("appointment-%(id)d.ics") % {"id": appointment.pk}
    return _ics_response(calendar, filename=filename)
