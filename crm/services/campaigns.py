"""Campaigns: the state machine, the CFM check, recipients with a holdout, and sending in
batches that respect quiet hours, the throughput, the frequency cap and consent; the weekly
reactivation campaign.

Safe to run twice and to kill: a batch is one transaction that decides its recipients and
records their messages (``messages_send_many``, idempotency key
``campaign:<campaign>:<patient>``) together; the messages leave only after commit. A worker
killed mid-batch rolls the whole batch back, and the next run does it again; a batch that
ran sends nothing more (the recipients are no longer pending, the keys are taken).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache

import holidays
from django.db import transaction
from django.db.models import CharField, Count, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.choices import ConsentPurpose
from clinic.kernel.timezones import clinic_zone
from clinic.messaging import catalogue
from clinic.messaging.models import OutboundMessage
from clinic.messaging.rendering import template_texts
from clinic.messaging.sending import messages_send_many
from clinic.models import Clinic, Patient
from integrations import events

from ..choices import (
    CAMPAIGN_TRANSITIONS,
    CampaignKind,
    CampaignStatus,
    RecipientStatus,
    SegmentTarget,
)
from ..exceptions import InvalidCampaignTransition, TemplateNotCompliant
from ..models import Campaign, CampaignRecipient, MarketingSettings, Segment
from .leads import marketing_settings

#: Rows inserted per statement when a campaign's recipients are written.
RECIPIENT_CHUNK = 5000


def campaign_transition(*, campaign: Campaign, to: str, now: datetime | None = None) -> Campaign:
    """Move a campaign (``choices.CAMPAIGN_TRANSITIONS``); raises InvalidCampaignTransition."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if to not in CAMPAIGN_TRANSITIONS[locked.status]:
            raise InvalidCampaignTransition(
                _("A campaign cannot go from “%(from)s” to “%(to)s”.")
                % {"from": locked.get_status_display(), "to": CampaignStatus(to).label}
            )
        locked.status = to
        fields = ["status"]
        if to == CampaignStatus.COMPLETED:
            locked.completed_at = now
            fields.append("completed_at")
        locked.save(update_fields=fields)
        if to == CampaignStatus.COMPLETED:
            by_status = dict(
                CampaignRecipient.objects.filter(campaign=locked)
                .order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
            )
            events.publish(
                "campaign.completed",
                clinic=locked.clinic_id,
                payload={
                    "campaign_id": locked.pk,
                    "kind": locked.kind,
                    "sent": by_status.get(RecipientStatus.SENT, 0),
                    "holdout": by_status.get(RecipientStatus.HOLDOUT, 0),
                },
            )
    campaign.status = locked.status
    campaign.completed_at = locked.completed_at
    return campaign


def campaign_check_compliance(*, campaign: Campaign, conf: MarketingSettings | None = None) -> str:
    """The campaign's message as sent (template + text), or TemplateNotCompliant when it does
    not name the clinic's technical director and their CRM (CFM Resolução 2.336/2023)."""
    conf = conf or marketing_settings(campaign.clinic_id)
    if not (conf.technical_director_name.strip() and conf.technical_director_crm.strip()):
        raise TemplateNotCompliant(
            _(
                "Enter the clinic's technical director and their CRM in the marketing "
                "settings: medical advertising must name them (CFM 2.336/2023)."
            )
        )
    body, _subject, _meta, _lang = template_texts(clinic=campaign.clinic_id, name=campaign.template)
    rendered = catalogue.render(body, {"first_name": "", "clinic": "", "text": campaign.text})
    folded = " ".join(rendered.split()).casefold()
    missing = [
        value
        for value in (conf.technical_director_name, conf.technical_director_crm)
        if " ".join(value.split()).casefold() not in folded
    ]
    if missing:
        raise TemplateNotCompliant(
            _(
                "The message must name the technical director and their CRM (CFM 2.336/2023): "
                "add “%(line)s” to its text."
            )
            % {"line": conf.director_line},
            fields={"text": [_("Missing: %(what)s.") % {"what": ", ".join(missing)}]},
        )
    return rendered


def campaign_schedule(*, campaign: Campaign, starts_at: datetime) -> Campaign:
    """Schedule a compliant campaign; ``campaigns_tick`` starts it at ``starts_at``."""
    if campaign.segment.target != SegmentTarget.PATIENTS:
        raise InvalidCampaignTransition(_("Campaigns are sent to segments of patients."))
    campaign_check_compliance(campaign=campaign)
    campaign = campaign_transition(campaign=campaign, to=CampaignStatus.SCHEDULED)
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=starts_at)
    campaign.starts_at = starts_at
    return campaign


