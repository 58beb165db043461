"""Demo data of billing, found by ``manage.py seed_demo``: packages, payments in every
state, refunds, an expense, and NFS-e issued on the console fiscal provider. Idempotent."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from clinic.models import Patient
from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment, Service

from . import services
from .choices import PaymentMethod, TransactionCategory, TransactionKind
from .exceptions import BillingError
from .models import FinancialTransaction, Package, Payment

PACKAGES = [
    # name, service name, sessions, regular price, package price, validity days
    ("Fisioterapia — 10 sessões", "Sessão de fisioterapia", 10, "1800.00", "1500.00", 120),
    ("Pilates — 8 aulas", "Pilates clínico", 8, "960.00", "800.00", 60),
    ("Psicoterapia — 4 sessões", "Psicoterapia", 4, "800.00", "720.00", 45),
]


def seed_demo(*, clinics, rng, stdout) -> None:
    for clinic in clinics:
        if Payment.objects.for_clinic(clinic).exists():
            continue
        with transaction.atomic():
            # The demo issues NFS-e on the console provider (nothing leaves the machine).
            clinic.settings = {
                **(clinic.settings or {}),
                "billing": {
                    "nfse_enabled": True,
                    "nfse_service_code": "04.03",
                    "nfse_iss_rate": "2.00",
                    "pix_key": "+5511999990000",
                    "pix_merchant_name": clinic.name,
                    "pix_merchant_city": clinic.city or "SAO PAULO",
                },
            }
            clinic.save(update_fields=["settings"])
            packages = _packages(clinic)
            count = _payments(clinic, rng, packages)
        stdout.write(f"{clinic.name}: {len(packages)} packages, {count} demo payments.")


def _packages(clinic) -> list[Package]:
    made = []
    for name, service_name, sessions, regular, price, days in PACKAGES:
        service = Service.objects.for_clinic(clinic).filter(name=service_name).first()
        if service is None:
            continue
        package, created = Package.objects.get_or_create(
            clinic=clinic,
            name=name,
            defaults={
                "regular_price": Decimal(regular),
                "price": Decimal(price),
                "validity_days": days,
            },
        )
        if created:
            services.package_save_items(package=package, items=[(service, sessions)])
        made.append(package)
    return made


def _payments(clinic, rng, packages) -> int:
    count = 0
    patients = list(Patient.objects.for_clinic(clinic).order_by("pk")[:30])
    done = (
        Appointment.objects.for_clinic(clinic)
        .filter(status=AppointmentStatus.COMPLETED)
        .select_related("patient", "service")
        .order_by("start")
    )
    # Completed appointments paid at the desk, by the usual methods.
    for appointment in done[:25]:
        if appointment.price <= 0:
            continue
        services.payment_register(
            clinic=clinic,
            patient=appointment.patient,
            amount=appointment.price,
            method=rng.choice(
                [
                    PaymentMethod.PIX,
                    PaymentMethod.CREDIT_CARD,
                    PaymentMethod.DEBIT_CARD,
                    PaymentMethod.CASH,
                ]
            ),
            appointment=appointment,
            description=str(appointment.service),
        )
        count += 1
    # Packages sold: some paid, one charged by PIX and still open.
    for index, package in enumerate(packages):
        patient = patients[index % len(patients)]
        try:
            services.package_sell(
                clinic=clinic,
                patient=patient,
                package=package,
                method=PaymentMethod.PIX,
                paid=index != 1,
            )
            count += 1
        except BillingError:
            continue
    # Charges in every state: pending (due later), overdue, cancelled, refunded in part.
    today = timezone.localdate()
    for offset, patient in zip((5, -2, -4), patients[5:8], strict=False):
        services.payment_charge_create(
            clinic=clinic,
            patient=patient,
            amount=Decimal("250.00"),
            method=PaymentMethod.PIX,
            due_date=today + timedelta(days=offset),
            description="Consulta clínica",
        )
        count += 1
    cancelled = services.payment_charge_create(
        clinic=clinic,
        patient=patients[8 % len(patients)],
        amount=Decimal("180.00"),
        method=PaymentMethod.BOLETO,
        description="Sessão de fisioterapia",
    )
    services.payment_cancel(payment=cancelled)
    refunded = services.payment_register(
        clinic=clinic,
        patient=patients[9 % len(patients)],
        amount=Decimal("320.00"),
        method=PaymentMethod.CREDIT_CARD,
        description="Consulta ortopédica",
    )
    services.payment_refund(payment=refunded, amount=Decimal("120.00"), reason="Desconto concedido")
    count += 2
    FinancialTransaction.objects.create(
        clinic=clinic,
        kind=TransactionKind.EXPENSE,
        category=TransactionCategory.RENT,
        cost_center="Administração",
        description="Aluguel da sala",
        amount=Decimal("4500.00"),
        competence_date=today.replace(day=1),
        payment_date=today.replace(day=1),
    )
    return count
