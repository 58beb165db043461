"""Leads: capture from every channel with deduplication (one lead per person and clinic),
the funnel's transitions, conversion, the interactions timeline and scoring."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.choices import MembershipRole
from clinic.models import Clinic, Membership, Patient
from clinic.validators import cpf_normalize, phone_normalize, phone_variants
from integrations import events

from .. import scoring
from ..choices import (
    LEAD_TRANSITIONS,
    Direction,
    InteractionChannel,
    InteractionKind,
    LeadSource,
    LeadStatus,
    Temperature,
)
from ..exceptions import InvalidLeadTransition
from ..models import Interaction, Lead, LeadAlert, MarketingSettings

#: Roles that work leads: round-robin assignment picks among the clinic's active members
#: with one of them.
SALES_ROLES = (MembershipRole.RECEPTIONIST, MembershipRole.MANAGER)
#: Seed 004, LGPD table: marketing data is kept 2 years.
RETENTION = timedelta(days=730)


def phone_key(phone: str) -> str:
    """One form per phone number, so "+55 11 9 8765-4321" and WhatsApp's 8-digit
    "+55 11 8765-4321" are the same person: the longest of ``phone_variants``."""
    variants = phone_variants(phone)
    return max(variants, key=len) if variants else ""


def marketing_settings(clinic: Clinic | int) -> MarketingSettings:
    """The clinic's marketing settings, created with the defaults the first time."""
    clinic_id = getattr(clinic, "pk", clinic)
    found = MarketingSettings.objects.filter(clinic_id=clinic_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return MarketingSettings.objects.create(clinic_id=clinic_id)
    except IntegrityError:
        return MarketingSettings.objects.get(clinic_id=clinic_id)


def _source(value: str) -> str:
    value = (value or "").strip().lower()
    return value if value in LeadSource.values else (LeadSource.OTHER if value else "")


def _matching_patient(*, clinic: Clinic, key: str, email: str, cpf: str) -> Patient | None:
    """The clinic's patient with this CPF, phone or e-mail (in that order of trust)."""
    patients = Patient.objects.for_clinic(clinic)
    if cpf:
        found = patients.filter(cpf=cpf).first()
        if found:
            return found
    if key:
        found = patients.filter(phone__in=phone_variants(key)).order_by("pk").first()
        if found:
            return found
    if email:
        return patients.filter(email__iexact=email).order_by("pk").first()
    return None


_TOUCH_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "referrer",
    "landing_page",
)


