"""The envelope every webhook delivery carries, and a JSON Schema per event type.

One envelope for every event type (docs/webhooks.md, "The envelope")::

    {"id": "<uuid>", "type": "<event type>", "clinic_id": 12,
     "created_at": "2026-01-01T00:00:00Z", "data": {...}}

and one time format everywhere in it: RFC 3339 in UTC with a ``Z``. Producers write times as
they have them (a booking made from a -03:00 request keeps its offset in ``Event.payload``);
:func:`envelope` normalises them when a delivery is built, so a partner never sees two
formats, whatever the event and however old the queued event is.

The schemas are published at ``/api/schema/events/`` (an index) and
``/api/schema/events/<type>.json``, beside the OpenAPI schema at ``/api/schema/``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from .events import EVENT_TYPES

PING_EVENT = "ping"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The one time format of deliveries: RFC 3339, UTC, ``Z``.
UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_AWARE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")


def utc_iso(moment: datetime) -> str:
    """``moment`` in the deliveries' format: UTC, ``Z``."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalise_times(value):
    """``value`` with every date-time with an offset (a string, or a datetime) written in
    UTC with ``Z``; everything else unchanged."""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, str) and _AWARE_ISO.match(value):
        try:
            return utc_iso(datetime.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {key: normalise_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise_times(item) for item in value]
    return value


def envelope(
    *, event_id: str, event_type: str, clinic_id: int, created_at: datetime, data: dict
) -> dict:
    """The body of a delivery (its key order is the documented one)."""
    return {
        "id": event_id,
        "type": event_type,
        "clinic_id": clinic_id,
        "created_at": utc_iso(created_at),
        "data": normalise_times(data or {}),
    }


# --- Schemas --------------------------------------------------------------------------------
_ID = {"type": "integer", "minimum": 1}
_ID_OR_NULL = {"type": ["integer", "null"], "minimum": 1}
_TIME = {"type": "string", "format": "date-time", "pattern": UTC_PATTERN}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time", "pattern": UTC_PATTERN}
_TEXT = {"type": "string"}
_MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal, in BRL"}
_FIELDS = {"type": "array", "items": {"type": "string"}, "description": "names, not values"}

_APPOINTMENT = {
    "required": ["appointment_id", "patient_id", "professional_id", "service_id", "start", "end"],
    "properties": {
        "appointment_id": _ID,
        "patient_id": _ID,
        "professional_id": _ID,
        "service_id": _ID,
        "room_id": _ID_OR_NULL,
        "start": _TIME,
        "end": _TIME,
        "status": _TEXT,
        "via": _TEXT,
        "late": {"type": "boolean"},
        "encaixe": {"type": "boolean"},
    },
}
_PAYMENT = {
    "required": ["payment_id", "patient_id", "amount", "status"],
    "properties": {
        "payment_id": _ID,
        "reference": _TEXT,
        "patient_id": _ID,
        "appointment_id": _ID_OR_NULL,
        "patient_package_id": _ID_OR_NULL,
        "amount": _MONEY,
        "amount_received": _MONEY,
        "refunded": _MONEY,
        "refunded_total": _MONEY,
        "method": _TEXT,
        "gateway": _TEXT,
        "status": _TEXT,
        "cancelled": {"type": "boolean"},
    },
}
_INVOICE = {
    "required": ["invoice_id", "payment_id"],
    "properties": {"invoice_id": _ID, "payment_id": _ID},
}
_MESSAGE = {
    "required": ["inbound_webhook_id", "provider", "account_id"],
    "properties": {
        "inbound_webhook_id": _ID,
        "item": {"type": "integer", "minimum": 0},
        "provider": _TEXT,
        "account_id": _ID,
        "provider_message_id": {"type": ["string", "null"]},
        "status": _TEXT,
    },
}
_BACKUP = {
    "required": ["backup_run_id", "kind", "status"],
    "properties": {
        "backup_run_id": _ID,
        "kind": _TEXT,
        "method": _TEXT,
        "status": _TEXT,
        "label": _TEXT,
        "triggered_by": _TEXT,
        "target": _TIME_OR_NULL,
    },
}

#: What ``data`` holds, per event type. Types without an entry (not yet published by any
#: code) get the generic rules only: ids are integers, times are UTC.
DATA: dict[str, dict] = {
    "patient.created": {"required": ["patient_id"], "properties": {"patient_id": _ID}},
    "patient.updated": {
        "required": ["patient_id", "fields"],
        "properties": {"patient_id": _ID, "fields": _FIELDS},
    },
    "patient.anonymised": {
        "required": ["patient_id"],
        "properties": {"patient_id": _ID, "privacy_request_id": _ID_OR_NULL},
    },
    "privacy.requested": {
        "required": ["privacy_request_id", "patient_id", "kind"],
        "properties": {"privacy_request_id": _ID, "patient_id": _ID, "kind": _TEXT},
    },
    "lead.created": {
        "required": ["lead_id"],
        "properties": {
            "lead_id": _ID,
            "source": _TEXT,
            "referral_code": {
                "type": "string",
                "maxLength": 32,
                "description": "a patient's referral code the lead came with, or empty",
            },
        },
    },
    "lead.hot": {
        "required": ["lead_id"],
        "properties": {"lead_id": _ID, "score": {"type": "integer", "minimum": 0, "maximum": 100}},
    },
    "campaign.completed": {
        "required": ["campaign_id"],
        "properties": {
            "campaign_id": _ID,
            "kind": _TEXT,
            "sent": {"type": "integer", "minimum": 0},
            "holdout": {"type": "integer", "minimum": 0},
        },
    },
    "lead.updated": {"required": ["lead_id"], "properties": {"lead_id": _ID, "fields": _FIELDS}},
    "lead.converted": {
        "required": ["lead_id"],
        "properties": {"lead_id": _ID, "patient_id": _ID_OR_NULL},
    },
    **{
        name: _APPOINTMENT
        for name in EVENT_TYPES
        if name.startswith("appointment.") or name == "slot.freed"
    },
    "waitlist.offered": {
        "required": ["offer_id", "entry_id", "patient_id"],
        "properties": {
            "offer_id": _ID,
            "entry_id": _ID,
            "patient_id": _ID,
            "service_id": _ID_OR_NULL,
            "professional_id": _ID_OR_NULL,
        },
    },
    **{name: _PAYMENT for name in EVENT_TYPES if name.startswith("payment.")},
    **{name: _INVOICE for name in EVENT_TYPES if name.startswith("invoice.")},
    "package.purchased": {
        "required": ["patient_package_id", "patient_id", "package_id"],
        "properties": {"patient_package_id": _ID, "patient_id": _ID, "package_id": _ID},
    },
    "package.expiring": {
        "required": ["patient_package_id", "patient_id"],
        "properties": {"patient_package_id": _ID, "patient_id": _ID},
    },
    "loyalty.points_earned": {
        "required": ["account_id", "patient_id", "entry_id", "points", "balance"],
        "properties": {
            "account_id": _ID,
            "patient_id": _ID,
            "entry_id": _ID,
            "points": {"type": "integer", "minimum": 1},
            "balance": {"type": "integer", "minimum": 0},
            "reference_type": {
                "enum": [
                    "payment",
                    "appointment",
                    "referral",
                    "reward",
                    "birthday",
                    "survey",
                    "manual",
                    "lot",
                    "",
                ]
            },
            "reference_id": _ID_OR_NULL,
            "expires_at": _TIME_OR_NULL,
        },
    },
    "loyalty.tier_changed": {
        "required": ["account_id", "patient_id", "from", "to", "direction"],
        "properties": {
            "account_id": _ID,
            "patient_id": _ID,
            "from": {"enum": ["bronze", "silver", "gold", "platinum"]},
            "to": {"enum": ["bronze", "silver", "gold", "platinum"]},
            "direction": {"enum": ["up", "down"]},
            "points_12m": {"type": "integer"},
        },
    },
    "referral.rewarded": {
        "required": ["referral_id", "referrer_patient_id", "referred_patient_id"],
        "properties": {
            "referral_id": _ID,
            "referrer_patient_id": _ID,
            "referred_patient_id": _ID,
            "referrer_points": {"type": "integer", "minimum": 0},
            "referred_points": {"type": "integer", "minimum": 0},
        },
    },
    "message.inbound": _MESSAGE,
    "message.status": _MESSAGE,
    **{name: _BACKUP for name in EVENT_TYPES if name.startswith("backup.")},
    "encounter.finalized": {
        "required": ["encounter_id", "patient_id", "professional_id"],
        "properties": {
            "encounter_id": _ID,
            "patient_id": _ID,
            "professional_id": _ID,
            "appointment_id": _ID_OR_NULL,
        },
    },
    "record.emergency_access": {
        "required": ["break_glass_id", "patient_id", "user_id"],
        "properties": {"break_glass_id": _ID, "patient_id": _ID, "user_id": _ID},
    },
    PING_EVENT: {"required": ["subscription_id"], "properties": {"subscription_id": _ID}},
}

#: Rules for keys a schema does not name (new keys may be added to any event): an id is an
#: integer, a time is UTC; and never an object (payloads are flat, ids only).
_GENERIC = {
    "patternProperties": {
        r"_id$": _ID_OR_NULL,
        r"(_at|^start|^end|^target)$": _TIME_OR_NULL,
    },
    "additionalProperties": {
        "type": ["string", "integer", "number", "boolean", "null", "array"],
    },
}


def schema_for(event_type: str, *, base_url: str = "") -> dict:
    """The JSON Schema (2020-12) of a delivery of ``event_type``."""
    if event_type not in EVENT_TYPES and event_type != PING_EVENT:
        raise KeyError(event_type)
    data = DATA.get(event_type, {})
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{base_url}{event_type}.json",
        "title": f"Cuidar webhook: {event_type}",
        "type": "object",
        "required": ["id", "type", "clinic_id", "created_at", "data"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "type": {"const": event_type},
            "clinic_id": _ID,
            "created_at": _TIME,
            "data": {
                "type": "object",
                "required": data.get("required", []),
                "properties": data.get("properties", {}),
                **_GENERIC,
            },
        },
    }


def event_type_names() -> list[str]:
    return sorted(EVENT_TYPES | {PING_EVENT})


# --- Views ----------------------------------------------------------------------------------
def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("event-schemas"))


@require_GET
def event_schemas_index(request: HttpRequest) -> JsonResponse:
    """``GET /api/schema/events/``: every event type and the URL of its schema."""
    base = _base_url(request)
    return JsonResponse(
        {
            "envelope": ["id", "type", "clinic_id", "created_at", "data"],
            "time_format": "RFC 3339, UTC, with Z",
            "event_types": {name: f"{base}{name}.json" for name in event_type_names()},
        }
    )


@require_GET
def event_schema(request: HttpRequest, event_type: str) -> JsonResponse:
    """``GET /api/schema/events/<type>.json``: the JSON Schema of one event type."""
    try:
        schema = schema_for(event_type, base_url=_base_url(request))
    except KeyError:
        raise Http404 from None
    return JsonResponse(schema, content_type="application/schema+json")
