"""Money: ``Decimal`` with two places, rounded half up, explicitly — never floats."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def money(value) -> Decimal:
    """``value`` as reais with two places (half up). Floats are refused: they cannot hold
    most cent values exactly."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a Decimal or a string")
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError):
        raise ValueError(f"not an amount of money: {value!r}") from None


def brl(value: Decimal) -> str:
    """R$ 1.234,56 — the Brazilian way."""
    value = money(value)
    sign = "-" if value < 0 else ""
    units, cents = f"{abs(value):.2f}".split(".")
    groups = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    return f"{sign}R$ {'.'.join(groups)},{cents}"
