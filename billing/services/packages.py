"""Packages of sessions: their items, selling one to a patient, debiting a session when an
appointment is done, expiry warnings and expiry."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Clinic, Patient
from clinic.selectors import clinics_at_local_hours
from integrations.events import publish

from ..choices import (
    PackageStatus,
    PaymentMethod,
)
from ..exceptions import (
    PackageUnavailable,
)
from ..models import (
    Package,
    PackageSessionUse,
    PatientPackage,
    Payment,
)
from .common import _same_clinic
from .payments import payment_charge_create, payment_register


# --- Packages -------------------------------------------------------------------------------
@transaction.atomic
def package_save_items(*, package: Package, items: list[tuple]) -> Package:
    """Set a package's services and quantities; its total of sessions follows."""
    package.items.all().delete()
    for service, quantity in items:
        package.items.create(service=service, quantity=quantity)
    package.total_sessions = sum(quantity for _service, quantity in items)
    package.save(update_fields=["total_sessions"])
    return package


@transaction.atomic
def package_sell(
    *,
    clinic: Clinic,
    patient: Patient,
    package: Package,
    method: str = PaymentMethod.CASH,
    paid: bool = True,
    by=None,
    now: datetime | None = None,
) -> tuple[PatientPackage, Payment]:
    """Sell a package: the patient's sessions start now and expire after the package's
    validity; the payment is received at the desk (``paid``) or charged."""
    _same_clinic(clinic, patient, package)
    if not package.is_active or package.total_sessions == 0:
        raise PackageUnavailable(_("This package is not for sale."))
    now = now or timezone.now()
    sold = PatientPackage.objects.create(
        clinic=clinic,
        patient=patient,
        package=package,
        sessions_total=package.total_sessions,
        price=package.price,
        purchased_at=now,
        expires_at=now + timedelta(days=package.validity_days),
    )
    publish(
        "package.purchased",
        clinic=clinic,
        payload={"patient_package_id": sold.pk, "patient_id": patient.pk, "package_id": package.pk},
    )
    kwargs = {
        "clinic": clinic,
        "patient": patient,
        "amount": package.price,
        "method": method,
        "patient_package": sold,
        "description": str(package),
        "by": by,
    }
    payment = payment_register(**kwargs) if paid else payment_charge_create(**kwargs)
    return sold, payment


def _covering_package(appointment) -> PatientPackage | None:
    """The patient's active package that covers the appointment's service, the one
    expiring first (it would be lost first)."""
    return (
        PatientPackage.objects.for_clinic(appointment.clinic_id)
        .select_for_update(of=("self",))
        .filter(
            patient_id=appointment.patient_id,
            status=PackageStatus.ACTIVE,
            package__items__service_id=appointment.service_id,
            expires_at__gt=appointment.start,
            sessions_used__lt=F("sessions_total"),
        )
        .order_by("expires_at", "pk")
        .first()
    )


@transaction.atomic
def package_session_debit(*, appointment, reason: str) -> PackageSessionUse | None:
    """Spend one session of the patient's package on ``appointment``. Idempotent: the
    appointment can be debited once (unique), so a redelivered event changes nothing."""
    if PackageSessionUse.objects.filter(appointment=appointment).exists():
        return None
    package = _covering_package(appointment)
    if package is None:
        return None
    try:
        with transaction.atomic():
            use = PackageSessionUse.objects.create(
                clinic_id=appointment.clinic_id,
                patient_package=package,
                appointment=appointment,
                reason=reason,
            )
    except IntegrityError:
        return None  # a concurrent delivery debited it
    package.sessions_used += 1
    fields = ["sessions_used"]
    if package.sessions_used >= package.sessions_total:
        package.status = PackageStatus.COMPLETED
        fields.append("status")
    package.save(update_fields=fields)
    return use


def packages_expiry_run(
    *,
    now: datetime | None = None,
    warn_days: int = 15,
    local_hours: Collection[int] | None = None,
) -> tuple[int, int]:
    """09:00 of each clinic's time (``local_hours``; without them every clinic now): warn
    patients whose active packages expire within ``warn_days`` (once, ``pacote_vencendo``)
    and expire the ones past their date. Returns (warned, expired)."""
    from clinic.messaging.services import message_send

    now = now or timezone.now()
    warned = expired = 0
    packages = PatientPackage.objects.filter(
        clinic__in=clinics_at_local_hours(hours=local_hours, now=now)
    )
    due = packages.filter(
        status=PackageStatus.ACTIVE,
        expires_at__lte=now + timedelta(days=warn_days),
        expires_at__gt=now,
        expiry_warned_at__isnull=True,
    ).select_related("patient", "patient__clinic", "package", "clinic")
    for package in due[:1000]:
        with transaction.atomic():
            message_send(
                clinic=package.clinic,
                patient=package.patient,
                template="pacote_vencendo",
                context={
                    "package": str(package.package),
                    "remaining": str(package.sessions_remaining),
                    "due_date": timezone.localtime(package.expires_at).strftime("%d/%m/%Y"),
                },
                idempotency_key=f"package-expiring:{package.pk}",
            )
            PatientPackage.objects.filter(pk=package.pk).update(expiry_warned_at=now)
            publish(
                "package.expiring",
                clinic=package.clinic_id,
                payload={"patient_package_id": package.pk, "patient_id": package.patient_id},
            )
        warned += 1
    expired = packages.filter(status=PackageStatus.ACTIVE, expires_at__lte=now).update(
        status=PackageStatus.EXPIRED
    )
    return warned, expired
