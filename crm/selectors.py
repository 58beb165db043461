"""Every shared read of the CRM: segments, the funnel, timelines, campaign metrics and
attribution (leads, conversion, bookings, revenue, CAC per source and month).

These are pure functions of the database (no writes), keyword-only and typed, so the KPI
dashboard (issue 26) reads the same figures the CRM shows. Segments never read clinical
data (LGPD art. 11 §4): only visits, services, professionals, age, birthday, no-shows,
packages and where the person came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.choices import PackageStatus, PaymentStatus
from billing.models import PatientPackage, Payment
from clinic.choices import ConsentPurpose, ConsentStatus
from clinic.kernel.timezones import clinic_today
from clinic.messaging.models import OutboundMessage, ReceivedMessage
from clinic.models import Clinic, Consent, Patient
from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment

from .choices import OPEN_STAGES, LeadStatus, RecipientStatus, SegmentTarget
from .models import Campaign, CampaignRecipient, Interaction, Lead, MarketingSpend, Segment

#: An appointment that took place ("attended"): the patient came.
ATTENDED = (AppointmentStatus.ARRIVED, AppointmentStatus.IN_PROGRESS, AppointmentStatus.COMPLETED)
#: How long after a campaign message a booking counts for it.
ATTRIBUTION_WINDOW = timedelta(days=30)


# --- Consent --------------------------------------------------------------------------------
def _with_consent(patients: QuerySet, channel: str) -> QuerySet:
    """Patients whose decision in force (the latest) for marketing on ``channel`` is
    "granted". Applied to every segment and campaign; there is no way to switch it off."""
    latest = (
        Consent.objects.filter(
            patient=OuterRef("pk"), channel=channel, purpose=ConsentPurpose.MARKETING
        )
        .order_by("-recorded_at", "-pk")
        .values("status")[:1]
    )
    return patients.annotate(_marketing=Subquery(latest)).filter(_marketing=ConsentStatus.GRANTED)


# --- Segments -------------------------------------------------------------------------------
def _attended(**filters) -> QuerySet:
    return Appointment.objects.filter(patient=OuterRef("pk"), status__in=ATTENDED, **filters)


def segment_patients(
    *, clinic: Clinic | int, filters: dict, channel: str, now: datetime | None = None
) -> QuerySet[Patient]:
    """The clinic's patients a segment's ``filters`` select, with marketing consent on
    ``channel`` (always) and an address for it."""
    now = now or timezone.now()
    clinic_obj = clinic if isinstance(clinic, Clinic) else Clinic.objects.get(pk=clinic)
    today = clinic_today(clinic_obj, now)
    patients = Patient.objects.for_clinic(clinic_obj)
    patients = patients.exclude(email="") if channel == "email" else patients.exclude(phone="")
    days = filters.get("inactive_days")
    if days:
        cutoff = now - timedelta(days=int(days))
        patients = patients.filter(Exists(_attended())).exclude(
            Exists(_attended(start__gte=cutoff))
        )
        # Not someone already coming back: nothing booked ahead.
        patients = patients.exclude(
            Exists(
                Appointment.objects.filter(
                    patient=OuterRef("pk"),
                    start__gte=now,
                    status__in=[AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED],
                )
            )
        )
    if filters.get("service_ids"):
        patients = patients.filter(Exists(_attended(service_id__in=filters["service_ids"])))
    if filters.get("professional_ids"):
        patients = patients.filter(
            Exists(_attended(professional_id__in=filters["professional_ids"]))
        )
    if filters.get("age_min") not in (None, ""):
        born_by = today.replace(year=today.year - int(filters["age_min"]))
        patients = patients.filter(birth_date__lte=born_by)
    if filters.get("age_max") not in (None, ""):
        born_after = today.replace(year=today.year - int(filters["age_max"]) - 1)
        patients = patients.filter(birth_date__gt=born_after)
    if filters.get("birthday_month"):
        patients = patients.filter(birth_date__month=int(filters["birthday_month"]))
    if filters.get("min_no_shows"):
        patients = patients.filter(no_show_count__gte=int(filters["min_no_shows"]))
    if filters.get("package_ending_days"):
        until = now + timedelta(days=int(filters["package_ending_days"]))
        patients = patients.filter(
            Exists(
                PatientPackage.objects.filter(
                    patient=OuterRef("pk"),
                    status=PackageStatus.ACTIVE,
                    expires_at__gte=now,
                    expires_at__lte=until,
                )
            )
        )
    if filters.get("sources"):
        patients = patients.filter(lead_source__in=filters["sources"])
    return _with_consent(patients, channel)


def segment_leads(*, clinic: Clinic | int, filters: dict) -> QuerySet[Lead]:
    """The clinic's open leads a segment selects: only those who agreed to marketing."""
    leads = Lead.objects.for_clinic(clinic).filter(
        marketing_consent=True, anonymised_at__isnull=True, status__in=OPEN_STAGES
    )
    if filters.get("sources"):
        leads = leads.filter(source__in=filters["sources"])
    if filters.get("interest_types"):
        leads = leads.filter(interest_type__in=filters["interest_types"])
    if filters.get("temperatures"):
        leads = leads.filter(temperature__in=filters["temperatures"])
    return leads