def in_holdout(*, campaign_id: int, patient_id: int, percent: int) -> bool:
    """Whether a patient is in the campaign's control group: a stable hash, so re-running
    the start puts everyone where they were."""
    digest = hashlib.sha256(f"{campaign_id}:{patient_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


@transaction.atomic
def campaign_start(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Start a campaign: the segment's people now (marketing consent applied) become its
    recipients, ``holdout_percent`` of them held out; the batches then send. Returns the
    number of recipients."""
    from ..selectors import segment_patients

    now = now or timezone.now()
    if campaign.segment.target != SegmentTarget.PATIENTS:
        raise InvalidCampaignTransition(_("Campaigns are sent to segments of patients."))
    campaign_check_compliance(campaign=campaign)
    campaign_transition(campaign=campaign, to=CampaignStatus.RUNNING, now=now)
    Campaign.objects.filter(pk=campaign.pk, started_at__isnull=True).update(started_at=now)
    segment = campaign.segment
    ids = list(
        segment_patients(
            clinic=campaign.clinic, filters=segment.filters, channel=segment.channel, now=now
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rows = [
        CampaignRecipient(
            clinic_id=campaign.clinic_id,
            campaign_id=campaign.pk,
            patient_id=pk,
            status=(
                RecipientStatus.HOLDOUT
                if in_holdout(
                    campaign_id=campaign.pk, patient_id=pk, percent=campaign.holdout_percent
                )
                else RecipientStatus.PENDING
            ),
        )
        for pk in ids
    ]
    CampaignRecipient.objects.bulk_create(rows, batch_size=RECIPIENT_CHUNK, ignore_conflicts=True)
    return len(rows)


# --- Quiet hours ----------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _holidays(year: int) -> frozenset:
    return frozenset(holidays.country_holidays("BR", years=year))


def quiet_now(*, clinic: Clinic, conf: MarketingSettings, now: datetime) -> bool:
    """No marketing from ``quiet_from`` to ``quiet_until`` (20:00–08:00) clinic time, nor on
    Sundays and national holidays."""
    local = now.astimezone(clinic_zone(clinic))
    if local.weekday() == 6 or local.date() in _holidays(local.year):
        return True
    if conf.quiet_from > conf.quiet_until:
        return local.hour >= conf.quiet_from or local.hour < conf.quiet_until
    return conf.quiet_from <= local.hour < conf.quiet_until


# --- Sending --------------------------------------------------------------------------------
def campaign_run_batch(
    *, campaign_id: int, limit: int | None = None, now: datetime | None = None
) -> int:
    """Send the campaign's next batch (at most ``limit``, default the clinic's throughput
    per minute); returns how many messages were recorded. Outside quiet hours only; every
    recipient checked again for consent and the frequency cap (one marketing message per
    person every ``frequency_cap_days``, across all campaigns). The last batch completes the
    campaign (``campaign.completed``).

    Query count: a fixed handful per batch, whatever its size (bench/crm.py)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_related("clinic", "segment").filter(pk=campaign_id).first()
        )
        if campaign is None or campaign.status != CampaignStatus.RUNNING:
            return 0
        conf = marketing_settings(campaign.clinic_id)
        if quiet_now(clinic=campaign.clinic, conf=conf, now=now):
            return 0
        # The clinic's settings row serialises the clinic's campaign batches: two campaigns
        # at once must see each other's messages for the frequency cap.
        conf = MarketingSettings.objects.select_for_update().get(pk=conf.pk)
        limit = limit or conf.throughput_per_minute
        batch = list(
            CampaignRecipient.objects.filter(campaign=campaign, status=RecipientStatus.PENDING)
            .order_by("pk")
            .select_for_update(skip_locked=True)[:limit]
        )
        sent = _send(campaign=campaign, conf=conf, batch=batch, now=now) if batch else 0
        more = CampaignRecipient.objects.filter(
            campaign=campaign, status=RecipientStatus.PENDING
        ).exists()
        if not more:
            campaign_transition(campaign=campaign, to=CampaignStatus.COMPLETED, now=now)
    return sent


