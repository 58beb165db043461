"""Referrals: a patient's code (portal link, WhatsApp text) brings someone in — through the
CRM's lead form (``?ref=<code>``, carried by ``lead.created`` as ``referral_code``) or typed
at registration — and when the referred patient's first appointment is attended and paid,
both are rewarded, once. Refused: self-referral (same patient, CPF, phone or e-mail),
referring someone who already was a patient, more than the programme's rewarded referrals
per month."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.choices import PaymentStatus
from billing.models import Payment
from clinic.kernel.timezones import clinic_zone
from clinic.models import Clinic, Patient
from integrations.events import publish
from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment

from ..choices import ReferenceType, ReferralStatus
from ..exceptions import ReferralRefused
from ..models import LoyaltyAccount, Referral
from .earning import points_earn
from .ledger import account_for, account_lock, program_for

logger = logging.getLogger("loyalty.referrals")
R = ReferralStatus
#: A patient record made this long before the referral still counts as new (the desk
#: registers the person, then types the code).
REGISTRATION_SLACK = timedelta(hours=1)


def referral_link(*, account: LoyaltyAccount) -> str:
    """The CRM's public lead form with the patient's code (``?ref=``)."""
    base = settings.CUIDAR_REFERRAL_URL
    return f"{base}?{urlencode({'ref': account.referral_code, 'clinic': account.clinic_id})}"


def referral_share_text(*, account: LoyaltyAccount, link: str) -> str:
    return _(
        "I recommend %(clinic)s! Book your first visit with my link and we both earn points: "
        "%(link)s"
    ) % {"clinic": account.clinic.name, "link": link}


def whatsapp_share_url(text: str) -> str:
    return f"https://wa.me/?text={quote(text)}"


def _referrer(clinic_id: int, code: str) -> LoyaltyAccount | None:
    code = (code or "").strip().upper()
    if not code:
        return None
    return (
        LoyaltyAccount.objects.select_related("patient")
        .filter(clinic_id=clinic_id, referral_code=code)
        .first()
    )


def referral_from_lead(*, clinic_id: int, lead_id: int, code: str) -> Referral | None:
    """A lead arrived with a referral code: a pending referral (once per lead)."""
    referrer = _referrer(clinic_id, code)
    if referrer is None:
        logger.info("lead %s: unknown referral code %r", lead_id, code)
        return None
    try:
        with transaction.atomic():
            referral, _created = Referral.objects.get_or_create(
                clinic_id=clinic_id, lead_id=lead_id, defaults={"referrer": referrer}
            )
    except IntegrityError:
        referral = Referral.objects.get(clinic_id=clinic_id, lead_id=lead_id)
    return referral


def _refusal(referral: Referral, patient: Patient) -> str:
    """Why the referral of ``patient`` is refused, or ``""``."""
    referrer = referral.referrer.patient
    if patient.pk == referrer.pk:
        return _("A patient cannot refer themselves.")
    for field, label in (("cpf", _("CPF")), ("phone", _("phone")), ("email", _("e-mail"))):
        mine, theirs = getattr(referrer, field), getattr(patient, field)
        if mine and theirs and mine.strip().lower() == theirs.strip().lower():
            return _("Self-referral: same %(field)s as the referrer.") % {"field": label}
    if patient.created_at < referral.created_at - REGISTRATION_SLACK:
        return _("The person referred was already a patient.")
    return ""


def _attach(referral: Referral, patient: Patient) -> Referral:
    # As stored (phones normalised by their field), not as the caller holds it.
    patient = Patient.objects.get(pk=patient.pk)
    referral.referred_patient = patient
    referral.converted_at = timezone.now()
    reason = _refusal(referral, patient)
    referral.status = R.REFUSED if reason else R.CONVERTED
    referral.refusal_reason = reason
    referral.save(update_fields=["referred_patient", "converted_at", "status", "refusal_reason"])
    return referral


@transaction.atomic
def referral_convert(*, clinic_id: int, lead_id: int, patient_id: int) -> Referral | None:
    """The CRM turned the referred lead into a patient (``lead.converted``)."""
    referral = (
        Referral.objects.select_for_update()
        .select_related("referrer__patient")
        .filter(clinic_id=clinic_id, lead_id=lead_id)
        .first()
    )
    if referral is None or referral.status != R.PENDING:
        return referral
    patient = Patient.objects.filter(pk=patient_id, clinic_id=clinic_id).first()
    if patient is None:
        return referral
    if Referral.objects.filter(clinic_id=clinic_id, referred_patient=patient).exists():
        referral.status, referral.refusal_reason = R.REFUSED, _("Already referred by someone.")
        referral.save(update_fields=["status", "refusal_reason"])
        return referral
    return _attach(referral, patient)


@transaction.atomic
def referral_register(*, patient: Patient, code: str) -> Referral:
    """A new patient (at the desk or in the portal) says who referred them."""
    referrer = _referrer(patient.clinic_id, code)
    if referrer is None:
        raise ReferralRefused(
            _("No patient has the referral code %(code)s.") % {"code": code},
            fields={"referral_code": [_("Unknown code.")]},
        )
    if Referral.objects.filter(clinic_id=patient.clinic_id, referred_patient=patient).exists():
        raise ReferralRefused(
            _("This patient was already referred."),
            fields={"referral_code": [_("Already referred.")]},
        )
    referral = Referral.objects.create(clinic_id=patient.clinic_id, referrer=referrer)
    # A refused referral is kept (the manager sees the attempt) with its reason.
    return _attach(referral, patient)


def _first_visit_done(patient: Patient) -> bool:
    """The referred patient's first appointment was attended and is paid."""
    first = (
        Appointment.objects.filter(patient=patient, status=AppointmentStatus.COMPLETED)
        .order_by("start")
        .first()
    )
    if first is None:
        return False
    paid = Payment.objects.filter(patient=patient, status=PaymentStatus.PAID, amount_received__gt=0)
    return paid.filter(appointment=first).exists() or paid.filter(appointment__isnull=True).exists()


