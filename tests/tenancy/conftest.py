"""Fixtures of the tenancy suite: a member of clinic A who holds every permission (so that
what hides clinic B's rows is the scoping, never a missing permission), and clinic B's
rows with distinctive names that must never show up in A's pages."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.utils import timezone

from loyalty.models import Reward
from tests.billing.factories import PackageFactory, PaymentFactory
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

from .rows import clinic_owned

#: Text of clinic B's rows; any page of clinic A showing it leaks B's data.
B_MARK = "Beatriz Outraclinica"


@pytest.fixture
def member_a(admin_a):
    """Clinic A's administrator, with every permission on top (not a superuser)."""
    admin_a.user_permissions.set(Permission.objects.all())
    admin_a.refresh_from_db()
    return admin_a


@pytest.fixture
def client_a(member_a, client_for):
    return client_for(member_a)


class World:
    """One clinic's everyday rows: a patient with an appointment (its professional, service
    and a room), a package for sale and a pending payment."""

    def __init__(self, clinic, name: str):
        self.clinic = clinic
        self.patient = PatientFactory(clinic=clinic, full_name=f"{name} Paciente")
        self.professional = ProfessionalFactory(clinic=clinic, full_name=f"Dra. {name}")
        self.room = RoomFactory(clinic=clinic, name=f"Sala {name}")
        self.service = ServiceFactory(
            clinic=clinic,
            name=f"Consulta {name}",
            professionals=[self.professional],
            rooms=[self.room],
        )
        start = (timezone.now() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        self.appointment = AppointmentFactory(
            clinic=clinic,
            service=self.service,
            professional=self.professional,
            patient=self.patient,
            room=self.room,
            start=start,
        )
        self.package = PackageFactory(clinic=clinic, name=f"Pacote {name}")
        self.payment = PaymentFactory(
            clinic=clinic, patient=self.patient, description=f"Cobrança {name}"
        )
        self.reward = Reward.objects.create(
            clinic=clinic, name=f"Prêmio {name}", points_cost=10, value=Decimal("5.00")
        )

    @property
    def names(self) -> list[str]:
        """The names of this world's rows as pages would show them."""
        return [
            self.patient.full_name,
            self.professional.full_name,
            self.room.name,
            self.service.name,
            self.package.name,
            self.payment.description,
            self.reward.name,
        ]

    def shown_in(self, content: bytes | str) -> list[str]:
        """Which of this world's names ``content`` shows."""
        text = content.decode() if isinstance(content, bytes) else content
        return [name for name in self.names if name in text]

    def of(self, model):
        """This world's row of ``model`` (by class name), if it has one."""
        return getattr(self, _WORLD_ATTRS.get(model._meta.object_name, ""), None)


_WORLD_ATTRS = {
    "Clinic": "clinic",
    "Patient": "patient",
    "Professional": "professional",
    "Room": "room",
    "Service": "service",
    "Appointment": "appointment",
    "Package": "package",
    "Payment": "payment",
    "Reward": "reward",
}


@pytest.fixture
def world_a(clinic_a):
    return World(clinic_a, "Alfa")


@pytest.fixture
def world_b(clinic_b):
    return World(clinic_b, B_MARK)


#: Tables a refused request may still write to in the requesting clinic: its own logs.
LOGS = {"AuditEntry", "ApiRequestLog", "ExternalCall", "ConsoleRecord"}


def footprint(clinic, *, ignore=frozenset()) -> dict[str, int]:
    """How many rows of each clinic-owned table belong to ``clinic``: a request refused
    for another clinic's row must leave every count as it was (``ignore``: class names of
    tables left out)."""
    counts = {}
    for model in apps.get_models():
        if clinic_owned(model) and model._meta.object_name not in ignore:
            counts[model._meta.label] = model._base_manager.filter(clinic=clinic).count()
    return counts


def snapshot(obj) -> dict:
    """Every stored column of ``obj``, read again from the database."""
    fresh = type(obj)._base_manager.filter(pk=obj.pk).values().first()
    return fresh or {}
