"""What the OpenAPI schema says beyond what drf-spectacular infers (issue 17): the
problem+json answers of every operation with a shared ``Problem`` schema, the headers
(``X-Api-Key``, ``Idempotency-Key`` per request, ``Location``, ``RateLimit-*``,
``Retry-After``, ``Idempotent-Replayed``) and integer path ids. A postprocessing hook
(``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``), so every endpoint gets it alike."""

from __future__ import annotations

API_PREFIX = "/api/v1/"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error (RFC 9457). ``errors``: field → messages, for a 400.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "conflicts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "For a taken slot (409): what is occupied.",
        },
    },
    "required": ["type", "title", "status"],
}

_INT = {"type": "integer"}
RATE_HEADERS = {
    "RateLimit-Limit": {"schema": _INT, "description": "Requests allowed per window."},
    "RateLimit-Remaining": {"schema": _INT, "description": "Requests left in this window."},
    "RateLimit-Reset": {"schema": _INT, "description": "Seconds until the window resets."},
}
RETRY_AFTER = {"schema": _INT, "description": "Seconds to wait before trying again."}
ALLOW = {
    "schema": {"type": "string"},
    "description": "The methods this path takes, e.g. ``GET, POST, HEAD, OPTIONS``.",
}
REPLAYED = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "Present when this is the stored answer to an earlier request with "
    "the same Idempotency-Key and body.",
}
LOCATION = {"schema": {"type": "string", "format": "uri"}, "description": "The new resource."}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key and body within 24 h: the first answer, replayed "
    "(Idempotent-Replayed: true). Same key, other body: 422. The first still running: 409.",
}

DESCRIPTIONS = {
    "400": "Invalid request: ``errors`` maps each field to its messages.",
    "401": "No key, or an unknown, revoked or expired one.",
    "403": "The key lacks the scope this operation needs.",
    "404": "Not found (or another clinic's).",
    "405": "This path does not take this method.",
    "409": "Conflict: the slot is taken, the record exists, or a request with this "
    "Idempotency-Key is still running (Retry-After).",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
    "422": "This Idempotency-Key was used with another body.",
    "429": "Too many requests (Retry-After).",
}


def _problem_response(status: str, *, post: bool) -> dict:
    headers = dict(RATE_HEADERS)
    if status in ("409", "429"):
        headers["Retry-After"] = RETRY_AFTER
    if status == "405":
        headers["Allow"] = ALLOW
    if post:
        headers["Idempotent-Replayed"] = REPLAYED
    return {
        "description": DESCRIPTIONS[status],
        "headers": headers,
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }


def partner_api_postprocess(result, generator, request, public):
    """Add errors, headers and integer ids to every ``/api/v1/`` operation."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schemes = components.setdefault("securitySchemes", {})
    schemes["apiKeyHeader"] = {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX) or path.startswith(f"{API_PREFIX}schema/"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            _operation(operation, method=method)
    _defaults_are_optional_in_requests(result)
    return result


def _refs(node) -> set[str]:
    """The component names a piece of the schema refers to (``$ref``), at any depth."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _defaults_are_optional_in_requests(result: dict) -> None:
    """drf-spectacular marks a field with a default as required (in an answer it is always
    there), and one component serves requests and answers; so a typed client had to send
    ``notes`` with every booking. In a component only request bodies use, a property with
    a ``default`` is optional: the server fills it in."""
    requests, answers = set(), set()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                requests |= _refs(operation.get("requestBody", {}))
                answers |= _refs(operation.get("responses", {}))
    schemas = result.get("components", {}).get("schemas", {})
    for name in requests - answers:
        component = schemas.get(name, {})
        properties = component.get("properties", {})
        required = [
            f for f in component.get("required", []) if "default" not in properties.get(f, {})
        ]
        if required:
            component["required"] = required
        else:
            component.pop("required", None)


def _operation(operation: dict, *, method: str) -> None:
    post = method == "post"
    security = operation.get("security")
    if security is not None and {"apiKey": []} in security:
        security.insert(security.index({"apiKey": []}) + 1, {"apiKeyHeader": []})
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter["in"] == "path" and schema.get("type") == "string" and "format" not in schema:
            parameter["schema"] = {"type": "integer"}  # every route's ids are \d+
    if post:
        operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
    responses = operation["responses"]
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers.update(RATE_HEADERS)
        if status == "201":
            headers["Location"] = LOCATION
        if post:
            headers["Idempotent-Replayed"] = REPLAYED
    statuses = ["400", "401", "403", "404", "405", "429"]
    if method in ("post", "patch", "put"):
        statuses += ["413", "415"]
    if post:
        statuses += ["409", "422"]
    for status in sorted(statuses):
        responses.setdefault(status, _problem_response(status, post=post))
