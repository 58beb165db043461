"""What the CRM does when other apps' events arrive (``@subscriber``, imported by
``apps.CrmConfig.ready``). Each is idempotent: redelivered, it changes nothing more
(interactions carry an ``external_key``; conversions and stage moves check the state).

- ``message.inbound``: a WhatsApp/SMS/e-mail from an unknown address becomes a lead (one
  per normalised phone and clinic, whichever of form, message or partner lands first); a
  lead's message goes on its timeline and into its score; "SAIR" withdraws the lead's
  marketing consent.
- ``appointment.booked``: the lead of that patient (or with their phone/e-mail) is scheduled.
- ``appointment.checked_in`` / ``appointment.completed``: the first attended appointment
  converts the lead (``lead.converted``) — by events, never by polling.
- ``payment.received``: on the timeline.
- ``lead.hot``: the owner is alerted (admin notification and e-mail).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.choices import ContactChannel
from clinic.messaging.replies import OPT_OUT_WORDS, normalize_reply, patient_match
from clinic.models import Clinic, Patient
from integrations.events import subscriber
from integrations.inbound import webhook_item

from . import services
from .choices import (
    Direction,
    InteractionChannel,
    InteractionKind,
    LeadSource,
    LeadStatus,
)
from .models import Interaction, Lead, LeadAlert

log = logging.getLogger(__name__)

_SOURCES = {ContactChannel.WHATSAPP: LeadSource.WHATSAPP, ContactChannel.SMS: LeadSource.SMS}


@subscriber("message.inbound", name="crm.handlers.lead_from_message")
def lead_from_message(event, delivery):
    found = webhook_item(event.payload["inbound_webhook_id"], event.payload["item"])
    if found is None:
        return
    webhook, item = found
    clinic = Clinic.objects.get(pk=event.clinic_id)
    channel = webhook.account.kind
    address = (item.from_address or "").strip()
    if not address:
        return
    key = f"inbound:{webhook.pk}:{event.payload['item']}"
    is_email = channel == ContactChannel.EMAIL
    lead = _lead_for_address(clinic=clinic, address=address, email=is_email)
    if normalize_reply(item.text) in OPT_OUT_WORDS:
        if lead is not None and lead.marketing_consent:
            Lead.objects.filter(pk=lead.pk).update(marketing_consent=False)
        return
    patient = patient_match(clinic=clinic, channel=channel, address=address)
    if lead is None and patient is not None:
        return  # a patient writing: messaging's timeline has it, no lead to work
    if lead is None:
        try:
            services.lead_capture(
                clinic=clinic,
                name=item.sender_name,
                # The 9-digit form: WhatsApp reports some mobiles by their old 8 digits.
                phone="" if is_email else services.phone_key(address),
                email=address if is_email else "",
                message=item.text[:5000],
                source=_SOURCES.get(channel, LeadSource.OTHER),
                channel=channel,
                kind=InteractionKind.MESSAGE,
                external_key=key,
                at=item.received_at,
            )
        except Exception as exc:  # a sender address that is no phone: nothing to capture
            from django.core.exceptions import ValidationError

            if not isinstance(exc, ValidationError):
                raise
            log.info("inbound message from an address that is no phone: not a lead")
        return
    services.interaction_record(
        clinic=clinic,
        lead=lead,
        kind=InteractionKind.MESSAGE,
        channel=channel,
        direction=Direction.INBOUND,
        handler=Interaction.Handler.CONTACT,
        summary=item.text[:500],
        external_key=key,
        at=item.received_at,
    )


def _lead_for_address(*, clinic: Clinic, address: str, email: bool) -> Lead | None:
    leads = Lead.objects.for_clinic(clinic).filter(anonymised_at__isnull=True)
    if email:
        return leads.filter(email=address.lower()).first()
    key = services.phone_key(address)
    return leads.filter(phone_key=key).first() if key else None


def _leads_of_patient(patient: Patient) -> list[Lead]:
    """The patient's leads: linked to them, or (not linked yet) with their phone/e-mail."""
    match = Q(patient=patient)
    if patient.phone:
        match |= Q(patient__isnull=True, phone_key=services.phone_key(patient.phone))
    if patient.email:
        match |= Q(patient__isnull=True, email=patient.email.lower())
    return list(
        Lead.objects.for_clinic(patient.clinic_id)
        .filter(match, anonymised_at__isnull=True)
        .order_by("pk")
    )


