"""Celery tasks of billing: thin, they call one service."""

from celery import shared_task


@shared_task(name="billing.packages_expiry")
def packages_expiry_task(local_hours: list[int] | None = None) -> None:
    """09:00 of each clinic (``local_hours``): warn packages expiring within 15 days;
    expire the ones past their date."""
    from .services import packages_expiry_run

    packages_expiry_run(local_hours=local_hours)


@shared_task(name="billing.dunning")
def dunning_task(local_hours: list[int] | None = None) -> int:
    """09:00 of each clinic (``local_hours``): reminders of overdue charges at D+1, D+3,
    D+7, then a person."""
    from .services import dunning_run

    return dunning_run(local_hours=local_hours)


@shared_task(name="billing.invoices_poll")
def invoices_poll_task() -> int:
    """Every 10 minutes: ask fiscal providers about invoices still processing."""
    from .services import invoices_poll

    return invoices_poll()


@shared_task(name="billing.payments_reconcile")
def payments_reconcile_task() -> int:
    """Every hour: ask the gateways about charges still pending past their due date."""
    from .services import payments_reconcile

    return payments_reconcile().changed