def _send(*, campaign: Campaign, conf: MarketingSettings, batch: list, now: datetime) -> int:
    from ..selectors import _with_consent

    patient_ids = [r.patient_id for r in batch]
    consenting = set(
        _with_consent(
            Patient.objects.filter(pk__in=patient_ids, clinic_id=campaign.clinic_id),
            campaign.segment.channel,
        ).values_list("pk", flat=True)
    )
    capped = set(
        OutboundMessage.objects.filter(
            clinic_id=campaign.clinic_id,
            patient_id__in=patient_ids,
            purpose=ConsentPurpose.MARKETING,
            created_at__gte=now - timedelta(days=conf.frequency_cap_days),
        )
        .exclude(idempotency_key__startswith=f"campaign:{campaign.pk}:")
        .values_list("patient_id", flat=True)
    )
    to_send = [
        r.patient_id for r in batch if r.patient_id in consenting and r.patient_id not in capped
    ]
    patients = {p.pk: p for p in Patient.objects.filter(pk__in=to_send)} if to_send else {}
    context = {"text": campaign.text}
    keys = {pk: f"campaign:{campaign.pk}:{pk}" for pk in to_send}
    if to_send:
        messages_send_many(
            clinic=campaign.clinic,
            template=campaign.template,
            messages=[(patients[pk], context, keys[pk]) for pk in to_send],
        )
    # One UPDATE per outcome (not bulk_update's CASE over every row: quadratic in the
    # batch); the sent ones find their message by its unique key.
    outcomes = {
        RecipientStatus.NO_CONSENT: [],
        RecipientStatus.CAPPED: [],
        RecipientStatus.SENT: [],
    }
    for recipient in batch:
        if recipient.patient_id not in consenting:
            outcomes[RecipientStatus.NO_CONSENT].append(recipient.pk)
        elif recipient.patient_id in capped:
            outcomes[RecipientStatus.CAPPED].append(recipient.pk)
        else:
            outcomes[RecipientStatus.SENT].append(recipient.pk)
    for status, ids in outcomes.items():
        if not ids:
            continue
        fields = {"status": status, "decided_at": now}
        if status == RecipientStatus.SENT:
            fields["message_id"] = Subquery(
                OutboundMessage.objects.filter(
                    idempotency_key=Concat(
                        Value(f"campaign:{campaign.pk}:"),
                        Cast(OuterRef("patient_id"), CharField()),
                    )
                ).values("pk")[:1]
            )
        CampaignRecipient.objects.filter(pk__in=ids).update(**fields)
    return len(to_send)


def campaigns_tick(*, now: datetime | None = None, clinic: Clinic | int | None = None) -> int:
    """Every minute: scheduled campaigns whose time came start; running ones send a batch.
    Returns the messages recorded."""
    now = now or timezone.now()
    campaigns = Campaign.objects.all()
    if clinic is not None:
        campaigns = campaigns.for_clinic(clinic)
    for campaign in campaigns.filter(status=CampaignStatus.SCHEDULED, starts_at__lte=now):
        campaign_start(campaign=campaign, now=now)
    sent = 0
    for campaign_id in campaigns.filter(status=CampaignStatus.RUNNING).values_list("pk", flat=True):
        sent += campaign_run_batch(campaign_id=campaign_id, now=now)
    return sent


# --- Reactivation ---------------------------------------------------------------------------
def reactivation_run(*, clinic: Clinic, now: datetime | None = None) -> Campaign | None:
    """The weekly reactivation (Mondays 10:00 clinic time, seed 004): a campaign to the
    patients with no attended visit for ``reactivation_days`` who opted in to marketing on
    WhatsApp, with the holdout, the cap and consent. Once a week per clinic; None when the
    clinic has it off, or already ran this week."""
    now = now or timezone.now()
    conf = marketing_settings(clinic)
    if not conf.reactivation_enabled:
        return None
    local = now.astimezone(clinic_zone(clinic))
    week_start = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if (
        Campaign.objects.for_clinic(clinic)
        .filter(kind=CampaignKind.REACTIVATION, created_at__gte=week_start)
        .exists()
    ):
        return None
    with transaction.atomic():
        segment, _created = Segment.objects.get_or_create(
            clinic=clinic,
            name=_("Reactivation: %(days)s days without a visit")
            % {"days": conf.reactivation_days},
            defaults={"filters": {"inactive_days": conf.reactivation_days}},
        )
        text = conf.reactivation_text or _(
            "It has been a while! How about booking a return visit? Answer this message."
        )
        if conf.director_line and conf.director_line not in text:
            text = f"{text}\n{conf.director_line}"
        campaign = Campaign.objects.create(
            clinic=clinic,
            name=_("Reactivation %(date)s") % {"date": local.date().isoformat()},
            kind=CampaignKind.REACTIVATION,
            segment=segment,
            template="promocao",
            text=text,
            holdout_percent=conf.holdout_percent,
        )
        campaign_start(campaign=campaign, now=now)
    return campaign