@transaction.atomic
def lead_capture(
    *,
    clinic: Clinic,
    name: str = "",
    phone: str = "",
    email: str = "",
    cpf: str = "",
    message: str = "",
    source: str = "",
    interest_type: str = "",
    marketing_consent: bool = False,
    referral_code: str = "",
    channel: str = InteractionChannel.WEBSITE,
    kind: str = InteractionKind.FORM,
    direction: str = Direction.INBOUND,
    external_key: str | None = None,
    by=None,
    at: datetime | None = None,
    **touch: str,
) -> tuple[Lead, bool]:
    """Someone showed interest (a form, a WhatsApp from an unknown number, a partner, staff):
    their lead, created or — when the clinic already has one with this phone or e-mail —
    updated, never duplicated. Returns (lead, created).

    The first touch (source, UTM, click ids, referrer) stays; ``last_touch`` moves. Two
    leads matching (one by phone, the other by e-mail) are merged, interactions kept. The
    lead is linked to the patient with the same CPF, phone or e-mail. A new lead gets an
    owner (round-robin) and publishes ``lead.created`` (with ``referral_code`` for loyalty).
    Raises ``ValidationError`` (by field) for a phone that is not a phone, or no contact.
    """
    unknown = set(touch) - set(_TOUCH_FIELDS)
    if unknown:
        raise TypeError(f"lead_capture() got unknown fields: {sorted(unknown)}")
    now = at or timezone.now()
    phone = (phone or "").strip()
    if phone:
        try:
            phone = phone_normalize(phone)
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from None
    email = (email or "").strip().lower()
    if not phone and not email:
        raise ValidationError(
            {"phone": [_("Give a phone number or an e-mail to reach this person.")]}
        )
    cpf = cpf_normalize(cpf) if cpf else ""
    key = phone_key(phone)
    referral_code = (referral_code or "").strip()[:32]
    source = _source(source) or (LeadSource.REFERRAL if referral_code else LeadSource.OTHER)
    if referral_code:
        source = LeadSource.REFERRAL
    touch = {k: (v or "").strip() for k, v in touch.items() if v}
    last_touch = {"source": source, "at": now.isoformat(), **touch}

    match = Q()
    if key:
        match |= Q(phone_key=key)
    if email:
        match |= Q(email=email)
    # Locked in primary-key order: two captures of the same person wait for each other.
    found = list(Lead.objects.for_clinic(clinic).filter(match).select_for_update().order_by("pk"))
    created = False
    if found:
        lead = found[0]
        for other in found[1:]:
            lead_merge(into=lead, other=other)
    else:
        lead = Lead(
            clinic=clinic,
            name=(name or "").strip()[:255] or phone or email,
            phone=phone,
            phone_key=key,
            email=email,
            message=message,
            source=source,
            last_source=source,
            interest_type=interest_type,
            referral_code=referral_code,
            last_touch=last_touch,
            stage_changed_at=now,
            **dict(touch.items()),
        )
        lead.full_clean(exclude=["owner", "patient", "campaign"])
        try:
            with transaction.atomic():  # savepoint: the same person may land elsewhere first
                lead.save()
            created = True
        except IntegrityError:
            lead = Lead.objects.select_for_update().get(Q(clinic=clinic) & match)
    if not created:
        changed = {"last_touch", "last_source", "updated_at"}
        lead.last_touch, lead.last_source = last_touch, source
        for field, value in (
            ("phone", phone),
            ("email", email),
            ("interest_type", interest_type),
            ("referral_code", referral_code),
        ):
            if value and not getattr(lead, field):
                setattr(lead, field, value)
                changed.add(field)
        if phone and not lead.phone_key:
            lead.phone_key = key
            changed.add("phone_key")
        if name and lead.name in ("", lead.phone, lead.email):
            lead.name = name.strip()[:255]
            changed.add("name")
        if message:
            lead.message = (f"{lead.message}\n\n{message}" if lead.message else message)[:5000]
            changed.add("message")
        if lead.status == LeadStatus.LOST:
            # They came back: the lost lead is worked on again.
            lead.status, lead.loss_reason, lead.stage_changed_at = LeadStatus.CONTACTED, "", now
            changed |= {"status", "loss_reason", "stage_changed_at"}
        lead.save(update_fields=sorted(changed))
    if marketing_consent and not lead.marketing_consent:
        lead.marketing_consent, lead.marketing_consent_at = True, now
        lead.save(update_fields=["marketing_consent", "marketing_consent_at"])
    if lead.patient_id is None:
        patient = _matching_patient(clinic=clinic, key=key, email=email, cpf=cpf)
        if patient is not None:
            lead.patient = patient
            lead.save(update_fields=["patient"])
    if created:
        lead_assign_owner(lead=lead)
        events.publish(
            "lead.created",
            clinic=clinic,
            payload={"lead_id": lead.pk, "source": lead.source, "referral_code": referral_code},
        )
    interaction_record(
        clinic=clinic,
        lead=lead,
        kind=kind,
        channel=channel,
        direction=direction,
        handler=Interaction.Handler.HUMAN if by else Interaction.Handler.CONTACT,
        staff=by,
        summary=(message or "")[:500],
        detail={"source": source, **{k: v for k, v in touch.items() if k.startswith("utm_")}},
        external_key=external_key,
        at=now,
    )
    return lead, created


def lead_create(*, clinic: Clinic, name: str, source: str = "", **fields) -> Lead:
    """A lead from the partner API (or staff): :func:`lead_capture` from that channel."""
    lead, _created = lead_capture(
        clinic=clinic,
        name=name,
        source=source or LeadSource.PARTNER,
        channel=InteractionChannel.SYSTEM,
        **fields,
    )
    return lead


