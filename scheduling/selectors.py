"""Shared reads of the agenda (admin, portal, API and KPIs use the same queries)."""

from .availability import Slot, slot_list_available  # noqa: F401 - the availability engine
