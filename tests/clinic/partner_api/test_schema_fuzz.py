"""Schemathesis drives every operation of /api/schema/ with generated requests, as a
partner with a key holding every scope would: no answer is a server error, and every
answer conforms to the schema."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES
from tests.clinic.factories import ClinicFactory, PatientFactory, ProfessionalFactory
from tests.scheduling.factories import ServiceFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI app directly, and Django closes the database connection
    at the end of each request, unlike its own test client, which disconnects that signal
    for the same reason: the test's transaction lives on that connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def partner_key(db):
    clinic = ClinicFactory(name="Clínica Fuzz")
    professional = ProfessionalFactory(clinic=clinic)
    ServiceFactory(clinic=clinic, professionals=[professional])
    PatientFactory(clinic=clinic)
    _key, secret = api_key_create(clinic=clinic, name="fuzz", scopes=list(API_SCOPES))
    return secret


@schema.parametrize()
@settings(
    max_examples=12,
    derandomize=True,  # the same examples on every run: CI is reproducible
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_never_fails_and_answers_as_its_schema_says(case, partner_key):
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {partner_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
    assert response.status_code < 500
