"""Schemathesis' stateful run over /api/schema/ (issue 17): sequences of calls chained by the
links it infers from the schema and from ``Location`` headers (create a patient, then read
and correct it; subscribe a webhook, ping it, read it, delete it; book, then confirm …), as
a partner holding a key with every scope. Reproducible (``derandomize``: the same
sequences on every run). Every answer must be a documented status with a documented content
type, conform to its schema, carry its documented headers — and no header the schema does
not document, beyond the HTTP-level ones every answer has (``HTTP_HEADERS``)."""

import itertools
import random
from datetime import timedelta

import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clinic.management.commands.seed_demo import cpf_with_check_digits
from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES
from tests.clinic.factories import ClinicFactory, PatientFactory
from tests.scheduling.test_api import make_agenda

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

#: Headers of the HTTP exchange itself, not of the API's contract: framing, caching and
#: language negotiation, the methods of the path (``Allow``, on every answer of DRF; the
#: 405's documents it), and the security headers every page of the site carries
#: (docs/api.md lists them).
HTTP_HEADERS = {
    "allow",
    "content-security-policy",
    "content-type",
    "content-length",
    "content-language",
    "vary",
    "date",
    "server",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "permissions-policy",
}


def no_undocumented_header(ctx, response, case):
    """Every header of the answer is documented for its operation and status."""
    responses = case.operation.definition.raw["responses"]
    declared = responses.get(str(response.status_code)) or responses.get("default") or {}
    documented = {name.lower() for name in declared.get("headers", {})}
    extra = sorted(
        name for name in (h.lower() for h in response.headers) if name not in HTTP_HEADERS
    )
    if "cookie" in {name.lower() for name in response.request.headers}:
        # A request with a session cookie (the schema's cookieAuth: staff browsing the API)
        # may be told to drop a stale one.
        documented.add("set-cookie")
    undocumented = [name for name in extra if name not in documented]
    if undocumented:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} with undocumented "
            f"headers: {', '.join(undocumented)}"
        )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    no_undocumented_header,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI app directly; Django would close the test's database
    connection at the end of each request (its test client disconnects this too)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def partner(db):
    clinic = ClinicFactory(name="Clínica Estado")
    agenda = make_agenda(clinic)
    _key, agenda.secret = api_key_create(clinic=clinic, name="stateful", scopes=list(API_SCOPES))
    return agenda


class ValidBodies:
    """Every other POST that creates something gets a body the API accepts, so that the
    sequences reach what follows a creation (a patient read and corrected; a subscription
    pinged, read and deleted; an appointment confirmed, cancelled or moved); the others
    keep Schemathesis' generated bodies. Counted from the start of each scenario, so that
    Hypothesis replays a scenario exactly."""

    def __init__(self, agenda):
        self.agenda = agenda
        self.restart()

    def restart(self) -> None:
        self.turn = itertools.count()
        self.numbers = itertools.count(100_000_000)
        self.slots = itertools.count()

    def body(self, path: str):
        agenda = self.agenda
        if path == "/api/v1/patients/":
            return {
                "full_name": "Paciente Sequência",
                "cpf": cpf_with_check_digits(random.Random(next(self.numbers))),
                "phone": "+5511988887777",
            }
        if path == "/api/v1/webhooks/":
            return {"url": "https://crm.parceiro.example/hooks/cuidar", "event_types": []}
        if path == "/api/v1/appointments/":
            start = agenda.nine + timedelta(minutes=30 * (next(self.slots) % 16))
            return {
                "patient": PatientFactory(clinic=agenda.clinic).pk,
                "professional": agenda.professional.pk,
                "service": agenda.service.pk,
                "start": start.isoformat(),
            }
        return None

    def __call__(self, case) -> None:
        if case.method.upper() == "POST" and next(self.turn) % 2 == 0:
            wanted = self.body(case.operation.path)
            if wanted is not None:
                case.body = wanted


def test_call_sequences_answer_only_what_the_schema_documents(partner):
    fix = ValidBodies(partner)
    answered = set()

    class PartnerWorkflow(schema.as_state_machine()):
        def setup(self):
            """Each scenario starts from the same database and cache: what one scenario
            created is rolled back, so a replayed scenario meets the state it met."""
            cache.clear()
            fix.restart()
            self.scenario = transaction.atomic()
            self.scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def before_call(self, case):
            fix(case)

        def after_call(self, response, case):
            answered.add((case.operation.label, response.status_code))

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {partner.secret}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    PartnerWorkflow.run(
        settings=settings(
            max_examples=60,
            stateful_step_count=8,
            derandomize=True,  # the same sequences on every run: CI is reproducible
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The sequences went past creation: what a partner does after a 201 was exercised.
    created = {label for label, status in answered if status == 201}
    assert {"POST /api/v1/patients/", "POST /api/v1/webhooks/"} <= created
    assert any("{id}" in label and status < 300 for label, status in answered)
