"""Fixtures of the clinical record's tests."""

import pytest

from clinic import services
from clinic.choices import MembershipRole
from clinic.models import Membership
from clinic.records.cid10 import load_cid10
from clinic.records.models import Cid10Code
from tests.clinic.factories import UserFactory


@pytest.fixture
def cid10(db):
    """The CID-10 table. Migration records.0003 loads it into the test database; a
    transactional test before this one may have flushed it, so it is loaded again then."""
    if not Cid10Code.objects.filter(compact="J450").exists():
        load_cid10()


@pytest.fixture
def professional_a(clinic_a):
    """A clinician (role "professional") of clinic A."""
    user = UserFactory(username="profissional_a")
    services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.PROFESSIONAL)
    )
    user.refresh_from_db()
    return user
