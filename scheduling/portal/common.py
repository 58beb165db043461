"""What the portal's agenda pages share: statuses in plain words, the actions an
appointment allows now, the clinic's address and map link, and scoped lookups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext, pgettext_lazy

from clinic.models import Clinic
from clinic.validators import phone_format

from .. import selectors, services
from ..choices import AppointmentStatus, Channel
from ..models import Appointment

S = AppointmentStatus

#: How many days the "choose a day" step searches at once ("later dates" pages on).
BOOK_DAYS_WINDOW = 21
HISTORY_PER_PAGE = 20
#: Recorded on the appointment when the patient gives no reason (staff read it; not shown
#: to the patient, so not translated).
CANCEL_REASON = "cancelled by the patient in the portal"
#: Channels through which the patient, not the clinic, cancels (portal, reminder links and
#: replies).
PATIENT_CHANNELS = frozenset({Channel.PORTAL, Channel.WHATSAPP, Channel.SMS, Channel.EMAIL})
TEMPLATES = "portal/scheduling/"

# --- Statuses in plain words ----------------------------------------------------------------
#: Each status as the patient reads it, and its badge class (the text says it all; the
#: colour only repeats it).
STATUS_WORDS = {
    S.SCHEDULED: (pgettext_lazy("appointment", "Scheduled"), ""),
    S.CONFIRMED: (pgettext_lazy("appointment", "Confirmed"), "ok"),
    S.ARRIVED: (pgettext_lazy("appointment", "You have checked in"), "ok"),
    S.IN_PROGRESS: (pgettext_lazy("appointment", "In progress"), "ok"),
    S.COMPLETED: (pgettext_lazy("appointment", "Attended"), ""),
    S.NO_SHOW: (pgettext_lazy("appointment", "You missed it"), "bad"),
    S.CANCELLED: (pgettext_lazy("appointment", "Cancelled"), "bad"),
    S.RESCHEDULED: (pgettext_lazy("appointment", "Rescheduled"), ""),
}
CANCELLED_BY_YOU = pgettext_lazy("appointment", "Cancelled by you")


def status_words(appointment: Appointment) -> tuple[str, str]:
    """(what the patient reads, badge class) for the appointment's status."""
    if appointment.status == S.CANCELLED and appointment.cancelled_via in PATIENT_CHANNELS:
        return str(CANCELLED_BY_YOU), "bad"
    text, css = STATUS_WORDS.get(appointment.status, (appointment.get_status_display(), ""))
    return str(text), css


@dataclass(frozen=True)
class Actions:
    """What the patient may do with an appointment online, now."""

    confirm: bool = False
    cancel: bool = False
    reschedule: bool = False
    #: Still to come, but inside the cancellation window: call the clinic.
    window_closed: bool = False
    hours: int = 0


def appointment_actions(appointment: Appointment, *, now: datetime | None = None) -> Actions:
    now = now or timezone.now()
    active = appointment.status in (S.SCHEDULED, S.CONFIRMED) and appointment.start > now
    if not active:
        return Actions()
    late = services.is_late_cancellation(appointment, now=now)
    return Actions(
        confirm=appointment.status == S.SCHEDULED,
        cancel=not late,
        # Moving is cancelling this time: the same window applies (as in reminder links).
        reschedule=not late and appointment.service.online_bookable,
        window_closed=late,
        hours=appointment.service.cancellation_window_hours,
    )


def decorate(
    appointment: Appointment, *, now: datetime | None = None, clinic_phone: str = ""
) -> Appointment:
    """Attach what the templates show: ``status_text``, ``status_class``, ``actions`` and,
    inside the cancellation window, ``window_message`` (whom to call instead)."""
    appointment.status_text, appointment.status_class = status_words(appointment)
    appointment.actions = appointment_actions(appointment, now=now)
    appointment.window_message = (
        _window_message(appointment, clinic_phone) if appointment.actions.window_closed else ""
    )
    return appointment


def map_url(clinic: Clinic) -> str:
    """A Google Maps search for the clinic's address ("" when it has none)."""
    address = clinic.address_line
    if not address:
        return ""
    return "https://www.google.com/maps/search/?" + urlencode({"api": 1, "query": address})


def clinic_context(clinic: Clinic) -> dict:
    return {
        "clinic": clinic,
        "clinic_phone": phone_format(clinic.phone) if clinic.phone else "",
        "map_url": map_url(clinic),
    }


def home_context(*, patient, clinic: Clinic) -> dict:
    """The home page's agenda part: the next appointment and how to reach the clinic."""
    context = clinic_context(clinic)
    next_appointment = selectors.appointment_next_for_patient(patient=patient)
    if next_appointment is not None:
        decorate(next_appointment, clinic_phone=context["clinic_phone"])
    return {"next_appointment": next_appointment, **context}


def _get(request: HttpRequest, pk: int) -> Appointment:
    appointment = selectors.appointment_get_for_patient(patient=request.portal.patient, pk=pk)
    if appointment is None:
        raise Http404
    appointment.patient = request.portal.patient  # already loaded: no query for it
    return appointment


def _detail_url(appointment: Appointment) -> str:
    return reverse("portal:appointment", args=[appointment.pk])


def _window_message(appointment: Appointment, phone: str) -> str:
    hours = appointment.service.cancellation_window_hours
    if phone:
        return ngettext(
            "Appointments can only be cancelled or rescheduled online up to %(hours)d hour "
            "before. Please call the clinic: %(phone)s.",
            "Appointments can only be cancelled or rescheduled online up to %(hours)d hours "
            "before. Please call the clinic: %(phone)s.",
            hours,
        ) % {"hours": hours, "phone": phone}
    return ngettext(
        "Appointments can only be cancelled or rescheduled online up to %(hours)d hour "
        "before. Please contact the clinic.",
        "Appointments can only be cancelled or rescheduled online up to %(hours)d hours "
        "before. Please contact the clinic.",
        hours,
    ) % {"hours": hours}
