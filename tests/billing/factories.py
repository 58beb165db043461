"""Factories of the billing app (on top of tests/clinic and tests/scheduling factories).

Rows made here skip the services on purpose (a pending payment as a gateway would leave it,
an invoice the provider refused); tests of behaviour go through ``billing.services``.
"""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from billing import services
from billing.choices import (
    Gateway,
    InvoiceStatus,
    PaymentMethod,
    PaymentStatus,
    TransactionCategory,
    TransactionKind,
)
from billing.models import FinancialTransaction, Invoice, Package, Payment
from tests.clinic.factories import ClinicFactory, PatientFactory


class PackageFactory(factory.django.DjangoModelFactory):
    """A package for sale; ``items=[(service, quantity), …]`` sets its services through
    ``services.package_save_items`` (which computes ``total_sessions``)."""

    class Meta:
        model = Package
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Pacote {n}")
    price = Decimal("900.00")
    regular_price = Decimal("1000.00")
    validity_days = 180

    @factory.post_generation
    def items(obj, create, extracted, **kwargs):
        if create and extracted:
            services.package_save_items(package=obj, items=list(extracted))


class PaymentFactory(factory.django.DjangoModelFactory):
    """A pending payment the clinic collects itself (e.g. a transfer it waits for)."""

    class Meta:
        model = Payment

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    amount = Decimal("150.00")
    method = PaymentMethod.TRANSFER
    gateway = Gateway.MANUAL
    status = PaymentStatus.PENDING
    description = "Consulta"
    due_date = factory.LazyFunction(timezone.localdate)


class InvoiceFactory(factory.django.DjangoModelFactory):
    """An NFS-e the provider refused (``status``/``errors`` to taste)."""

    class Meta:
        model = Invoice

    payment = factory.SubFactory(PaymentFactory, status=PaymentStatus.PAID)
    clinic = factory.LazyAttribute(lambda o: o.payment.clinic)
    reference = factory.Sequence(lambda n: f"cuidar-test-{n}")
    amount = factory.LazyAttribute(lambda o: o.payment.amount)
    description = "Serviços de saúde"
    status = InvoiceStatus.ERROR
    provider = "console"
    errors = factory.LazyFunction(
        lambda: ["console: E160 - CPF do tomador inválido", "Endereço do tomador incompleto"]
    )


class ExpenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FinancialTransaction

    clinic = factory.SubFactory(ClinicFactory)
    kind = TransactionKind.EXPENSE
    category = TransactionCategory.RENT
    description = factory.Sequence(lambda n: f"Aluguel {n}")
    amount = Decimal("3500.00")
    competence_date = factory.LazyFunction(timezone.localdate)
    payment_date = factory.LazyAttribute(lambda o: o.competence_date + timedelta(days=5))


def income_booked(payment: Payment) -> list[Decimal]:
    """The income the ledger holds for ``payment``, in the order it was booked."""
    return list(
        FinancialTransaction.objects.filter(payment=payment, kind=TransactionKind.INCOME)
        .order_by("pk")
        .values_list("amount", flat=True)
    )
