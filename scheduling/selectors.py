"""Shared reads of the agenda (admin, portal, API and KPIs use the same queries)."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from .availability import Slot, slot_list_available  # noqa: F401 - the availability engine
from .choices import AppointmentStatus
from .models import Appointment, WaitlistEntry

S = AppointmentStatus


# --- The patient portal: one patient's own appointments -------------------------------------
# Every read below is scoped to the patient, and so to their clinic; the portal's views use
# these and nothing else, so another patient's id in a URL finds nothing (a 404).
#: What a patient may still come to (and confirm, cancel or move).
PATIENT_UPCOMING_STATUSES = (S.SCHEDULED, S.CONFIRMED, S.ARRIVED, S.IN_PROGRESS)


def appointment_list_for_patient(*, patient) -> QuerySet:
    """The patient's appointments, with what a page about them shows (one query)."""
    return (
        Appointment.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .select_related("service", "professional", "room")
    )


def appointment_get_for_patient(*, patient, pk: int) -> Appointment | None:
    """One of the patient's appointments (with the one it was moved to, if any), or None."""
    return (
        appointment_list_for_patient(patient=patient)
        .select_related("replaced_by", "replaces")
        .filter(pk=pk)
        .first()
    )


def appointment_list_upcoming_for_patient(*, patient, now=None) -> QuerySet:
    """Appointments still to come (or under way), soonest first."""
    now = now or timezone.now()
    return (
        appointment_list_for_patient(patient=patient)
        .filter(status__in=PATIENT_UPCOMING_STATUSES, end__gt=now)
        .order_by("start", "pk")
    )


def appointment_list_history_for_patient(*, patient, now=None) -> QuerySet:
    """Everything not upcoming: past, cancelled and moved appointments, latest first."""
    now = now or timezone.now()
    return (
        appointment_list_for_patient(patient=patient)
        .exclude(Q(status__in=PATIENT_UPCOMING_STATUSES, end__gt=now))
        .order_by("-start", "-pk")
    )


def appointment_next_for_patient(*, patient, now=None) -> Appointment | None:
    """The next scheduled or confirmed appointment that has not started yet."""
    now = now or timezone.now()
    return (
        appointment_list_for_patient(patient=patient)
        .filter(status__in=(S.SCHEDULED, S.CONFIRMED), start__gt=now)
        .order_by("start", "pk")
        .first()
    )


def waitlist_list_for_patient(*, patient) -> QuerySet:
    """The patient's waitlist entries, latest first."""
    return (
        WaitlistEntry.objects.for_clinic(patient.clinic_id)
        .filter(patient=patient)
        .select_related("service", "professional")
        .order_by("-created_at", "-pk")
    )
