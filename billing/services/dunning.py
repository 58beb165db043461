"""Dunning: reminders of overdue charges at D+1, D+3, D+7, then a person takes over."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from clinic.selectors import clinics_at_local_hours
from integrations.events import publish

from ..conf import billing_option
from ..models import (
    Payment,
)
from .common import P, _payload


# --- Dunning --------------------------------------------------------------------------------
def dunning_run(*, now: datetime | None = None, local_hours: Collection[int] | None = None) -> int:
    """09:00 of each clinic's time (``local_hours``; without them every clinic now):
    overdue charges get ``cobranca`` at D+1, D+3 and D+7 after the due date, with the
    payment link; then they land on the list for a person. A payment received stops the
    sequence (only pending payments are looked at); each step is sent once."""
    from clinic.messaging.services import message_send

    from ..money import brl

    now = now or timezone.now()
    today = timezone.localdate(now)
    sent = 0
    overdue = (
        Payment.objects.filter(
            clinic__in=clinics_at_local_hours(hours=local_hours, now=now),
            status=P.PENDING,
            due_date__lt=today,
            dunning_flagged_at__isnull=True,
        )
        .select_related("clinic", "patient", "patient__clinic")
        .order_by("due_date", "pk")
    )
    for payment in overdue[:1000]:
        days = list(billing_option(payment.clinic, "dunning_days"))
        late = (today - payment.due_date).days
        due_steps = [i + 1 for i, day in enumerate(days) if late >= day]
        step = max(due_steps, default=0)
        with transaction.atomic():
            if step > payment.dunning_step:
                if payment.dunning_step == 0:
                    publish("payment.overdue", clinic=payment.clinic_id, payload=_payload(payment))
                message_send(
                    clinic=payment.clinic,
                    patient=payment.patient,
                    template="cobranca",
                    context={
                        # What is still owed: a part may have arrived already.
                        "amount": brl(payment.amount_owed),
                        "due_date": payment.due_date.strftime("%d/%m/%Y"),
                        "payment_link": payment.invoice_url or payment.boleto_url,
                    },
                    idempotency_key=f"dunning:{payment.pk}:{step}",
                )
                Payment.objects.filter(pk=payment.pk).update(dunning_step=step)
                sent += 1
            elif step == len(days) and late > days[-1]:
                # Every reminder went and the payment is still open: a person takes over.
                Payment.objects.filter(pk=payment.pk).update(dunning_flagged_at=now)
    return sent
