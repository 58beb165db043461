"""The demo's partner API key, on a database where the demo is seeded for the first time
(apart from tests/clinic/test_seed_demo.py, whose tests share one seeded demo)."""

import io

import pytest
from django.core.management import call_command

from clinic.partner_api.models import ApiKey
from clinic.partner_api.scopes import API_SCOPES

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_partner_api_key_with_every_scope_shown_on_every_run(settings, client):
    settings.DEBUG = True

    def seed() -> str:
        out = io.StringIO()
        call_command("seed_demo", patients=5, stdout=out)
        [line] = [line for line in out.getvalue().splitlines() if "Partner API key" in line]
        return line.rsplit(" ", 1)[1]

    key = seed()
    assert seed() == key  # the same key again, and still one key
    [stored] = ApiKey.objects.all()
    assert stored.clinic.name == "Clínica Demo"
    assert sorted(stored.scopes) == sorted(API_SCOPES)
    assert key not in str(stored.__dict__)  # only its hash is kept
    response = client.get("/api/v1/services/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json()["results"]