@subscriber("appointment.booked", name="crm.handlers.lead_scheduled")
def lead_scheduled(event, delivery):
    payload = event.payload
    patient = Patient.objects.filter(pk=payload["patient_id"], clinic_id=event.clinic_id).first()
    if patient is None:
        return
    leads = _leads_of_patient(patient)
    via = payload.get("via", "")
    for lead in leads:
        with transaction.atomic():
            if lead.patient_id is None:
                Lead.objects.filter(pk=lead.pk).update(patient=patient)
                lead.patient = patient
            if lead.status in (
                LeadStatus.NEW,
                LeadStatus.CONTACTED,
                LeadStatus.INTERESTED,
                LeadStatus.LOST,
            ):
                services.lead_transition(lead=lead, to=LeadStatus.SCHEDULED)
    services.interaction_record(
        clinic=event.clinic_id,
        lead=leads[0] if leads else None,
        patient=patient,
        kind=InteractionKind.BOOKING,
        channel=InteractionChannel.PORTAL if via == "portal" else InteractionChannel.SYSTEM,
        direction=Direction.INBOUND if via in ("portal", "whatsapp", "api") else Direction.INTERNAL,
        summary=_("Appointment booked"),
        detail={"appointment_id": payload["appointment_id"], "via": via},
        external_key=f"appointment.booked:{payload['appointment_id']}",
    )


@subscriber("appointment.checked_in", "appointment.completed", name="crm.handlers.lead_converted")
def lead_converted(event, delivery):
    payload = event.payload
    patient = Patient.objects.filter(pk=payload["patient_id"], clinic_id=event.clinic_id).first()
    if patient is None:
        return
    leads = _leads_of_patient(patient)
    for lead in leads:
        if lead.status != LeadStatus.CONVERTED:
            services.lead_convert(lead=lead, patient=patient)
    services.interaction_record(
        clinic=event.clinic_id,
        lead=leads[0] if leads else None,
        patient=patient,
        kind=InteractionKind.ATTENDED,
        channel=InteractionChannel.IN_PERSON,
        summary=_("Came to the appointment"),
        detail={"appointment_id": payload["appointment_id"]},
        external_key=f"attended:{payload['appointment_id']}",
        rescore=False,
    )


@subscriber("payment.received", name="crm.handlers.payment_on_timeline")
def payment_on_timeline(event, delivery):
    payload = event.payload
    patient = Patient.objects.filter(pk=payload["patient_id"], clinic_id=event.clinic_id).first()
    if patient is None:
        return
    leads = _leads_of_patient(patient)
    services.interaction_record(
        clinic=event.clinic_id,
        lead=leads[0] if leads else None,
        patient=patient,
        kind=InteractionKind.PAYMENT,
        channel=InteractionChannel.SYSTEM,
        direction=Direction.INBOUND,
        summary=_("Payment received: R$ %(amount)s") % {"amount": payload.get("amount", "")},
        detail={"payment_id": payload["payment_id"]},
        external_key=f"payment.received:{payload['payment_id']}",
        rescore=False,
    )


@subscriber("lead.hot", name="crm.handlers.alert_hot_lead")
def alert_hot_lead(event, delivery):
    """The owner hears of a hot lead at once: a notification in the admin and an e-mail
    (staff have no WhatsApp address in Cuidar; the e-mail is their channel)."""
    lead = Lead.objects.select_related("owner").filter(pk=event.payload["lead_id"]).first()
    if lead is None or lead.owner is None:
        return
    if LeadAlert.objects.filter(lead=lead, user=lead.owner, read_at__isnull=True).exists():
        return  # one unread alert per lead is enough
    alert = LeadAlert.objects.create(clinic_id=lead.clinic_id, lead=lead, user=lead.owner)
    email = lead.owner.email
    if email:
        subject = _("Hot lead: %(name)s") % {"name": lead.name}
        body = _(
            "%(name)s is a hot lead (score %(score)s, source %(source)s). Open the CRM to "
            "get in touch."
        ) % {"name": lead.name, "score": lead.score, "source": lead.get_source_display()}

        def deliver():
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
            LeadAlert.objects.filter(pk=alert.pk).update(sent_at=timezone.now())

        transaction.on_commit(deliver, robust=True)
