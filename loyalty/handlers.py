"""What loyalty does when other things happen. Every handler is idempotent: it either reads
the source's current state (a payment's points) or writes under a key per source, so a
redelivered event has the effect of once."""

from integrations.events import subscriber

from . import services


@subscriber("payment.received", "payment.refunded")
def sync_payment_points(event, delivery):
    """Points per R$ paid, net of discounts; a refund or chargeback reverses its share."""
    services.payment_points_sync(clinic_id=event.clinic_id, payment_id=event.payload["payment_id"])
    patient_id = event.payload.get("patient_id")
    if event.event_type == "payment.received" and patient_id:
        services.referral_reward(clinic_id=event.clinic_id, patient_id=patient_id)


def _appointment(event):
    from scheduling.models import Appointment

    return (
        Appointment.objects.select_related("clinic", "patient")
        .filter(pk=event.payload["appointment_id"], clinic_id=event.clinic_id)
        .first()
    )


@subscriber("appointment.completed")
def attended_visit(event, delivery):
    """The attended-visit bonus; a referred patient's first visit may reward a referral."""
    appointment = _appointment(event)
    if appointment is None:
        return
    services.appointment_points_earn(appointment=appointment)
    services.referral_reward(clinic_id=event.clinic_id, patient_id=appointment.patient_id)


@subscriber("appointment.confirmed")
def confirmed_ahead(event, delivery):
    appointment = _appointment(event)
    if appointment is not None:
        services.appointment_points_earn(appointment=appointment, confirmed=True)


@subscriber("lead.created")
def referred_lead(event, delivery):
    """The CRM's lead form was opened with ``?ref=<code>``: the payload carries
    ``referral_code`` (the CRM stores it on the lead). No import of crm: by event name."""
    code = event.payload.get("referral_code")
    if code and event.payload.get("lead_id"):
        services.referral_from_lead(
            clinic_id=event.clinic_id, lead_id=event.payload["lead_id"], code=code
        )


@subscriber("lead.converted")
def referred_lead_converted(event, delivery):
    lead_id, patient_id = event.payload.get("lead_id"), event.payload.get("patient_id")
    if lead_id and patient_id:
        services.referral_convert(clinic_id=event.clinic_id, lead_id=lead_id, patient_id=patient_id)


@subscriber("feedback.received")
def answered_survey(event, delivery):
    """Hook for the satisfaction survey (when it exists): payload ``patient_id`` and
    ``feedback_id``."""
    from clinic.models import Patient

    patient = Patient.objects.filter(
        pk=event.payload.get("patient_id"), clinic_id=event.clinic_id
    ).first()
    if patient is not None and event.payload.get("feedback_id"):
        services.survey_points_earn(patient=patient, feedback_id=event.payload["feedback_id"])