@transaction.atomic
def lead_merge(*, into: Lead, other: Lead) -> Lead:
    """``other`` is the same person as ``into``: its interactions, alerts and anything
    ``into`` lacks move over, and ``other`` goes. The older lead is kept (its first touch
    is the real first touch)."""
    if into.clinic_id != other.clinic_id or into.pk == other.pk:
        raise ValueError("merge two leads of one clinic")
    Interaction.objects.filter(lead=other).update(lead=into)
    LeadAlert.objects.filter(lead=other).update(lead=into)
    taken = {}
    for field in (
        "phone",
        "phone_key",
        "email",
        "interest_type",
        "referral_code",
        "patient_id",
        "owner_id",
        "gclid",
        "fbclid",
        "referrer",
    ):
        if getattr(other, field) and not getattr(into, field):
            taken[field] = getattr(other, field)
    if other.marketing_consent and not into.marketing_consent:
        taken["marketing_consent"] = True
        taken["marketing_consent_at"] = other.marketing_consent_at
    other_id = other.pk
    other.delete()  # first: its phone or e-mail is unique and may move to ``into``
    for field, value in taken.items():
        setattr(into, field, value)
    if taken:
        into.save(update_fields=list(taken))
    _refresh_counters(into)
    events.publish(
        "lead.updated",
        clinic=into.clinic_id,
        payload={"lead_id": into.pk, "merged_lead_id": other_id, "fields": sorted(taken)},
    )
    return into


def lead_transition(
    *, lead: Lead, to: str, by=None, loss_reason: str = "", at: datetime | None = None
) -> Lead:
    """Move a lead through the funnel (``choices.LEAD_TRANSITIONS``), recorded on its
    timeline; ``lead.converted`` when it becomes converted. Raises InvalidLeadTransition."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        if lead.status == to:
            return lead
        if to not in LEAD_TRANSITIONS.get(lead.status, ()):
            raise InvalidLeadTransition(
                _("A lead cannot go from “%(from)s” to “%(to)s”.")
                % {"from": lead.get_status_display(), "to": LeadStatus(to).label}
            )
        if to == LeadStatus.LOST and not loss_reason:
            raise InvalidLeadTransition(
                _("Say why the lead was lost."), fields={"loss_reason": [_("Required.")]}
            )
        now = at or timezone.now()
        before = lead.status
        lead.status, lead.stage_changed_at = to, now
        lead.loss_reason = loss_reason if to == LeadStatus.LOST else ""
        fields = ["status", "stage_changed_at", "loss_reason", "updated_at"]
        if to == LeadStatus.CONVERTED:
            lead.converted_at = now
            fields.append("converted_at")
        lead.save(update_fields=fields)
        interaction_record(
            clinic=lead.clinic_id,
            lead=lead,
            kind=InteractionKind.STAGE,
            channel=InteractionChannel.SYSTEM,
            handler=Interaction.Handler.HUMAN if by else Interaction.Handler.SYSTEM,
            staff=by,
            summary=f"{before} → {to}",
            detail={"from": before, "to": to, "loss_reason": lead.loss_reason},
            at=now,
            rescore=False,
        )
        if to == LeadStatus.CONVERTED:
            events.publish(
                "lead.converted",
                clinic=lead.clinic_id,
                payload={"lead_id": lead.pk, "patient_id": lead.patient_id},
            )
        else:
            events.publish(
                "lead.updated",
                clinic=lead.clinic_id,
                payload={"lead_id": lead.pk, "fields": ["status"]},
            )
    return lead


@transaction.atomic
def lead_convert(*, lead: Lead, patient: Patient, at: datetime | None = None) -> Lead:
    """The lead's first appointment was attended: it is converted, linked to ``patient``."""
    if patient.clinic_id != lead.clinic_id:
        raise ValueError("the patient belongs to another clinic")
    if lead.patient_id != patient.pk:
        lead.patient = patient
        lead.save(update_fields=["patient"])
    if lead.status == LeadStatus.CONVERTED:
        return lead
    return lead_transition(lead=lead, to=LeadStatus.CONVERTED, at=at)


