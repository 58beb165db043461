"""A partner's view of the API (issue 17): a Python client generated from the live schema
with openapi-python-client imports and runs docs/api.md's walk-through against a live
server — services, availability, a patient by CPF, a booking with an Idempotency-Key and
its replay, confirm, the list's next page, and a 409 and a 422 parsed as Problems."""

import importlib
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES
from tests.clinic.factories import PatientFactory
from tests.scheduling.test_api import make_agenda

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="session")
def cuidar_client(live_server, tmp_path_factory, django_db_blocker):
    """The client package, generated once per session from ``/api/schema/`` as served.
    (Serving the schema reads the database; a session fixture runs outside any test's
    database access, so it is opened for the request.)"""
    where = tmp_path_factory.mktemp("generated")
    schema, package = where / "schema.json", where / "cuidar_client"
    url = f"{live_server.url}/api/schema/?format=json"
    with (
        django_db_blocker.unblock(),
        urllib.request.urlopen(url) as answer,  # noqa: S310 (http://localhost, the test server)
    ):
        schema.write_bytes(answer.read())
    subprocess.run(
        [GENERATOR, "generate", "--path", schema, "--meta", "none", "--output-path", package],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("cuidar_client")
    finally:
        sys.path.remove(str(where))


def api(name: str):
    return importlib.import_module(f"cuidar_client.api.{name}")


@pytest.mark.django_db(transaction=True)
def test_the_docs_walk_through_runs_on_a_generated_client(cuidar_client, live_server, clinic_a):
    from cuidar_client.models import AppointmentBook, Problem

    agenda = make_agenda(clinic_a)
    patient = PatientFactory(clinic=clinic_a, cpf="52998224725")
    _key, secret = api_key_create(clinic=clinic_a, name="Site", scopes=list(API_SCOPES))
    client = cuidar_client.AuthenticatedClient(base_url=live_server.url, token=secret)

    services = api("services.services_list").sync(client=client)
    assert [s.id for s in services.results] == [agenda.service.pk]

    day = agenda.nine.replace(hour=0)
    slots = api("availability.availability_list").sync(
        client=client, service=agenda.service.pk, start=day, end=day + timedelta(days=1)
    )
    first = slots.results[0]
    second = next(slot for slot in slots.results if slot.start >= first.end)

    found = api("patients.patients_list").sync(client=client, cpf="529.982.247-25")
    assert [p.id for p in found.results] == [patient.pk]

    book = api("appointments.appointments_create")
    body = AppointmentBook(
        patient=patient.pk,
        professional=first.professional,
        service=agenda.service.pk,
        start=first.start,
    )
    booked = book.sync_detailed(client=client, body=body, idempotency_key="walk-1")
    assert booked.status_code == 201
    again = book.sync_detailed(client=client, body=body, idempotency_key="walk-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.id == booked.parsed.id
    assert again.headers["Location"] == booked.headers["Location"]

    confirmed = api("appointments.appointments_confirm_create").sync(
        client=client, id=booked.parsed.id
    )
    assert confirmed.status.value == "confirmed"

    later = AppointmentBook(
        patient=patient.pk,
        professional=second.professional,
        service=agenda.service.pk,
        start=second.start,
    )
    assert book.sync_detailed(client=client, body=later).status_code == 201
    listing = api("appointments.appointments_list")
    page = listing.sync(client=client, patient=patient.pk, page_size=1)
    assert [a.id for a in page.results] == [booked.parsed.id]
    cursor = parse_qs(urlparse(page.next_).query)["cursor"][0]
    page = listing.sync(client=client, patient=patient.pk, page_size=1, cursor=cursor)
    assert len(page.results) == 1 and page.results[0].id != booked.parsed.id

    other = PatientFactory(clinic=clinic_a, cpf="")
    taken = book.sync(
        client=client,
        body=AppointmentBook(
            patient=other.pk,
            professional=first.professional,
            service=agenda.service.pk,
            start=first.start,
        ),
    )
    assert isinstance(taken, Problem)
    assert taken.status == 409 and taken.type_.endswith("/slot_unavailable")

    reused = book.sync(client=client, body=later, idempotency_key="walk-1")
    assert isinstance(reused, Problem)
    assert reused.status == 422
