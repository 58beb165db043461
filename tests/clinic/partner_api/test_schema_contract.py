"""The OpenAPI schema as a partner's generator reads it (issue 17): JSON bodies only, the
problem+json answers and the headers of every operation, integer ids."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, ops in schema["paths"].items():
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/schema/"):
            for method, op in ops.items():
                yield method, path, op


def test_the_schema_is_valid_openapi(schema):
    validate(schema)


def test_request_bodies_are_json_only(schema):
    for method, path, op in operations(schema):
        if "requestBody" in op:
            assert list(op["requestBody"]["content"]) == ["application/json"], (method, path)


def test_every_operation_documents_its_problems(schema):
    for method, path, op in operations(schema):
        expected = {"400", "401", "403", "404", "405", "429"}
        if method == "post":
            expected |= {"409", "413", "415", "422"}
        assert expected <= set(op["responses"]), (method, path)
        answer = op["responses"]["404"]["content"]["application/problem+json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status", "detail", "errors"} <= set(
        schema["components"]["schemas"]["Problem"]["properties"]
    )


def test_posts_take_an_idempotency_key_per_request_and_say_when_they_replay(schema):
    for method, path, op in operations(schema):
        if method == "post":
            names = {(p["in"], p["name"]) for p in op["parameters"]}
            assert ("header", "Idempotency-Key") in names, path
            for answer in op["responses"].values():
                assert "Idempotent-Replayed" in answer["headers"], path


def test_headers_location_rate_limits_and_retry_after_are_documented(schema):
    book = schema["paths"]["/api/v1/appointments/"]["post"]["responses"]
    assert "Location" in book["201"]["headers"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        book["201"]["headers"]
    )
    assert "Retry-After" in book["429"]["headers"]
    assert "Retry-After" in book["409"]["headers"]


def test_keys_may_be_sent_as_x_api_key_or_bearer(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["apiKey"]["scheme"] == "bearer"
    op = schema["paths"]["/api/v1/services/"]["get"]
    assert {"apiKeyHeader": []} in op["security"]


def test_the_dead_letter_retry_answers_202(schema):
    assert "202" in schema["paths"]["/api/v1/dlq/{id}/retry/"]["post"]["responses"]
    assert "200" not in schema["paths"]["/api/v1/dlq/{id}/retry/"]["post"]["responses"]


def test_path_ids_are_integers_and_event_ids_uuids(schema):
    for _method, path, op in operations(schema):
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "id":
                expected = "string" if path.startswith("/api/v1/events/") else "integer"
                assert parameter["schema"]["type"] == expected, path


def test_a_body_field_with_a_default_is_optional_for_a_client(schema):
    """A typed client (openapi-typescript) refused a booking without ``notes``: fields the
    server defaults are optional in request bodies, and what must be sent stays required."""
    components = schema["components"]["schemas"]
    book = components["AppointmentBook"]
    assert set(book["required"]) == {"patient", "professional", "service", "start"}
    assert "reason" not in components["AppointmentCancel"].get("required", [])
    # An answer's fields with a default are always present: still required there.
    assert "status" in components["Appointment"]["required"]
