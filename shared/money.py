"""Money: integer nano-dollars inside, whole cents at the edges, rounded half-up once.

A nano-dollar (1e-9 USD, the ``nanos`` of Google's Money type) is fine enough that every
listed per-token price is a whole number and a 0.0008-cent call is billed, not rounded away.
Totals are rounded from exact sums, never summed from rounded parts. Every conversion lives
here; the SQL has its own one named constant (``kx_nanos``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

NANOS_PER_CENT = 10_000_000
NANOS_PER_USD = 100 * NANOS_PER_CENT
NANOS_PER_TOKEN_PER_USD_PER_MTOK = NANOS_PER_USD // 1_000_000  # a price in USD per million tokens


def cents(nanos: int) -> int:
    """Whole cents, rounded half up (half away from zero for negative amounts: refunds)."""
    if nanos < 0:
        return -cents(-nanos)
    return (nanos + NANOS_PER_CENT // 2) // NANOS_PER_CENT


def nanos(cents: int) -> int:
    return cents * NANOS_PER_CENT


def half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in integers (for non-negative values)."""
    return (2 * numerator + denominator) // (2 * denominator)


class Month(NamedTuple):
    """A customer's (and key's) month as the gateway reports it: caps in cents, spend exact."""

    month: str
    cap_cents: int
    spent_nanos: int
    key_cap_cents: int | None
    key_spent_nanos: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Month:
        """From a row with these columns (ADMIT's answer, say)."""
        return cls(
            row["month"], row["cap_cents"], row["spent_nanos"], row["key_cap_cents"], row["key_spent_nanos"]
        )

    def spent(self, spent_nanos: int, key_spent_nanos: int) -> Month:
        """The same month after a call: its new spend."""
        return self._replace(spent_nanos=spent_nanos, key_spent_nanos=key_spent_nanos)

    def view(self) -> dict[str, Any]:
        """The ``month`` object of the public contract."""
        return {
            "month": self.month,
            "cap_cents": self.cap_cents,
            "spent_cents": cents(self.spent_nanos),
            "key_cap_cents": self.key_cap_cents,
            "key_spent_cents": cents(self.key_spent_nanos),
        }


def cents_of(row: Mapping[str, Any], *names: str) -> dict[str, int]:
    """``{"x_cents": ...}`` for each ``"x_nanos"`` of ``names`` in ``row``, each rounded once."""
    return {name.removesuffix("_nanos") + "_cents": cents(int(row[name])) for name in names}
