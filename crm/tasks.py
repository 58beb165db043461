"""Celery tasks of the CRM: thin, they call one service. Campaign messages themselves are
delivered by messaging's tasks on the low-priority queue (``integrations-low``)."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="crm.campaigns_tick")
def campaigns_tick_task() -> int:
    """Every minute: scheduled campaigns start; running ones send their next batch (at most
    the clinic's throughput per minute)."""
    from .services import campaigns_tick

    return campaigns_tick()


@shared_task(name="crm.reactivation")
def reactivation_task(local_hours: list[int] | None = None, local_weekday: int = 0) -> int:
    """Mondays 10:00 of each clinic (seed 004, ``0 10 * * 1``): the reactivation campaign."""
    from django.utils import timezone

    from clinic.kernel.timezones import clinic_zone
    from clinic.selectors import clinics_at_local_hours

    from .exceptions import CrmError
    from .services import reactivation_run

    now = timezone.now()
    started = 0
    for clinic in clinics_at_local_hours(hours=local_hours, now=now):
        if now.astimezone(clinic_zone(clinic)).weekday() != local_weekday:
            continue
        try:
            started += reactivation_run(clinic=clinic, now=now) is not None
        except CrmError as exc:  # not compliant (no technical director): the manager sees it
            log.warning("reactivation of clinic %s not started: %s", clinic.pk, exc.message)
    return started


@shared_task(name="crm.leads_retention")
def leads_retention_task() -> int:
    """Sundays 03:00: leads never converted are anonymised after 2 years (seed 004, LGPD)."""
    from clinic.models import Clinic

    from .services import leads_retention_anonymise

    return sum(
        leads_retention_anonymise(clinic=pk)
        for pk in Clinic.objects.order_by("pk").values_list("pk", flat=True)
    )
