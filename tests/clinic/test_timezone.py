"""Staff see times in the time zone of the clinic they work in."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import Clinic

pytestmark = pytest.mark.django_db


def test_a_manaus_clinics_staff_see_manaus_time(clinic_a, receptionist_a, client_for):
    Clinic.objects.filter(pk=clinic_a.pk).update(time_zone="America/Manaus")
    seen = {}

    def spy(request):
        seen["zone"] = timezone.get_current_timezone_name()
        seen["noon_utc"] = timezone.localtime(datetime(2026, 11, 23, 12, tzinfo=UTC))
        from django.http import HttpResponse

        return HttpResponse()

    from clinic.middleware import ClinicTimezoneMiddleware

    client = client_for(receptionist_a)
    request = client.get(reverse("admin:index")).wsgi_request
    ClinicTimezoneMiddleware(spy)(request)
    assert seen["zone"] == "America/Manaus"
    assert seen["noon_utc"].hour == 8  # UTC-4


def test_everyone_else_gets_the_default_zone(rf):
    from django.contrib.auth.models import AnonymousUser

    from clinic.middleware import ClinicTimezoneMiddleware

    request = rf.get("/")
    request.user = AnonymousUser()
    names = []
    ClinicTimezoneMiddleware(lambda r: names.append(timezone.get_current_timezone_name()))(request)
    assert names == ["America/Sao_Paulo"]
