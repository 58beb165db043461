"""Lead scoring: configurable rules → a score 0–100 → cold / warm / hot.

Rules read only marketing facts — the source, the interest the lead ticked, interactions,
replies, time since last contact, visits to the booking page — never clinical data (CID,
notes, prescriptions): LGPD art. 11 §4 forbids using health data for an economic
advantage. A clinic overrides a rule's weight in ``MarketingSettings.scoring_rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .choices import Direction, InteractionKind, Temperature

#: rule name → weight. Source rules add when the lead came from there; per-interaction
#: rules add per occurrence (capped by the ``*_max`` entries); ``stale_days``/``stale`` take
#: points away when nobody heard from the lead for that long.
DEFAULT_RULES: dict[str, int] = {
    "source:referral": 30,
    "source:whatsapp": 20,
    "source:google_ads": 15,
    "source:website": 10,
    "source:instagram": 10,
    "source:facebook_ads": 10,
    "interest_given": 10,
    "marketing_consent": 5,
    "inbound_message": 10,
    "inbound_message_max": 30,
    "reply": 15,
    "booking_page_visit": 15,
    "booking_page_visit_max": 30,
    "call": 10,
    "stale_days": 14,
    "stale": -20,
}


@dataclass(frozen=True)
class LeadFacts:
    """What scoring may know of a lead: nothing clinical."""

    source: str
    interest_type: str
    marketing_consent: bool
    inbound_messages: int
    replied: bool
    booking_page_visits: int
    calls: int
    last_interaction_at: datetime | None


def rules_for(overrides: dict | None) -> dict[str, int]:
    rules = dict(DEFAULT_RULES)
    for key, value in (overrides or {}).items():
        if key in DEFAULT_RULES or key.startswith("source:"):
            rules[key] = int(value)
    return rules


def score(facts: LeadFacts, *, rules: dict[str, int], now: datetime) -> int:
    """The lead's score, 0–100."""
    total = rules.get(f"source:{facts.source}", 0)
    if facts.interest_type:
        total += rules["interest_given"]
    if facts.marketing_consent:
        total += rules["marketing_consent"]
    total += min(facts.inbound_messages * rules["inbound_message"], rules["inbound_message_max"])
    if facts.replied:
        total += rules["reply"]
    total += min(
        facts.booking_page_visits * rules["booking_page_visit"], rules["booking_page_visit_max"]
    )
    total += facts.calls * rules["call"]
    if facts.last_interaction_at and (now - facts.last_interaction_at).days >= rules["stale_days"]:
        total += rules["stale"]
    return max(0, min(100, total))


def temperature(value: int, *, warm_from: int, hot_from: int) -> str:
    if value >= hot_from:
        return Temperature.HOT
    if value >= warm_from:
        return Temperature.WARM
    return Temperature.COLD


INBOUND = Direction.INBOUND
COUNTED_KINDS = (InteractionKind.MESSAGE, InteractionKind.BOOKING_PAGE, InteractionKind.CALL)