@transaction.atomic
def lead_patient_create(*, lead: Lead, by=None) -> Patient:
    """Reception registers the lead as a patient to book them: the patient gets the lead's
    name, phone and e-mail (and its marketing consent, with the form as its source); the
    lead is linked to it. An existing patient with that phone or e-mail is reused."""
    from clinic import services as clinic_services
    from clinic.choices import ConsentPurpose, ConsentSource, ConsentStatus, ContactChannel

    if lead.patient_id:
        return lead.patient
    patient = _matching_patient(clinic=lead.clinic, key=lead.phone_key, email=lead.email, cpf="")
    if patient is None:
        patient = clinic_services.patient_create(
            clinic=lead.clinic,
            full_name=lead.name,
            phone=lead.phone,
            email=lead.email,
            lead_source=lead.source[:50],
        )
        if lead.marketing_consent:
            for channel, address in (
                (ContactChannel.WHATSAPP, lead.phone),
                (ContactChannel.EMAIL, lead.email),
            ):
                if address:
                    clinic_services.consent_record(
                        patient=patient,
                        channel=channel,
                        purpose=ConsentPurpose.MARKETING,
                        status=ConsentStatus.GRANTED,
                        source=ConsentSource.RECEPTION,
                        text_version=f"crm-lead-form:{lead.pk}",
                        recorded_by=by,
                    )
    lead.patient = patient
    lead.save(update_fields=["patient"])
    return patient


# --- Timeline -------------------------------------------------------------------------------
def interaction_record(
    *,
    clinic: Clinic | int,
    kind: str,
    lead: Lead | None = None,
    patient: Patient | None = None,
    channel: str = "",
    direction: str = Direction.INTERNAL,
    handler: str = Interaction.Handler.SYSTEM,
    staff=None,
    summary: str = "",
    detail: dict | None = None,
    external_key: str | None = None,
    at: datetime | None = None,
    rescore: bool = True,
) -> Interaction | None:
    """Add an entry to a lead's and/or patient's timeline, once per ``external_key``
    (None when it was already there). The lead's counters and score follow."""
    clinic_id = getattr(clinic, "pk", clinic)
    with transaction.atomic():
        if (
            external_key
            and Interaction.objects.filter(clinic_id=clinic_id, external_key=external_key).exists()
        ):
            return None
        interaction = Interaction(
            clinic_id=clinic_id,
            lead=lead,
            patient=patient if patient is not None else (lead.patient if lead else None),
            kind=kind,
            channel=channel,
            direction=direction,
            handler=handler,
            staff=staff,
            summary=(summary or "")[:500],
            detail=detail or {},
            external_key=external_key,
            at=at or timezone.now(),
        )
        try:
            with transaction.atomic():
                interaction.save()
        except IntegrityError:
            return None  # the same event landed meanwhile
        if lead is not None and kind != InteractionKind.STAGE:
            _refresh_counters(lead)
            if rescore:
                lead_rescore(lead=lead)
    return interaction


def _refresh_counters(lead: Lead) -> None:
    counted = Interaction.objects.filter(lead=lead).exclude(kind=InteractionKind.STAGE)
    stats = counted.aggregate(n=Count("pk"), last=Max("at"))
    lead.interaction_count, lead.last_interaction_at = stats["n"], stats["last"]
    Lead.objects.filter(pk=lead.pk).update(
        interaction_count=stats["n"], last_interaction_at=stats["last"]
    )


def lead_rescore(*, lead: Lead, now: datetime | None = None) -> Lead:
    """Recompute the lead's score and temperature from marketing facts only; turning hot
    publishes ``lead.hot`` (its owner is alerted within a minute, ``handlers``)."""
    now = now or timezone.now()
    conf = marketing_settings(lead.clinic_id)
    stats = Interaction.objects.filter(lead=lead).aggregate(
        inbound=Count("pk", filter=Q(kind=InteractionKind.MESSAGE, direction=Direction.INBOUND)),
        outbound=Count("pk", filter=Q(kind=InteractionKind.MESSAGE, direction=Direction.OUTBOUND)),
        visits=Count("pk", filter=Q(kind=InteractionKind.BOOKING_PAGE)),
        calls=Count("pk", filter=Q(kind=InteractionKind.CALL)),
    )
    facts = scoring.LeadFacts(
        source=lead.source,
        interest_type=lead.interest_type,
        marketing_consent=lead.marketing_consent,
        inbound_messages=stats["inbound"],
        # A reply: they wrote after we did.
        replied=bool(stats["outbound"] and stats["inbound"]),
        booking_page_visits=stats["visits"],
        calls=stats["calls"],
        last_interaction_at=lead.last_interaction_at,
    )
    value = scoring.score(facts, rules=scoring.rules_for(conf.scoring_rules), now=now)
    temperature = scoring.temperature(value, warm_from=conf.warm_from, hot_from=conf.hot_from)
    before = Lead.objects.filter(pk=lead.pk).values_list("temperature", flat=True).first()
    lead.score, lead.temperature = value, temperature
    Lead.objects.filter(pk=lead.pk).update(score=value, temperature=temperature)
    if temperature == Temperature.HOT and before != Temperature.HOT:
        events.publish(
            "lead.hot", clinic=lead.clinic_id, payload={"lead_id": lead.pk, "score": value}
        )
    return lead


