"""The per-patient hash chain over signed entries (Lei 13.787/2018 art. 2: integrity).

Each signed entry is a link: ``entry_hash = SHA-256(prev_hash + canonical JSON of the entry)``,
where ``prev_hash`` is the hash of the patient's previous link ("" for the first) and the
canonical JSON holds every field that says what was recorded, by whom and when (keys sorted,
no spaces, UTC times with microseconds). Changing a signed row by any means — raw SQL
included, where the trigger was dropped or bypassed — changes its canonical JSON, so the
link no longer matches; deleting or reordering one breaks the next link's ``prev_hash``.

``chain_verify`` walks every chain in one ordered pass (a server-side cursor) and reports
the first broken link of each patient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import Entry

#: The fields a link covers, in the order ``values_list`` reads them.
CHAIN_FIELDS = (
    "pk",
    "clinic_id",
    "patient_id",
    "encounter_id",
    "kind",
    "content",
    "template_version_id",
    "confidential",
    "version",
    "supersedes_id",
    "justification",
    "author_id",
    "author_name",
    "council",
    "council_number",
    "council_state",
    "created_at",
    "finalized_at",
    "chain_seq",
    "prev_hash",
)


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def canonical(values: Iterable) -> str:
    """The canonical JSON of one entry, from its values in ``CHAIN_FIELDS`` order."""
    row = dict(zip(CHAIN_FIELDS, values, strict=True))
    row["created_at"] = _utc(row["created_at"])
    row["finalized_at"] = _utc(row["finalized_at"])
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, values: Iterable) -> str:
    return hashlib.sha256((prev_hash + canonical(values)).encode()).hexdigest()


def entry_values(entry: Entry) -> tuple:
    return tuple(getattr(entry, name) for name in CHAIN_FIELDS)


@dataclass(frozen=True)
class BrokenLink:
    """The first link of a patient's chain that does not hold."""

    clinic_id: int
    patient_id: int
    entry_id: int
    chain_seq: int
    reason: str


def _walk(rows: Iterator[tuple]) -> Iterator[BrokenLink]:
    patient = None
    prev_hash, expected_seq, broken = "", 1, False
    for row in rows:
        *values, stored_hash = row
        link = dict(zip(CHAIN_FIELDS, values, strict=True))
        if link["patient_id"] != patient:
            patient, prev_hash, expected_seq, broken = link["patient_id"], "", 1, False
        if broken:
            continue

        def fail(reason: str, link=link) -> BrokenLink:
            return BrokenLink(
                link["clinic_id"], link["patient_id"], link["pk"], link["chain_seq"], reason
            )

        if link["chain_seq"] != expected_seq:
            broken = True
            yield fail(f"missing link before position {link['chain_seq']}")
        elif link["prev_hash"] != prev_hash:
            broken = True
            yield fail("previous hash does not match")
        elif link_hash(prev_hash, values) != stored_hash:
            broken = True
            yield fail("content changed after signing")
        prev_hash, expected_seq = stored_hash, expected_seq + 1


def chain_verify(*, clinic_id: int | None = None, patient_ids=None) -> list[BrokenLink]:
    """Check every chain (of one clinic, or of some patients); the first broken link of each
    chain that does not hold."""
    qs = Entry.objects.filter(chain_seq__isnull=False)
    if clinic_id is not None:
        qs = qs.filter(clinic_id=clinic_id)
    if patient_ids is not None:
        qs = qs.filter(patient_id__in=patient_ids)
    rows = qs.order_by("patient_id", "chain_seq").values_list(*CHAIN_FIELDS, "entry_hash")
    return list(_walk(rows.iterator(chunk_size=5000)))
