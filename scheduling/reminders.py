"""The agenda's messages: confirmations, reminders, no-shows, waitlist offers, and what
patients answer.

Sends go through ``clinic.messaging.services.message_send`` with one idempotency key per job
and appointment (``reminder-48h:<id>`` …), so a sweep that runs twice, or two overlapping
runs, send each message once. Sweeps are periodic jobs (``config/celery.py``) that select due rows
per clinic, in bounded batches, on the ``(clinic, status, start)`` index — never Celery ETA
tasks scheduled days ahead.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import formats, timezone, translation

from clinic.choices import ContactChannel, ReplyAction
from clinic.kernel.timezones import clinic_zone
from clinic.messaging.models import OutboundMessage
from clinic.messaging.services import (
    ReplyOutcome,
    first_channel,
    first_channels,
    message_send,
    messages_send_many,
    normalize_reply,
    reply_handler,
)
from clinic.models import Clinic, Patient
from clinic.selectors import clinics_at_local_hours

from . import conf
from .choices import AppointmentStatus as S
from .choices import Channel
from .exceptions import CancellationWindowClosed, InvalidTransition
from .links import AppointmentLinks
from .models import Appointment, WaitlistOffer
from .services import appointment_cancel, appointment_confirm, appointment_mark_no_show

logger = logging.getLogger(__name__)

#: Language of the dates in messages (weekday names): the patients' language.
MESSAGE_LANGUAGE = "pt-br"
REMINDER_48H = "reminder-48h"
REMINDER_EVE = "reminder-eve"
BATCH = 500
#: No-show detection looks this far back (older ones are reception's to settle).
NO_SHOW_LOOKBACK = timedelta(days=7)

CONFIRM_WORDS = frozenset({"1", "SIM", "S", "CONFIRMO", "CONFIRMAR", "CONFIRMADO", "CONFIRMADA"})
RESCHEDULE_WORDS = frozenset({"2", "REMARCAR", "REMARCA", "REAGENDAR", "REMARCACAO"})
CANCEL_WORDS = frozenset({"3", "CANCELAR", "CANCELA", "CANCELO", "CANCELAMENTO"})
#: Appointments a patient's reply can act on.
PENDING = (S.SCHEDULED, S.CONFIRMED)
_REPLY_VIA = {
    ContactChannel.WHATSAPP: Channel.WHATSAPP,
    ContactChannel.SMS: Channel.SMS,
    ContactChannel.EMAIL: Channel.EMAIL,
}


# --- Context --------------------------------------------------------------------------------
def _local(clinic: Clinic, moment: datetime) -> datetime:
    return moment.astimezone(clinic_zone(clinic))


def _weekday(day: date) -> str:
    """The weekday's name in the patients' language, as in a sentence ("quarta-feira")."""
    with translation.override(MESSAGE_LANGUAGE):
        return formats.date_format(day, "l").lower()


def appointment_context(
    appointment: Appointment,
    *,
    channel: str,
    links: bool = True,
    signer: AppointmentLinks | None = None,
    weekdays: dict[date, str] | None = None,
) -> dict:
    """The variables of an appointment's messages: date and time in the clinic's zone,
    names, address, preparation and the one-click links. A batch passes one ``signer``
    (:class:`~scheduling.links.AppointmentLinks`) and one ``weekdays`` cache for all its
    appointments."""
    from .links import appointment_link

    clinic = appointment.clinic
    local = _local(clinic, appointment.start)
    if weekdays is None:
        weekday = _weekday(local.date())
    elif (weekday := weekdays.get(local.date())) is None:
        weekday = weekdays[local.date()] = _weekday(local.date())
    context = {
        "date": local.strftime("%d/%m/%Y"),
        "weekday": weekday,
        "time": local.strftime("%H:%M"),
        "professional": appointment.professional.full_name,
        "service": appointment.service.name,
        "address": clinic.address_line,
        "preparation": appointment.service.preparation_instructions,
        "hours": str(appointment.service.cancellation_window_hours),
    }
    if links and signer is not None:
        for action, url in signer(appointment_id=appointment.pk, channel=channel).items():
            context[f"{action}_link"] = url
    elif links:
        for action in ("confirm", "cancel", "reschedule"):
            context[f"{action}_link"] = appointment_link(
                appointment=appointment, action=action, channel=channel
            )
    return context


def appointment_message_send(appointment: Appointment, *, template: str, key: str):
    """Send ``template`` about ``appointment`` to its patient, once per ``key``."""
    patient = appointment.patient
    channel = first_channel(patient=patient)
    return message_send(
        clinic=appointment.clinic,
        patient=patient,
        template=template,
        context=appointment_context(appointment, channel=channel),
        idempotency_key=key,
    )


def _not_sent_yet(prefix: str):
    """Appointments without an ``OutboundMessage`` keyed ``<prefix>:<appointment id>``
    (an index lookup on the unique key per row)."""
    key = Concat(Value(f"{prefix}:"), Cast(OuterRef("pk"), CharField()))
    return ~Exists(OutboundMessage.objects.filter(idempotency_key=key))


def _appointments(clinic: Clinic):
    return Appointment.objects.for_clinic(clinic).select_related(
        "clinic", "patient", "patient__clinic", "professional", "service"
    )


def _due(clinic: Clinic):
    """A sweep's appointments with what their messages name (the clinic is the sweep's:
    not joined again for every row)."""
    return Appointment.objects.for_clinic(clinic).select_related(
        "patient", "professional", "service"
    )


def _read(queryset) -> list:
    """The rows of a batch read, planned with its values on PostgreSQL. Connections force
    generic plans for prepared statements (``config/settings.py``), and the generic plan of
    this read, not knowing where in the window the batch starts, joins and sorts the whole
    rest of it every time (EXPLAIN in the middle of 100,000 due: 1,039 ms against 33 ms)."""
    if connection.vendor != "postgresql":
        return list(queryset)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return list(queryset)


def _send_batches(queryset, *, clinic: Clinic, template: str, prefix: str) -> int:
    """Send ``template`` about every appointment of ``queryset`` not sent yet, a batch at a
    time: each batch reads its patients' consents in one query and records its messages in
    one statement and one transaction (``messages_send_many``), so a sweep costs a few
    queries per batch, not several per message."""
    sent = 0
    after = Q()
    while True:
        # From where the last batch ended: every due row is read once, not once a batch.
        batch = _read(queryset.filter(after, _not_sent_yet(prefix)).order_by("start", "pk")[:BATCH])
        if batch:
            for appointment in batch:
                appointment.clinic = appointment.patient.clinic = clinic
            channels = first_channels(clinic=clinic, patients=[a.patient for a in batch])
            signer, weekdays = AppointmentLinks(), {}
            sent += messages_send_many(
                clinic=clinic,
                template=template,
                messages=[
                    (
                        appointment.patient,
                        appointment_context(
                            appointment,
                            channel=channels[appointment.patient_id],
                            signer=signer,
                            weekdays=weekdays,
                        ),
                        f"{prefix}:{appointment.pk}",
                    )
                    for appointment in batch
                ],
            )
        if len(batch) < BATCH:
            return sent
        last = batch[-1]
        # ``start >=`` first: the index range starts there (an OR alone scans the window).
        after = Q(start__gte=last.start) & (Q(start__gt=last.start) | Q(pk__gt=last.pk))


# --- Sweeps ---------------------------------------------------------------------------------
def reminders_48h_send(
    *, now: datetime | None = None, local_hours: Collection[int] | None = None
) -> int:
    """Remind appointments starting 24 to 48 hours from now (runs at 08:00 and 18:00 of
    each clinic's time, ``local_hours``, so every appointment booked ahead falls in one
    run's window; without them every clinic now). Returns how many were queued; a repeat
    queues none."""
    now = now or timezone.now()
    total = 0
    for clinic in clinics_at_local_hours(hours=local_hours, now=now):
        due = _due(clinic).filter(
            status__in=PENDING,
            start__gte=now + timedelta(hours=24),
            start__lte=now + timedelta(hours=48),
        )
        total += _send_batches(
            due, clinic=clinic, template="lembrete_consulta", prefix=REMINDER_48H
        )
    return total


def reminders_eve_send(
    *, now: datetime | None = None, local_hours: Collection[int] | None = None
) -> int:
    """The eve reminder (18:00 of each clinic's time, ``local_hours``; without them every
    clinic now): tomorrow's appointments, in each clinic's own calendar, that the patient
    has not confirmed yet."""
    from .services import local_day_bounds

    now = now or timezone.now()
    total = 0
    for clinic in clinics_at_local_hours(hours=local_hours, now=now):
        tomorrow = _local(clinic, now).date() + timedelta(days=1)
        start, end = local_day_bounds(clinic, tomorrow)
        due = _due(clinic).filter(status=S.SCHEDULED, start__gte=max(start, now), start__lt=end)
        total += _send_batches(due, clinic=clinic, template="lembrete_vespera", prefix=REMINDER_EVE)
    return total


def no_shows_detect(*, now: datetime | None = None) -> int:
    """Mark as no-show the appointments that ended more than the clinic's grace period ago
    with no arrival (every 30 minutes). Each mark is its own transaction; an appointment
    another run (or reception) moved meanwhile is skipped. The ``appointment.no_show`` event
    sends the follow-up."""
    now = now or timezone.now()
    marked = 0
    for clinic in clinics_at_local_hours(hours=None):
        grace = timedelta(minutes=conf.clinic_option(clinic, "no_show_grace_minutes"))
        due = list(
            Appointment.objects.for_clinic(clinic)
            .filter(
                status__in=PENDING,
                start__gte=now - NO_SHOW_LOOKBACK,
                end__lte=now - grace,
                arrived_at__isnull=True,
            )
            .order_by("start", "pk")[:BATCH]
        )
        for appointment in due:
            try:
                appointment_mark_no_show(appointment=appointment)
            except InvalidTransition:
                continue  # arrived, cancelled or marked meanwhile
            marked += 1
    return marked


# --- Event reactions ------------------------------------------------------------------------
def booking_confirmation_send(*, appointment_id: int) -> None:
    appointment = Appointment.objects.select_related(
        "clinic", "patient", "patient__clinic", "professional", "service"
    ).get(pk=appointment_id)
    if appointment.status not in PENDING or appointment.start <= timezone.now():
        return
    appointment_message_send(
        appointment, template="confirmacao", key=f"confirmacao:{appointment.pk}"
    )


def no_show_follow_up_send(*, appointment_id: int) -> None:
    appointment = Appointment.objects.select_related(
        "clinic", "patient", "patient__clinic", "professional", "service"
    ).get(pk=appointment_id)
    if appointment.status != S.NO_SHOW:
        return
    patient = appointment.patient
    message_send(
        clinic=appointment.clinic,
        patient=patient,
        template="falta_consulta",
        context=appointment_context(
            appointment, channel=first_channel(patient=patient), links=False
        ),
        idempotency_key=f"no-show:{appointment.pk}",
    )


def waitlist_offer_send(*, offer_id: int) -> None:
    from .links import offer_link

    offer = (
        WaitlistOffer.objects.select_related(
            "clinic", "entry__patient", "entry__patient__clinic", "entry__service", "professional"
        )
        .filter(pk=offer_id)
        .first()
    )
    if offer is None:
        return
    patient: Patient = offer.entry.patient
    channel = first_channel(patient=patient)
    local = _local(offer.clinic, offer.start)
    message_send(
        clinic=offer.clinic,
        patient=patient,
        template="vaga_disponivel",
        context={
            "date": local.strftime("%d/%m/%Y"),
            "time": local.strftime("%H:%M"),
            "professional": offer.professional.full_name,
            "service": offer.entry.service.name,
            "claim_link": offer_link(offer=offer, channel=channel),
            "expires": _local(offer.clinic, offer.expires_at).strftime("%H:%M"),
        },
        idempotency_key=f"waitlist-offer:{offer.pk}",
    )


# --- Replies --------------------------------------------------------------------------------
def _next_pending(patient: Patient) -> Appointment | None:
    return (
        _appointments(patient.clinic_id)
        .filter(patient=patient, status__in=PENDING, start__gt=timezone.now())
        .order_by("start", "pk")
        .first()
    )


@reply_handler
def appointment_reply(*, message, patient: Patient, channel: str) -> ReplyOutcome | None:
    """ "1"/"sim" confirms, "2" sends a link to reschedule, "3" cancels (when the window
    allows; otherwise the patient is told and reception alerted) — always the patient's
    next pending appointment. Other texts are not ours (``None``)."""
    from .links import appointment_link

    word = normalize_reply(message.text)
    if word in CONFIRM_WORDS:
        intent = "confirm"
    elif word in RESCHEDULE_WORDS:
        intent = "reschedule"
    elif word in CANCEL_WORDS:
        intent = "cancel"
    else:
        return None
    appointment = _next_pending(patient)
    if appointment is None:
        return ReplyOutcome(action=ReplyAction.NO_APPOINTMENT, template="resposta_sem_consulta")
    via = _REPLY_VIA.get(channel, Channel.PHONE)
    detail = {"appointment_id": appointment.pk}
    context = appointment_context(appointment, channel=channel, links=False)
    if intent == "confirm":
        if appointment.status != S.CONFIRMED:
            appointment_confirm(appointment=appointment, via=via)
        return ReplyOutcome(
            action=ReplyAction.CONFIRMED,
            template="resposta_confirmada",
            context=context,
            detail=detail,
        )
    if intent == "reschedule":
        context["reschedule_link"] = appointment_link(
            appointment=appointment, action="reschedule", channel=channel
        )
        return ReplyOutcome(
            action=ReplyAction.RESCHEDULE_LINK,
            template="resposta_remarcar",
            context=context,
            detail=detail,
        )
    try:
        # Savepoint: a refusal must not undo the record of the patient's message.
        with transaction.atomic():
            appointment_cancel(
                appointment=appointment,
                via=via,
                reason="cancelled by the patient's reply",
                enforce_window=True,
            )
    except CancellationWindowClosed:
        return ReplyOutcome(
            action=ReplyAction.CANCEL_REFUSED,
            template="resposta_fora_prazo",
            context=context,
            needs_reply=True,  # reception calls the patient
            detail=detail,
        )
    return ReplyOutcome(
        action=ReplyAction.CANCELLED, template="resposta_cancelada", context=context, detail=detail
    )
