"""Fixtures of the loyalty tests: a clinic whose programme runs (1 point per R$), a
patient with an account."""

from decimal import Decimal

import pytest

from loyalty import services
from loyalty.models import Reward
from tests.clinic.factories import PatientFactory


@pytest.fixture
def program(clinic_a):
    program = services.program_for(clinic_a)
    program.is_active = True
    program.medical_mode = False
    program.points_per_real = Decimal("1")
    program.attended_visit_points = 20
    program.confirm_ahead_points = 5
    program.referral_points = 100
    program.referred_points = 50
    program.save()
    return program


@pytest.fixture
def maria(clinic_a):
    return PatientFactory(
        clinic=clinic_a,
        full_name="Maria José Araújo",
        cpf="52998224725",
        phone="11987654321",
        email="maria@example.com",
    )


@pytest.fixture
def account(maria, program):
    return services.account_for(maria)


@pytest.fixture
def voucher_reward(clinic_a):
    return Reward.objects.create(
        clinic=clinic_a, name="R$ 20 de desconto", points_cost=100, value=Decimal("20.00")
    )


def give(account, points: int, key: str):
    """Credit ``points`` to ``account`` (a lot), as an earning rule would."""
    from django.db import transaction

    with transaction.atomic():
        locked = services.account_lock(account)
        return services.points_earn(account=locked, points=points, reason="teste", source_key=key)


@pytest.fixture(autouse=True)
def _english():
    """Service messages in English, the language the tests read them in (pt-BR is the
    default; its catalogue is checked by tests/test_i18n.py)."""
    from django.utils import translation

    with translation.override("en"):
        yield