def _month_start(clinic: Clinic, now: datetime) -> datetime:
    local = now.astimezone(clinic_zone(clinic))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic
def referral_reward(
    *, clinic_id: int, patient_id: int, now: datetime | None = None
) -> Referral | None:
    """Reward a converted referral whose patient's first visit is attended and paid: both
    accounts, once (the referral's row lock and the entries' source keys)."""
    now = now or timezone.now()
    referral = (
        Referral.objects.select_for_update()
        .select_related("clinic", "referrer__patient", "referred_patient")
        .filter(clinic_id=clinic_id, referred_patient_id=patient_id, status=R.CONVERTED)
        .first()
    )
    if referral is None or not _first_visit_done(referral.referred_patient):
        return None
    program = program_for(clinic_id)
    if not program.is_active:
        return None
    rewarded_this_month = Referral.objects.filter(
        referrer=referral.referrer,
        status=R.REWARDED,
        rewarded_at__gte=_month_start(referral.clinic, now),
    ).count()
    if rewarded_this_month >= program.referral_monthly_limit:
        referral.status = R.REFUSED
        referral.refusal_reason = _("More than %(limit)s referrals rewarded this month.") % {
            "limit": program.referral_monthly_limit
        }
        referral.save(update_fields=["status", "refusal_reason"])
        return referral
    referred = account_for(referral.referred_patient)
    # Two accounts: lock them in primary-key order, so two rewards crossing them cannot
    # deadlock.
    locked = {
        a.pk: account_lock(a) for a in sorted([referral.referrer, referred], key=lambda a: a.pk)
    }
    for account, points, who in (
        (locked[referral.referrer_id], program.referral_points, "referrer"),
        (locked[referred.pk], program.referred_points, "referred"),
    ):
        points_earn(
            account=account,
            points=points,
            reason=_("Referral"),
            source_key=f"referral:{referral.pk}:{who}",
            reference_type=ReferenceType.REFERRAL,
            reference_id=referral.pk,
            program=program,
        )
    referral.status, referral.rewarded_at = R.REWARDED, now
    referral.save(update_fields=["status", "rewarded_at"])
    publish(
        "referral.rewarded",
        clinic=clinic_id,
        payload={
            "referral_id": referral.pk,
            "referrer_patient_id": referral.referrer.patient_id,
            "referred_patient_id": referral.referred_patient_id,
            "referrer_points": program.referral_points,
            "referred_points": program.referred_points,
        },
    )
    return referral
