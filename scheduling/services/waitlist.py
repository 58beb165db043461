"""The waitlist: entries, offers of a freed slot (to all or one at a time), claims and
expiry."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Patient, Professional
from integrations.events import publish

from .. import conf
from ..choices import Channel, DayPeriod, OfferStatus
from ..choices import WaitlistOfferMode as OfferMode
from ..choices import WaitlistStatus as WStatus
from ..exceptions import (
    OfferUnavailable,
    SlotUnavailable,
)
from ..models import (
    Appointment,
    Service,
    WaitlistEntry,
    WaitlistOffer,
)
from .appointments import appointment_book
from .common import _occupied, _same_clinic


# --- Waitlist -------------------------------------------------------------------------------
@transaction.atomic
def waitlist_add(
    *,
    clinic: Clinic,
    patient: Patient,
    service: Service,
    earliest_date: date,
    latest_date: date,
    professional: Professional | None = None,
    period: str = DayPeriod.ANY,
    notes: str = "",
) -> WaitlistEntry:
    """Put a patient on the waitlist for a service in a date range."""
    _same_clinic(clinic, patient, service, professional)
    entry = WaitlistEntry(
        clinic=clinic,
        patient=patient,
        service=service,
        professional=professional,
        earliest_date=earliest_date,
        latest_date=latest_date,
        period=period,
        notes=notes,
    )
    entry.full_clean()
    entry.save()
    return entry


def _period_of(local_start: datetime) -> str:
    return DayPeriod.MORNING if local_start.hour < 12 else DayPeriod.AFTERNOON


@transaction.atomic
def waitlist_offer_slot(
    *,
    clinic: Clinic,
    service_id: int,
    professional_id: int,
    room_id: int | None,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> list[WaitlistOffer]:
    """Offer a freed slot to the matching waitlist entries: the oldest one, or all at once
    (clinic setting). Each offer publishes ``waitlist.offered`` (messaging sends it)."""
    now = now or timezone.now()
    if start <= now:
        return []
    service = Service.objects.for_clinic(clinic).filter(pk=service_id).first()
    if service is None:
        return []
    end, occupied_start, occupied_end = _occupied(service, start)
    if (
        Appointment.objects.filter(clinic=clinic, professional_id=professional_id)
        .occupying()
        .overlapping(occupied_start, occupied_end)
        .exists()
    ):
        return []  # someone booked it already
    local = start.astimezone(clinic_zone(clinic))
    open_for_slot = WaitlistOffer.objects.filter(
        clinic=clinic, professional_id=professional_id, start=start, status=OfferStatus.OPEN
    )
    if open_for_slot.exists():
        return []  # already on offer (e.g. the same event delivered again)
    entries = (
        WaitlistEntry.objects.select_for_update()
        .filter(
            clinic=clinic,
            service_id=service_id,
            status=WStatus.WAITING,
            earliest_date__lte=local.date(),
            latest_date__gte=local.date(),
            period__in=[DayPeriod.ANY, _period_of(local)],
        )
        .order_by("created_at", "pk")
    )
    matching = [e for e in entries if e.professional_id in (None, professional_id)]
    if conf.clinic_option(clinic, "waitlist_offer_mode") == OfferMode.ONE:
        matching = matching[:1]
    minutes = conf.clinic_option(clinic, "waitlist_offer_minutes")
    offers = []
    for entry in matching:
        offer = WaitlistOffer.objects.create(
            clinic=clinic,
            entry=entry,
            professional_id=professional_id,
            room_id=room_id,
            start=start,
            end=end,
            expires_at=now + timedelta(minutes=minutes),
        )
        entry.status = WStatus.OFFERED
        entry.save(update_fields=["status"])
        publish(
            "waitlist.offered",
            clinic=clinic,
            payload={
                "offer_id": offer.pk,
                "entry_id": entry.pk,
                "patient_id": entry.patient_id,
                "service_id": service_id,
                "professional_id": professional_id,
                "start": start.isoformat(),
                "expires_at": offer.expires_at.isoformat(),
            },
        )
        offers.append(offer)
    return offers


def waitlist_offer_claim(
    *, token: str, via: str = Channel.PORTAL, now: datetime | None = None
) -> Appointment:
    """The patient accepts an offer: the first claim books; a later one, or an expired
    offer, gets ``OfferUnavailable`` with a clear message (and the offer's new status — taken
    or expired — is kept: the error is raised after the transaction commits it)."""
    outcome = _offer_claim(token=token, via=via, now=now or timezone.now())
    if isinstance(outcome, OfferUnavailable):
        raise outcome
    return outcome


@transaction.atomic
def _offer_claim(*, token: str, via: str, now: datetime) -> Appointment | OfferUnavailable:
    offer = (
        WaitlistOffer.objects.select_for_update()
        .select_related("entry", "entry__patient", "entry__service", "clinic", "professional")
        .filter(token=token)
        .first()
    )
    if offer is None:
        return OfferUnavailable(_("This offer does not exist."))
    if offer.status == OfferStatus.TAKEN:
        return OfferUnavailable(_("Sorry, this slot was already taken by someone else."))
    if offer.status != OfferStatus.OPEN:
        return OfferUnavailable(_("This offer was already used."))
    if offer.expires_at <= now:
        _offer_expire(offer)
        return OfferUnavailable(_("This offer has expired."))
    entry = offer.entry
    try:
        # Savepoint: a lost race must not undo the offer's "taken" below.
        with transaction.atomic():
            appointment = appointment_book(
                clinic=offer.clinic,
                patient=entry.patient,
                professional=offer.professional,
                service=entry.service,
                start=offer.start,
                room=offer.room,
                booked_via=via,
            )
    except SlotUnavailable:
        offer.status = OfferStatus.TAKEN
        offer.save(update_fields=["status"])
        entry.status = WStatus.WAITING
        entry.save(update_fields=["status"])
        return OfferUnavailable(_("Sorry, this slot was already taken by someone else."))
    offer.status = OfferStatus.CLAIMED
    offer.save(update_fields=["status"])
    entry.status = WStatus.BOOKED
    entry.appointment = appointment
    entry.save(update_fields=["status", "appointment"])
    # Everyone else offered the same slot: it is gone.
    others = WaitlistOffer.objects.filter(
        clinic=offer.clinic,
        professional=offer.professional,
        start=offer.start,
        status=OfferStatus.OPEN,
    ).exclude(pk=offer.pk)
    WaitlistEntry.objects.filter(pk__in=others.values("entry_id")).update(status=WStatus.WAITING)
    others.update(status=OfferStatus.TAKEN)
    return appointment


def _offer_expire(offer: WaitlistOffer) -> None:
    offer.status = OfferStatus.EXPIRED
    offer.save(update_fields=["status"])
    if offer.entry.status == WStatus.OFFERED:
        offer.entry.status = WStatus.WAITING
        offer.entry.save(update_fields=["status"])


@transaction.atomic
def waitlist_offers_expire(*, now: datetime | None = None) -> int:
    """Expire open offers past their time; in one-at-a-time mode the slot goes to the next
    patient in line (if still free). Periodic job; idempotent."""
    now = now or timezone.now()
    expired = list(
        WaitlistOffer.objects.select_for_update(skip_locked=True)
        .select_related("entry", "clinic")
        .filter(status=OfferStatus.OPEN, expires_at__lte=now)
    )
    for offer in expired:
        _offer_expire(offer)
        if offer.entry.status == WStatus.WAITING:
            # The patient let it pass: back in the queue, behind the others.
            WaitlistEntry.objects.filter(pk=offer.entry_id).update(created_at=now)
    for offer in expired:
        if conf.clinic_option(offer.clinic, "waitlist_offer_mode") == OfferMode.ONE:
            waitlist_offer_slot(
                clinic=offer.clinic,
                service_id=offer.entry.service_id,
                professional_id=offer.professional_id,
                room_id=offer.room_id,
                start=offer.start,
                end=offer.end,
                now=now,
            )
    return len(expired)
