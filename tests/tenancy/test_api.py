"""Clinic B's rows through the partner API with a key of clinic A: every endpoint under
``/api/v1/``, walked from the URL resolver. The key holds every scope, so what keeps B's
rows out is the tenancy scoping (``api_clinic``, ``PartnerAPIMixin.clinic``), never a
missing scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.partner_api.keys import api_key_create
from clinic.partner_api.scopes import API_SCOPES

from .conftest import footprint, snapshot
from .rows import make, model
from .walk import all_url_patterns

PROBLEM = "application/problem+json"


#: URLs under /api/v1/ that serve no clinic's rows, and why.
NO_ROWS_API_URLS = {
    "api-fallback": "the problem+json 404 for every path no endpoint matches",
}


def api_endpoints() -> dict[str, tuple[str, object]]:
    """``{url name: (route, pattern)}`` of every API endpoint (format-suffix twins left
    out: they reach the same view)."""
    found = {}
    for route, name, pattern in all_url_patterns():
        if name in NO_ROWS_API_URLS:
            continue
        if route.startswith("api/v1/") and name and "format" not in route:
            found.setdefault(name, (route, pattern))
    return found


def _methods(pattern) -> set[str]:
    actions = getattr(pattern.callback, "actions", None)
    if actions is not None:
        # DRF adds "head" to a viewset's actions at its first GET: HEAD is GET without a body.
        allowed = set(pattern.callback.cls.http_method_names) - {"head", "options"}
        return {m.upper() for m in actions if m in allowed}
    view_class = getattr(pattern.callback, "view_class", None) or pattern.callback.cls
    return {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)} - {
        "OPTIONS",
        "HEAD",
    }


#: Router base names and the model behind each (by class name).
RESOURCES = {
    "service": "Service",
    "professional": "Professional",
    "appointment": "Appointment",
    "patient": "Patient",
    "payment": "Payment",
    "loyalty-account": "LoyaltyAccount",
    "event": "Event",
    "webhook": "WebhookSubscription",
    "dead-letter": "DeadLetter",
    "lead": "Lead",
}


#: Writes that name other rows: for each list endpoint taking a POST, a body built from
#: clinic A's world (``a``) in which one field at a time names B's row instead; the answer
#: must be a 4xx whose field map names that field.
WRITES = {
    "appointment": lambda a: {
        "patient": a.patient,
        "professional": a.professional,
        "service": a.service,
        "room": a.room,
        "start": (a.appointment.start + timedelta(days=7)).isoformat(),
    },
}


def _bodies(name, world_a, world_b):
    base = WRITES[name](world_a)
    plain = {k: getattr(v, "pk", v) for k, v in base.items()}
    for field, value in base.items():
        if hasattr(value, "pk"):
            theirs = world_b.of(type(value))
            yield field, {**plain, field: theirs.pk}


#: List endpoints taking a POST that names no other row (nothing of B's to reference).
WRITES_WITHOUT_REFERENCES = {
    "patient": "a new patient: name, CPF, contacts",
    "lead": "a new lead: name, contacts, UTM fields",
    "webhook": "a URL and event types",
}

#: Query parameters naming B's rows that list endpoints accept as filters.
FILTERS = {
    "appointment": lambda b: [
        {"patient": b.patient.pk},
        {"professional": b.professional.pk},
        {"service": b.service.pk},
    ],
    "patient": lambda b: [{"cpf": b.patient.cpf}, {"phone": b.patient.phone}],
    "loyalty-account": lambda b: [{"patient": b.patient.pk}],
}

#: Endpoints outside the router: the query naming B's rows, and the answer expected.
OTHER_VIEWS = {
    # B's service and professional are unknown here: a 400 naming the field.
    "availability": lambda b: {
        "service": b.service.pk,
        "professional": b.professional.pk,
        "start": timezone.now().isoformat(),
        "end": (timezone.now() + timedelta(days=7)).isoformat(),
    },
    # The providers of the key's clinic only.
    "api-health-integrations": lambda b: {},
}


#: Endpoints that hold no clinic's rows.
NO_CLINIC_DATA = {
    "api-root": "the list of endpoints",
    "api-schema": "the OpenAPI schema",
    "api-docs": "the schema's browsable docs",
}


@pytest.fixture
def api_a(clinic_a):
    _key, secret = api_key_create(clinic=clinic_a, name="Tenancy", scopes=list(API_SCOPES))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _path(route: str, **kwargs) -> str:
    path = "/" + route.replace("^", "").replace("$", "")
    for name, value in kwargs.items():
        start = path.index(f"(?P<{name}>")
        end = path.index(")", start) + 1
        path = path[:start] + str(value) + path[end:]
    return path


ENDPOINTS = api_endpoints()
LISTS = sorted(
    name for name, (_r, p) in ENDPOINTS.items() if name.endswith("-list") and "GET" in _methods(p)
)
DETAILS = sorted(
    name
    for name, (route, _p) in ENDPOINTS.items()
    if "(?P<pk>" in route and name.rsplit("-", 1)[0] in RESOURCES
)
POSTS = sorted(
    name for name, (_r, p) in ENDPOINTS.items() if name.endswith("-list") and "POST" in _methods(p)
)


def _basename(name: str) -> str:
    return name.rsplit("-", 1)[0]


def _ids(response) -> set:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {str(row.get("id")) for row in rows}


@pytest.mark.parametrize("name", LISTS)
def test_lists_never_hold_other_clinics_rows(name, clinic_a, clinic_b, world_b, api_a):
    basename = _basename(name)
    row_a = make(RESOURCES[basename], clinic_a)
    row_b = make(RESOURCES[basename], clinic_b)
    route, _pattern = ENDPOINTS[name]

    response = api_a.get(_path(route))

    assert response.status_code == 200, response.content
    assert str(row_a.pk) in _ids(response)  # the list works …
    assert str(row_b.pk) not in _ids(response)  # … and holds nothing of clinic B
    assert not world_b.shown_in(response.content)
    for params in FILTERS.get(basename, lambda b: [])(world_b):
        filtered = api_a.get(_path(route), params)
        assert filtered.status_code in (200, 400), filtered.content
        assert filtered.status_code == 400 or _ids(filtered) == set(), params


@pytest.mark.parametrize("name", DETAILS)
def test_detail_views_answer_404_for_other_clinics_rows(name, clinic_b, api_a):
    route, pattern = ENDPOINTS[name]
    row_b = make(RESOURCES[_basename(name)], clinic_b)
    path = _path(route, pk=row_b.pk)
    before_row, before = snapshot(row_b), footprint(clinic_b)

    for method in sorted(_methods(pattern)):
        response = getattr(api_a, method.lower())(path, {}, format="json")
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"
        assert response["Content-Type"].startswith(PROBLEM)
        assert str(row_b.pk) not in response.json().get("detail", "")
    assert snapshot(row_b) == before_row
    assert footprint(clinic_b) == before


@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_naming_other_clinics_rows_are_refused(
    name, clinic_a, clinic_b, world_a, world_b, api_a
):
    route, _pattern = ENDPOINTS[f"{name}-list"]
    written = model(RESOURCES[name])
    before_a, before = written.objects.filter(clinic=clinic_a).count(), footprint(clinic_b)

    for field, body in _bodies(name, world_a, world_b):
        response = api_a.post(_path(route), body, format="json")
        assert 400 <= response.status_code < 500, f"{body}: {response.status_code}"
        assert response["Content-Type"].startswith(PROBLEM)
        assert field in response.json().get("errors", {}), f"{field}: {response.json()}"

    assert written.objects.filter(clinic=clinic_a).count() == before_a  # nothing written
    assert footprint(clinic_b) == before


@pytest.mark.parametrize("name", sorted(OTHER_VIEWS))
def test_other_endpoints_ignore_other_clinics_rows(name, clinic_a, clinic_b, world_b, api_a):
    route, _pattern = ENDPOINTS[name]
    account_a, account_b = make("ProviderAccount", clinic_a), make("ProviderAccount", clinic_b)
    make("DeadLetter", clinic_b)
    before = footprint(clinic_b)

    response = api_a.get(_path(route), OTHER_VIEWS[name](world_b))

    if name == "availability":
        assert response.status_code == 400
        assert response["Content-Type"].startswith(PROBLEM)
        assert "service" in response.json()["errors"]
    else:
        assert response.status_code == 200
        assert account_a.label in response.content.decode()  # A's providers are reported …
        assert account_b.label not in response.content.decode()  # … B's are not
        assert response.json()["outbox"]["dead_letters"]["value"] == 0  # nor B's counts
    assert not world_b.shown_in(response.content)
    assert clinic_b.name not in response.content.decode()
    assert footprint(clinic_b) == before
