"""The "appointments" and "waitlist" parts of the patient's data export (LGPD)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from clinic.kernel.timezones import clinic_zone
from clinic.privacy import export_section

from .. import selectors
from .common import (
    status_words,
)


# --- Data export (LGPD) ---------------------------------------------------------------------
@export_section("appointments", gettext_lazy("Appointments"), order=20)
def export_appointments(patient) -> list[dict]:
    """Every appointment of the patient (never the clinic's internal notes)."""
    zone = clinic_zone(patient.clinic)
    rows = []
    for a in selectors.appointment_list_for_patient(patient=patient).order_by("start", "pk"):
        rows.append(
            {
                "id": a.pk,
                "start": a.start.astimezone(zone).isoformat(),
                "end": a.end.astimezone(zone).isoformat(),
                "service": a.service.name,
                "professional": a.professional.full_name,
                "room": a.room.name if a.room else "",
                "status": a.status,
                "status_text": status_words(a)[0],
                "booked_via": a.booked_via,
                "confirmed_via": a.confirmed_via,
                "price": str(a.price),
                "notes": a.notes,
            }
        )
    return rows


@export_section("waitlist", gettext_lazy("Waiting list"), order=21)
def export_waitlist(patient) -> list[dict]:
    """The patient's waiting-list entries."""
    return [
        {
            "id": e.pk,
            "service": e.service.name,
            "professional": e.professional.full_name if e.professional else "",
            "from": e.earliest_date.isoformat(),
            "until": e.latest_date.isoformat(),
            "period": e.period,
            "status": e.status,
            "created_at": e.created_at.isoformat(),
        }
        for e in selectors.waitlist_list_for_patient(patient=patient)
    ]