# --- Owners ---------------------------------------------------------------------------------
def lead_assign_owner(*, lead: Lead) -> Lead:
    """Give the lead an owner, round-robin among the clinic's sales staff (reception and
    managers): the next one after whoever got the last lead."""
    if lead.owner_id:
        return lead
    staff = list(
        Membership.objects.filter(
            clinic_id=lead.clinic_id, role__in=SALES_ROLES, is_active=True, user__is_active=True
        )
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )
    if not staff:
        return lead
    conf = marketing_settings(lead.clinic_id)
    # The settings row is the round-robin's lock: two leads at once get two owners.
    conf = MarketingSettings.objects.select_for_update().get(pk=conf.pk)
    after = [
        u for u in staff if conf.last_assigned_user_id is None or u > conf.last_assigned_user_id
    ]
    owner = after[0] if after else staff[0]
    conf.last_assigned_user_id = owner
    conf.save(update_fields=["last_assigned_user_id"])
    lead.owner_id = owner
    Lead.objects.filter(pk=lead.pk).update(owner_id=owner)
    return lead


# --- Privacy --------------------------------------------------------------------------------
#: What an anonymised lead is called (its name was personal data), and what is erased.
ANONYMISED_NAME = "—"
ERASED_FIELDS = ("name", "phone", "email", "message")
_ERASED = {
    "name": ANONYMISED_NAME,
    "phone": "",
    "phone_key": "",
    "email": "",
    "message": "",
    "gclid": "",
    "fbclid": "",
    "referrer": "",
    "landing_page": "",
    "last_touch": {},
    "referral_code": "",
}


def _erase(clinic_id: int, ids: list[int]) -> None:
    Lead.objects.filter(pk__in=ids).update(**_ERASED, anonymised_at=timezone.now())
    Interaction.objects.filter(lead_id__in=ids).update(summary="")
    for lead_id in ids:  # partners that keep leads erase their copies too
        events.publish(
            "lead.updated",
            clinic=clinic_id,
            payload={"lead_id": lead_id, "fields": list(ERASED_FIELDS)},
        )


@transaction.atomic
def leads_anonymise(*, patient) -> int:
    """A patient's contact data is being erased (LGPD deletion): the leads of that clinic
    with the same phone (with or without the 9th digit) or e-mail, or linked to them, lose
    their name, phone, e-mail and message too. Where they came from (source, UTM campaign)
    is not personal and stays, so the funnel still counts them."""
    match = Q(patient=patient)
    if patient.phone:
        match |= Q(phone__in=phone_variants(patient.phone))
    if patient.email:
        match |= Q(email__iexact=patient.email)
    ids = list(
        Lead.objects.for_clinic(patient.clinic_id).filter(match).values_list("pk", flat=True)
    )
    _erase(patient.clinic_id, ids)
    return len(ids)


@transaction.atomic
def leads_retention_anonymise(*, clinic: Clinic | int, now: datetime | None = None) -> int:
    """Leads never converted, created over 2 years ago (seed 004: marketing data 2 years),
    are anonymised. Returns how many."""
    cutoff = (now or timezone.now()) - RETENTION
    clinic_id = getattr(clinic, "pk", clinic)
    ids = list(
        Lead.objects.for_clinic(clinic_id)
        .filter(created_at__lt=cutoff, anonymised_at__isnull=True)
        .exclude(status=LeadStatus.CONVERTED)
        .values_list("pk", flat=True)
    )
    _erase(clinic_id, ids)
    return len(ids)
