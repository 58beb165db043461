"""The JSON Schemas a model's answer must satisfy, and their validation.

A model output that does not validate is no answer at all: the caller gets ``None`` and the
rules answer instead.
"""

from __future__ import annotations

from jsonschema import Draft202012Validator

#: Intents the assistant understands (issue 24), named as clinic.messaging.assistant names
#: them (``Intent``); ``extract(..., intents=...)`` takes the assistant's own list.
#: ``unknown`` is how the model says it is not sure: the rules answer then.
INTENTS = (
    "book",
    "reschedule",
    "cancel",
    "confirm",
    "my_appointments",
    "prices",
    "package",  # balance of a package of sessions
    "pay",
    "address_hours",
    "faq",
    "human",
    "opt_out",
    "greeting",
    "thanks",
    "unknown",
)
PERIODS = ("morning", "afternoon", "evening")


def extraction_schema(intents: tuple[str, ...] | list[str] = INTENTS) -> dict:
    """Intent and entities of one patient message."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["intent", "confidence"],
        "properties": {
            "intent": {"type": "string", "enum": list(intents)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "entities": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "service": {"type": "string", "maxLength": 80},
                    "professional": {"type": "string", "maxLength": 80},
                    "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                    "time": {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"},
                    "period": {"type": "string", "enum": list(PERIODS)},
                    "choice": {"type": "integer", "minimum": 1, "maximum": 50},
                    "question": {"type": "string", "maxLength": 300},
                },
            },
        },
    }


ANSWER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answerable", "text", "cited_entry_ids"],
    "properties": {
        "answerable": {"type": "boolean"},
        "text": {"type": "string", "maxLength": 700},
        "cited_entry_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 10},
    },
}


def schema_errors(data: object, schema: dict) -> list[str]:
    """Every way ``data`` breaks ``schema`` (empty when it is valid)."""
    validator = Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(data)
    ]