def segment_queryset(*, segment: Segment, now: datetime | None = None) -> QuerySet:
    if segment.target == SegmentTarget.LEADS:
        return segment_leads(clinic=segment.clinic_id, filters=segment.filters)
    return segment_patients(
        clinic=segment.clinic, filters=segment.filters, channel=segment.channel, now=now
    )


def segment_count(*, segment: Segment, now: datetime | None = None) -> int:
    """How many people the segment reaches now (one COUNT query)."""
    return segment_queryset(segment=segment, now=now).count()


def segment_preview(*, segment: Segment, limit: int = 20) -> list:
    """The first people of the segment, for staff to check it selects whom they meant."""
    return list(segment_queryset(segment=segment).order_by("pk")[:limit])


# --- Funnel ---------------------------------------------------------------------------------
def funnel_counts(*, clinic: Clinic | int, leads: QuerySet | None = None) -> dict[str, int]:
    """Leads per stage (every stage present, 0 when empty)."""
    leads = Lead.objects.for_clinic(clinic) if leads is None else leads
    counts = dict(leads.order_by().values_list("status").annotate(n=Count("pk")))
    return {stage: counts.get(stage, 0) for stage in LeadStatus.values}


# --- Timeline -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    channel: str
    direction: str
    summary: str
    by: str


