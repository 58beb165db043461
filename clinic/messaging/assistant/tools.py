"""The assistant's tools: a registry this package defines and the apps above it fill.

``clinic.messaging`` lies below scheduling and billing, so it cannot call their services.
Scheduling (``scheduling/assistant_tools.py``) and billing (``billing/assistant_tools.py``)
register functions here in their ``apps.py`` ``ready()``; the dialogue calls them by name.
Every time, price and booking the assistant says comes from a tool — never from a model.

Tools (keyword arguments; values are plain data, ids and aware datetimes):

- ``services(clinic)`` → ``[ServiceInfo]`` bookable services with their price;
- ``professionals(clinic, service_id)`` → ``[(id, name)]``;
- ``availability(clinic, service_id, professional_id|None, first_day, last_day, hours,
  limit)`` → ``[SlotInfo]`` real free slots (``hours`` = (from, to) or ``None``);
- ``book(clinic, patient, slot: SlotInfo, service_id)`` → ``AppointmentInfo``, slot
  re-checked (``SlotTaken`` when someone was faster);
- ``reschedule(clinic, patient, appointment_id, slot, service_id)`` → ``AppointmentInfo``;
- ``cancel(clinic, patient, appointment_id)`` → ``AppointmentInfo`` (``ToolRefused`` when
  the cancellation window has closed);
- ``confirm(clinic, patient, appointment_id)`` → ``AppointmentInfo``;
- ``upcoming(clinic, patient)`` → ``[AppointmentInfo]``;
- ``package_balance(clinic, patient)`` → ``[PackageInfo]``;
- ``open_charge(clinic, patient)`` → ``ChargeInfo | None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from clinic.kernel.errors import ApplicationError


class ToolMissing(ApplicationError):
    """No app registered this tool (the assistant then hands over to a person)."""


class ToolRefused(ApplicationError):
    """The service refused what was asked (the message says why, for the patient)."""


class SlotTaken(ToolRefused):
    """The slot was taken between the offer and the booking."""


@dataclass(frozen=True)
class ServiceInfo:
    id: int
    name: str
    price: Decimal | None
    duration_minutes: int


@dataclass(frozen=True)
class SlotInfo:
    start: datetime
    professional_id: int
    professional_name: str
    room_id: int | None = None

    def as_json(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "professional_id": self.professional_id,
            "professional_name": self.professional_name,
            "room_id": self.room_id,
        }

    @classmethod
    def from_json(cls, data: dict) -> SlotInfo:
        return cls(
            start=datetime.fromisoformat(data["start"]),
            professional_id=data["professional_id"],
            professional_name=data["professional_name"],
            room_id=data.get("room_id"),
        )


@dataclass(frozen=True)
class AppointmentInfo:
    id: int
    start: datetime
    service_id: int
    service_name: str
    professional_name: str
    status: str
    professional_id: int | None = None


@dataclass(frozen=True)
class PackageInfo:
    name: str
    sessions_left: int
    expires_on: date | None


@dataclass(frozen=True)
class ChargeInfo:
    id: int
    description: str
    amount: Decimal
    due_date: date | None
    pix_code: str
    link: str


_tools: dict[str, Callable] = {}


def assistant_tool(name: str):
    """Register ``func`` as the tool ``name`` (an app above messaging, in its ready())."""

    def decorator(func: Callable) -> Callable:
        _tools[name] = func
        return func

    return decorator


def tool(name: str) -> Callable:
    try:
        return _tools[name]
    except KeyError:
        raise ToolMissing(f"no assistant tool {name!r} is registered") from None


def has_tool(name: str) -> bool:
    return name in _tools
