"""Starting and finishing care: the professional's day opens the clinical record's
encounter of an arrived patient (the appointment goes ``in_progress``); signing the
encounter completes the appointment (``handlers.complete_signed_encounter``).

The record sits below scheduling: it never imports it, and learns of the appointment only
through ``open_encounter(appointment_id=…)``."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from clinic.records.models import Encounter
from clinic.records.services import open_encounter

from ..exceptions import SchedulingError
from ..models import Appointment
from .appointments import appointment_complete, appointment_start
from .common import S


@transaction.atomic
def appointment_start_encounter(*, appointment: Appointment, by) -> Encounter:
    """The professional calls an arrived patient in: the appointment goes ``in_progress``
    and its encounter opens (or the one already open is returned)."""
    if appointment.professional.user_id != by.pk:
        raise SchedulingError(_("Only the appointment's professional starts its encounter."))
    if appointment.status == S.ARRIVED:
        appointment_start(appointment=appointment, by=by)
    elif appointment.status != S.IN_PROGRESS:
        raise SchedulingError(_("The patient has not arrived yet."))
    return open_encounter(
        clinic=appointment.clinic,
        patient=appointment.patient,
        professional=appointment.professional,
        by=by,
        appointment_id=appointment.pk,
        service_name=appointment.service.name,
    )


@transaction.atomic
def appointment_complete_after_encounter(*, appointment_id: int) -> Appointment | None:
    """The encounter was signed: complete its appointment if it is still in progress
    (idempotent: a second delivery finds it completed)."""
    appointment = Appointment.objects.select_for_update().filter(pk=appointment_id).first()
    if appointment is None or appointment.status != S.IN_PROGRESS:
        return appointment
    return appointment_complete(appointment=appointment)


def appointment_in_care(professional, patient) -> bool:
    """An appointment (not cancelled) of ``patient`` with ``professional`` puts the patient
    in the professional's care for the record's access rules."""
    return (
        Appointment.objects.filter(
            clinic_id=patient.clinic_id, patient=patient, professional=professional
        )
        .exclude(status__in=[S.CANCELLED, S.RESCHEDULED])
        .exists()
    )
