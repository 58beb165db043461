"""``make run``'s demo shows the record: the demo professional's signed encounters with
vitals, scales and diagnoses, one draft pending, every chain whole."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clinic.records.chain import chain_verify
from clinic.records.models import Cid10Code, Encounter, Entry

pytestmark = pytest.mark.django_db
DEMO_PATIENTS = 12


@pytest.fixture(scope="module", autouse=True)
def _cid10_loaded(django_db_setup, django_db_blocker):
    """The demo seeds the record only where the CID-10 table is loaded. Migration
    records.0003 loads it, but a transactional test run earlier on this worker may have
    flushed it; reload it before the module's demo is seeded (autouse: set up first)."""
    from clinic.records.cid10 import load_cid10

    with django_db_blocker.unblock():
        if not Cid10Code.objects.filter(compact="M545").exists():
            load_cid10()


def test_the_demo_professional_has_a_record_to_show(seeded_demo, client_for):
    user = get_user_model().objects.get(username="profissional")
    signed = Encounter.objects.filter(professional__user=user, status="finalized")
    assert signed.count() >= 15
    assert Encounter.objects.filter(professional__user=user, status="draft").count() == 1
    assert Entry.objects.filter(kind="scales", status="finalized").exists()
    assert chain_verify() == []
    client = client_for(user)
    day = client.get(reverse("admin:scheduling_my_day")).content.decode()
    draft = Encounter.objects.get(professional__user=user, status="draft")
    assert reverse("admin:records_encounter_record", args=[draft.pk]) in day
    page = client.get(reverse("admin:records_encounter_patient", args=[draft.patient_id]))
    assert page.status_code == 200 and b"<svg" in page.content
