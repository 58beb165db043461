"""The reception's home page data (the admin index for a clinic, ``config.admin``): today's
figures, the waiting room, who has not confirmed, what comes next and the waitlist."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone

from ..agenda import appointments_for_agenda
from ..choices import AppointmentStatus, WaitlistStatus
from ..models import Appointment, WaitlistEntry

S = AppointmentStatus

#: How many rows each list of the home shows (the calendar has the rest).
HOME_ROWS = 8


def _whatsapp(patient, text: str) -> str:
    """A one-click WhatsApp link to the patient with ``text`` typed in (wa.me), or ""."""
    digits = "".join(ch for ch in (patient.phone or "") if ch.isdigit())
    return f"https://wa.me/{digits}?{urlencode({'text': text})}" if digits else ""


def reception_today(*, clinic, now: datetime | None = None) -> dict:
    """What the desk needs first thing and all day: today's figures, the waiting room (who
    arrived and for how long, who is late), who has not confirmed (with a one-click
    WhatsApp), what comes next, and the waitlist's candidates. Two queries."""
    zone = clinic_zone(clinic)
    now = now or timezone.now()
    today = timezone.localdate(now, zone)
    start = datetime.combine(today, time.min, tzinfo=zone)
    appointments = list(
        appointments_for_agenda(clinic=clinic, start=start, end=start + timedelta(days=1))
    )

    def row(a: Appointment, **extra) -> dict:
        return {
            "appointment": a,
            "start": a.start.astimezone(zone),
            "patient": a.patient.display_name,
            "professional": a.professional.full_name,
            "service": a.service.name,
            **extra,
        }

    def minutes(since: datetime) -> int:
        return max(0, int((now - since).total_seconds() // 60))

    arrived = sorted(
        (a for a in appointments if a.status == S.ARRIVED and a.arrived_at),
        key=lambda a: a.arrived_at,
    )
    late = [a for a in appointments if a.status in (S.SCHEDULED, S.CONFIRMED) and a.start <= now]
    unconfirmed = [a for a in appointments if a.status == S.SCHEDULED and a.start > now]
    upcoming = [a for a in appointments if a.status == S.CONFIRMED and a.start > now]
    waitlist = list(
        WaitlistEntry.objects.for_clinic(clinic)
        .filter(status=WaitlistStatus.WAITING, earliest_date__lte=today, latest_date__gte=today)
        .select_related("patient", "service", "professional")
        .order_by("created_at")[:HOME_ROWS]
    )
    count = dict.fromkeys(S.values, 0)
    for a in appointments:
        count[a.status] += 1
    return {
        "today": today,
        "total": sum(1 for a in appointments if a.is_occupying or a.status == S.NO_SHOW),
        "count": count,
        "encaixes": sum(1 for a in appointments if a.encaixe and a.is_occupying),
        "arrived": [row(a, minutes=minutes(a.arrived_at)) for a in arrived][:HOME_ROWS],
        "in_progress": [row(a) for a in appointments if a.status == S.IN_PROGRESS][:HOME_ROWS],
        "late": [row(a, minutes=minutes(a.start)) for a in late][:HOME_ROWS],
        "unconfirmed": [
            row(
                a,
                whatsapp=_whatsapp(
                    a.patient,
                    _(
                        "Hello, %(name)s! This is %(clinic)s: can you confirm your "
                        "appointment today at %(time)s with %(professional)s?"
                    )
                    % {
                        "name": a.patient.first_name,
                        "clinic": clinic.name,
                        "time": a.start.astimezone(zone).strftime("%H:%M"),
                        "professional": a.professional.full_name,
                    },
                ),
            )
            for a in unconfirmed
        ][:HOME_ROWS],
        "unconfirmed_total": len(unconfirmed),
        "upcoming": [row(a) for a in upcoming][:HOME_ROWS],
        "waitlist": waitlist,
    }
