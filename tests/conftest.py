"""Personas shared by every test: two clinics, their staff and patients.

- ``clinic_a`` / ``clinic_b``: two tenants.
- ``receptionist_a``, ``manager_a``, ``admin_a``: staff of clinic A; ``receptionist_b``: of B.
- ``patient_a`` / ``patient_b``: a patient of each clinic.
- ``client_for(user)``: a test client signed in as that user.
"""

import pytest
from django.db import connection
from django.test import Client

from clinic import services
from clinic.choices import MembershipRole
from clinic.models import Membership
from tests.clinic.factories import ClinicFactory, PatientFactory, UserFactory

POSTGRES_ONLY = "PostgreSQL only: set DATABASE_URL=postgres://… to run it"


def pytest_runtest_setup(item):
    # .ci/run fails the build if this reason shows up in its report.
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip(POSTGRES_ONLY)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: throttle histories, flags and cached tokens
    are keyed by ids that repeat from test to test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in tests (a test that needs a real worker turns this off)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


def _staff(clinic, role, username):
    user = UserFactory(username=username)
    services.membership_save(membership=Membership(user=user, clinic=clinic, role=role))
    user.refresh_from_db()
    return user


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Clínica Alfa")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Clínica Beta")


@pytest.fixture
def receptionist_a(clinic_a):
    return _staff(clinic_a, MembershipRole.RECEPTIONIST, "recepcao_a")


@pytest.fixture
def manager_a(clinic_a):
    return _staff(clinic_a, MembershipRole.MANAGER, "gerente_a")


@pytest.fixture
def admin_a(clinic_a):
    return _staff(clinic_a, MembershipRole.ADMIN, "admin_a")


@pytest.fixture
def receptionist_b(clinic_b):
    return _staff(clinic_b, MembershipRole.RECEPTIONIST, "recepcao_b")


@pytest.fixture
def superuser(db):
    return UserFactory(username="operador", is_staff=True, is_superuser=True)


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, full_name="Maria José Araújo", cpf="52998224725")


@pytest.fixture
def patient_b(clinic_b):
    return PatientFactory(clinic=clinic_b, full_name="Bruno Beta Costa")


@pytest.fixture
def client_for(db):
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
