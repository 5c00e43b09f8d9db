"""The price and sell versions a call is billed at, read once per process.

A version row never changes (a price change is a new version), so ADMIT names the versions it
found instead of building, sending and having the gateway parse both rows on every call: a
process reads a version the first time a call names it and keeps it. A version is named by its
id and the moment its row was written, so an id that a restored database hands out again can
never find the row it named before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import db
from shared.billing import pricing
from shared.billing.pricing import AT_COST, ModelPrice, Sell

_READ = """
SELECT (SELECT to_jsonb(mp) || jsonb_build_object('provider', mo.provider, 'model', mo.name,
                                                  'max_input_tokens', mo.max_input_tokens)
        FROM model_prices mp JOIN models mo ON mo.id = mp.model_id
        WHERE mp.id = %(price_version_id)s AND mp.created_at = %(price_written_at)s) AS price,
       (SELECT to_jsonb(s) FROM sell_prices s
        WHERE s.id = %(sell_version_id)s AND s.created_at = %(sell_written_at)s) AS sell
"""
_Name = tuple[int, datetime]


class Versions:
    """Versions by name, at most ``size`` of each kind: more than a price book holds, so a
    process reads each version it bills once; past that the oldest are read again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._prices: dict[_Name, ModelPrice] = {}
        self._sells: dict[_Name, Sell] = {}

    async def of(self, admission: dict[str, Any]) -> tuple[ModelPrice, Sell]:
        """The cost price and sell rule ADMIT admitted the call at (its ``*_version_id`` and
        ``*_written_at``); no sell version: sold at cost."""
        price_name = (admission["price_version_id"], admission["price_written_at"])
        sell_name = (admission["sell_version_id"], admission["sell_written_at"])
        price = self._prices.get(price_name)
        sell = AT_COST if sell_name[0] is None else self._sells.get(sell_name)
        if price is not None and sell is not None:
            return price, sell
        row = await db.fetch_row(_READ, admission)  # the names are ADMIT's own columns
        if row["price"] is None or (sell is None and row["sell"] is None):
            raise LookupError(f"price version {price_name} or sell version {sell_name} is gone")
        if price is None:
            price = _keep(self._prices, price_name, pricing.admitted_price(row["price"]), self.size)
        if sell is None:
            sell = _keep(self._sells, sell_name, pricing.admitted_sell(row["sell"]), self.size)
        return price, sell


def _keep(kept: dict[_Name, Any], name: _Name, version: Any, size: int) -> Any:
    if len(kept) >= size:
        kept.pop(next(iter(kept)))
    kept[name] = version
    return version


versions = Versions(size=10_000)
