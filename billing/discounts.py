"""A plug-in point: who turns a code typed at the desk (or sent by the API) into a discount.

Billing knows nothing of vouchers, loyalty points or campaigns; an app above it registers a
function that recognises its own codes::

    @discount_code_handler("loyalty")
    def voucher_discount(*, payment, code, by) -> Discount | None:
        ...  # None: not one of mine

The function runs inside the transaction that creates the payment (before it is paid or
sent to a gateway), so whatever it writes (a voucher marked used) commits or rolls back
with the payment. It raises a ``BillingError`` (e.g. ``DiscountRefused``) to refuse a code it
owns: spent, expired, another patient's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Discount:
    """What a handler grants: an amount off (at most the charge less one cent), and how
    it shows on the payment."""

    amount: Decimal
    reference: str
    label: str


DiscountHandler = Callable[..., "Discount | None"]
_handlers: dict[str, DiscountHandler] = {}


def discount_code_handler(source: str):
    """Register a function ``(*, payment, code, by) -> Discount | None`` for ``source``."""

    def decorator(func: DiscountHandler) -> DiscountHandler:
        existing = _handlers.get(source)
        if existing is not None and existing is not func:
            raise ValueError(f"discount source {source!r} is registered twice")
        _handlers[source] = func
        return func

    return decorator


def discount_handlers() -> dict[str, DiscountHandler]:
    return dict(_handlers)
