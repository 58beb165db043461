"""Shared reads of the clinic app."""

from datetime import UTC, datetime

import pytest

from clinic.selectors import clinics_at_local_hours
from tests.clinic.factories import ClinicFactory

pytestmark = pytest.mark.django_db


def test_the_daily_jobs_find_the_clinics_where_it_is_one_of_their_hours_now():
    sao_paulo = ClinicFactory(time_zone="America/Sao_Paulo")  # UTC-3
    manaus = ClinicFactory(time_zone="America/Manaus")  # UTC-4
    rio_branco = ClinicFactory(time_zone="America/Rio_Branco")  # UTC-5
    ClinicFactory(time_zone="America/Sao_Paulo", is_active=False)
    at = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 18:00 in São Paulo

    assert list(clinics_at_local_hours(hours={18}, now=at)) == [sao_paulo]
    assert list(clinics_at_local_hours(hours={16, 17}, now=at)) == [manaus, rio_branco]
    assert list(clinics_at_local_hours(hours={9}, now=at)) == []
    assert list(clinics_at_local_hours(hours=None, now=at)) == [sao_paulo, manaus, rio_branco]
