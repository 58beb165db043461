"""Birthday greetings (``aniversario``), at 08:00 of each clinic's day, to patients who
opted in to marketing."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.utils import timezone

from clinic.choices import ConsentPurpose, ConsentStatus
from clinic.kernel.timezones import clinic_today
from clinic.models import Consent, Patient
from clinic.selectors import clinics_at_local_hours

from .models import OutboundMessage
from .sending import message_send


def birthdays_greet(
    *, now: datetime | None = None, batch: int = 500, local_hours: Collection[int] | None = None
) -> int:
    """Greet today's birthdays (at 08:00 of each clinic's time, ``local_hours``; without
    them every clinic now; "today" in each clinic's calendar) — only patients who opted in
    to marketing on some channel; delivery checks the opt-in in force per channel. Once a
    year per patient (key ``birthday:<patient>:<year>``)."""
    import calendar

    from django.db.models import CharField, Exists, OuterRef, Q, Value
    from django.db.models.functions import Cast, Concat

    now = now or timezone.now()
    greeted = 0
    for clinic in clinics_at_local_hours(hours=local_hours, now=now):
        today = clinic_today(clinic, now)
        born_today = Q(birth_date__month=today.month, birth_date__day=today.day)
        if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
            born_today |= Q(birth_date__month=2, birth_date__day=29)
        key = Concat(Value("birthday:"), Cast(OuterRef("pk"), CharField()), Value(f":{today.year}"))
        opted_in = Consent.objects.filter(
            patient=OuterRef("pk"),
            purpose=ConsentPurpose.MARKETING,
            status=ConsentStatus.GRANTED,
        )
        patients = (
            Patient.objects.for_clinic(clinic)
            .filter(born_today)
            .filter(Exists(opted_in))
            .exclude(Exists(OutboundMessage.objects.filter(idempotency_key=key)))
            .select_related("clinic")
            .order_by("pk")
        )
        while True:
            chunk = list(patients[:batch])
            for patient in chunk:
                message_send(
                    clinic=clinic,
                    patient=patient,
                    template="aniversario",
                    idempotency_key=f"birthday:{patient.pk}:{today.year}",
                )
                greeted += 1
            if len(chunk) < batch:
                break
    return greeted
