"""Every write of the agenda: booking, the status machine, rescheduling, cancelling,
check-in, recurring series, the waitlist and calendar feeds.

Each function runs in one transaction, checks the status machine (``choices.TRANSITIONS``),
records who and how, and publishes its domain event in the same transaction.

No double booking: on PostgreSQL exclusion constraints refuse overlapping occupying
appointments (professional, room, patient), so concurrent bookings cannot both win; a
booking simply inserts, and a violation (SQLSTATE 23P01) becomes ``SlotUnavailable`` naming
*what* clashes, looked up then. On SQLite the service looks for clashes first, inside a
write transaction, and SQLite serialises writers (IMMEDIATE mode).

Modules by entity: ``appointments`` (booking and the status machine), ``series``,
``waitlist``, ``calendar_feeds``; ``common`` holds the clash look-ups they share.
"""

from .appointments import (
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_check_in_by_token,
    appointment_complete,
    appointment_confirm,
    appointment_mark_no_show,
    appointment_notes_update,
    appointment_reschedule,
    appointment_start,
    appointments_today,
    is_late_cancellation,
    local_day_bounds,
)
from .calendar_feeds import calendar_feed_rotate
from .encounters import (
    appointment_complete_after_encounter,
    appointment_in_care,
    appointment_start_encounter,
)
from .series import MAX_SERIES_OCCURRENCES, SeriesOccurrence, series_book, series_plan
from .waitlist import (
    waitlist_add,
    waitlist_offer_claim,
    waitlist_offer_slot,
    waitlist_offers_expire,
)

__all__ = [
    "MAX_SERIES_OCCURRENCES",
    "SeriesOccurrence",
    "appointment_book",
    "appointment_cancel",
    "appointment_check_in",
    "appointment_check_in_by_token",
    "appointment_complete",
    "appointment_complete_after_encounter",
    "appointment_confirm",
    "appointment_in_care",
    "appointment_mark_no_show",
    "appointment_notes_update",
    "appointment_reschedule",
    "appointment_start",
    "appointment_start_encounter",
    "appointments_today",
    "calendar_feed_rotate",
    "is_late_cancellation",
    "local_day_bounds",
    "series_book",
    "series_plan",
    "waitlist_add",
    "waitlist_offer_claim",
    "waitlist_offer_slot",
    "waitlist_offers_expire",
]