def timeline(
    *,
    clinic: Clinic | int,
    lead: Lead | None = None,
    patient: Patient | None = None,
    limit: int = 200,
) -> list[TimelineEntry]:
    """Everything that happened with a lead and/or patient, newest first: the CRM's
    interactions (forms, calls, notes, bookings, payments, portal visits) and every message
    in and out from messaging. Three queries."""
    if lead is not None and patient is None:
        patient = lead.patient
    match = Q(pk__in=[])
    if lead is not None:
        match |= Q(lead=lead)
    if patient is not None:
        match |= Q(patient=patient)
    interactions = list(
        Interaction.objects.for_clinic(clinic).filter(match).select_related("staff")[:limit]
    )
    keys = [i.external_key for i in interactions]
    entries = [
        TimelineEntry(
            at=i.at,
            kind=i.get_kind_display(),
            channel=i.channel,
            direction=i.direction,
            summary=i.summary,
            by=(i.staff.get_full_name() or i.staff.get_username())
            if i.staff
            else i.get_handler_display(),
        )
        for i in interactions
    ]
    if patient is not None:
        for m in (
            OutboundMessage.objects.for_clinic(clinic)
            .filter(patient=patient)
            .select_related("sent_by")[:limit]
        ):
            entries.append(
                TimelineEntry(
                    at=m.created_at,
                    kind=m.template,
                    channel=m.channel or m.only_channel,
                    direction="outbound",
                    summary=m.body[:200],
                    by=m.sent_by.get_username() if m.sent_by else "system",
                )
            )
        recorded = {key for key in keys if key}
        for r in ReceivedMessage.objects.for_clinic(clinic).filter(patient=patient)[:limit]:
            if f"inbound:{r.source_key}" in recorded:
                continue  # already on the timeline as the lead's interaction
            entries.append(
                TimelineEntry(
                    at=r.received_at,
                    kind="message",
                    channel=r.channel,
                    direction="inbound",
                    summary=r.text[:200],
                    by=r.sender_name or r.from_address,
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


# --- Campaign metrics -----------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignMetrics:
    targeted: int
    holdout: int
    skipped_consent: int
    skipped_cap: int
    sent: int
    delivered: int
    read: int
    replied: int
    opted_out: int
    booked: int
    attended: int
    revenue: Decimal
    holdout_booked: int
    #: Booking rate of those sent minus that of the holdout, in percentage points.
    lift_points: float | None


def campaign_metrics(*, campaign: Campaign) -> CampaignMetrics:
    """What a campaign did: messages sent, delivered, read, replied, opted out; bookings,
    attendances and revenue of its recipients within 30 days of its start; and the lift
    against the holdout (the same booking rate in the group not sent to)."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    by_status = dict(recipients.order_by().values_list("status").annotate(n=Count("pk")))
    sent_ids = recipients.filter(status=RecipientStatus.SENT)
    start = campaign.started_at or campaign.created_at
    end = start + ATTRIBUTION_WINDOW
    messages = OutboundMessage.objects.filter(
        pk__in=sent_ids.exclude(message_id=None).values("message_id")
    )
    msg = messages.aggregate(
        delivered=Count("pk", filter=Q(delivered_at__isnull=False) | Q(read_at__isnull=False)),
        read=Count("pk", filter=Q(read_at__isnull=False)),
    )
    sent_patients = sent_ids.values("patient_id")
    holdout_patients = recipients.filter(status=RecipientStatus.HOLDOUT).values("patient_id")
    replied = (
        ReceivedMessage.objects.filter(
            clinic_id=campaign.clinic_id, patient_id__in=sent_patients, received_at__gte=start
        )
        .values("patient_id")
        .distinct()
        .count()
    )
    opted_out = (
        Consent.objects.filter(
            clinic_id=campaign.clinic_id,
            patient_id__in=sent_patients,
            purpose=ConsentPurpose.MARKETING,
            status=ConsentStatus.REVOKED,
            recorded_at__gte=start,
        )
        .values("patient_id")
        .distinct()
        .count()
    )

    def booked(patients) -> QuerySet:
        return Appointment.objects.filter(
            clinic_id=campaign.clinic_id,
            patient_id__in=patients,
            created_at__gte=start,
            created_at__lt=end,
        )

    booked_sent = booked(sent_patients).values("patient_id").distinct().count()
    attended = (
        booked(sent_patients).filter(status__in=ATTENDED).values("patient_id").distinct().count()
    )
    holdout_booked = booked(holdout_patients).values("patient_id").distinct().count()
    revenue = Payment.objects.filter(
        clinic_id=campaign.clinic_id,
        patient_id__in=sent_patients,
        status=PaymentStatus.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    ).aggregate(total=Sum("amount_received"))["total"] or Decimal("0")
    n_sent = by_status.get(RecipientStatus.SENT, 0)
    n_holdout = by_status.get(RecipientStatus.HOLDOUT, 0)
    lift = None
    if n_sent and n_holdout:
        lift = round(100 * (booked_sent / n_sent - holdout_booked / n_holdout), 2)
    return CampaignMetrics(
        targeted=sum(by_status.values()),
        holdout=n_holdout,
        skipped_consent=by_status.get(RecipientStatus.NO_CONSENT, 0),
        skipped_cap=by_status.get(RecipientStatus.CAPPED, 0),
        sent=n_sent,
        delivered=msg["delivered"],
        read=msg["read"],
        replied=replied,
        opted_out=opted_out,
        booked=booked_sent,
        attended=attended,
        revenue=revenue,
        holdout_booked=holdout_booked,
        lift_points=lift,
    )


# --- Attribution ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFigures:
    source: str
    month: date
    leads: int
    converted: int
    bookings: int
    revenue: Decimal
    spend: Decimal

    @property
    def conversion_rate(self) -> float | None:
        """Converted ÷ leads of this cohort (leads created that month), in %."""
        return round(100 * self.converted / self.leads, 1) if self.leads else None

    @property
    def cac(self) -> Decimal | None:
        """Customer acquisition cost: spend ÷ converted leads."""
        return (self.spend / self.converted).quantize(Decimal("0.01")) if self.converted else None


def attribution(
    *, clinic: Clinic | int, since: date, until: date, touch: str = "first"
) -> list[SourceFigures]:
    """Per source and month (cohorts by the lead's creation date): leads, converted leads,
    their bookings and revenue (payments received by the converted patients), the spend
    entered for it and the CAC. ``touch`` "first" credits the first-touch source, "last"
    the last-touch one. A handful of queries whatever the number of leads."""
    source_field = "source" if touch == "first" else "last_source"
    leads = Lead.objects.for_clinic(clinic).filter(
        created_at__date__gte=since, created_at__date__lte=until
    )
    rows = (
        leads.annotate(month=TruncMonth("created_at"), src=F(source_field))
        .values("src", "month")
        .annotate(
            n=Count("pk"),
            converted=Count("pk", filter=Q(status=LeadStatus.CONVERTED)),
        )
    )
    patients_by_key: dict[tuple[str, date], list[int]] = {}
    for src, month, patient_id in (
        leads.filter(status=LeadStatus.CONVERTED, patient__isnull=False)
        .annotate(month=TruncMonth("created_at"), src=F(source_field))
        .values_list("src", "month", "patient_id")
    ):
        patients_by_key.setdefault((src, _month(month)), []).append(patient_id)
    all_patients = [p for ids in patients_by_key.values() for p in ids]
    bookings = dict(
        Appointment.objects.filter(clinic=clinic, patient_id__in=all_patients)
        .values_list("patient_id")
        .annotate(n=Count("pk"))
    )
    revenue = dict(
        Payment.objects.filter(
            clinic=clinic, patient_id__in=all_patients, status=PaymentStatus.PAID
        )
        .values_list("patient_id")
        .annotate(total=Sum("amount_received"))
    )
    spend = {
        (s, _month(m)): a
        for s, m, a in MarketingSpend.objects.for_clinic(clinic)
        .filter(month__gte=since.replace(day=1), month__lte=until)
        .values_list("source", "month", "amount")
    }
    figures = []
    seen = set()
    for row in rows:
        key = (row["src"], _month(row["month"]))
        seen.add(key)
        ids = patients_by_key.get(key, [])
        figures.append(
            SourceFigures(
                source=key[0],
                month=key[1],
                leads=row["n"],
                converted=row["converted"],
                bookings=sum(bookings.get(p, 0) for p in ids),
                revenue=sum((revenue.get(p) or Decimal("0") for p in ids), Decimal("0")),
                spend=spend.get(key, Decimal("0")),
            )
        )
    for key, amount in spend.items():
        if key not in seen:
            figures.append(SourceFigures(key[0], key[1], 0, 0, 0, Decimal("0"), amount))
    figures.sort(key=lambda f: (f.month, f.source))
    return figures


def _month(value) -> date:
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value.replace(day=1)


def first_attended(*, patient_id: int) -> datetime | None:
    return (
        Appointment.objects.filter(patient_id=patient_id, status__in=ATTENDED)
        .aggregate(first=Min("start"))
        .get("first")
    )
