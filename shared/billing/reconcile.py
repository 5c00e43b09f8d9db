"""A customer's month reconciled: what was charged, what was credited, what is due or left.

Pure arithmetic over rows the caller read (``shared.billing.invoices`` reads them), so the
rules can be tested without a database and hold for every snapshot:

- charges: AI usage at its SELL price (``usage_events.sell_nanos``) and KaixuPush charges;
- credits: the plan's included credit, top-ups (manual and Stripe), Stripe reversals
  (refunds and disputes: negative top-ups, each its own line) and credit carried in;
- ``balance = carried_in + included + topups_net - charges``; amount due
  ``= max(0, -balance)``, credit remaining ``= max(0, balance)``.

Every statement line is ``{kind, description, nanos, cents}`` with charges positive and
credits negative, and the grand total (due when positive, credit when negative) is EXACTLY
the sum of the lines' nanos. Cents are rounded half up once from exact nanos, per line and
per total (``money.cents``): never a sum of rounded parts.

Carry-over (:data:`CARRY_RULE`): only paid-in credit carries. Included credit is used first
and never carries, so ``carried_out = min(credit_remaining, max(0, carried_in + topups_net))``.
The invoice's issue books it into the next month; a void takes it back.

Usage is itemised per (provider, model, price version, sell version): a price change in the
middle of a month shows as two lines for the same model, each with its own unit prices
(exact decimal USD per million tokens). Cost and margin are in the document for the
operator; the customer's printable invoice leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from shared import money
from shared.errors import ApiError

Row = dict[str, Any]

CARRY_RULE = (
    "Only paid-in credit carries over: included credit is used first and never carries. "
    "The credit carried to the next month is the credit remaining, at most the credit carried in "
    "plus this month's top-ups net of refunds and disputes. It is booked when the invoice is issued "
    "and taken back if the invoice is voided."
)
USAGE_KEY = ("provider", "model", "price_version_id", "sell_version_id")
KEY_KEY = ("api_key_id", "last4", "label")
_SUMS = ("calls", "input_tokens", "output_tokens", "cost_nanos", "sell_nanos")
_MTOK = Decimal(money.NANOS_PER_TOKEN_PER_USD_PER_MTOK)  # nanos per token for 1 USD per 1M tokens
_USD = Decimal(money.NANOS_PER_USD)
_BP = Decimal(10_000)


def _plain(value: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros (``"0.165"``, ``"2"``)."""
    text = format(value.normalize(), "f")
    return text


def _rates(input_nanos: Decimal, output_nanos: Decimal, request_nanos: Decimal) -> dict[str, str]:
    """Per-token and per-call nanos as exact USD strings (per million tokens, per call)."""
    return {
        "input_usd_per_mtok": _plain(input_nanos / _MTOK),
        "output_usd_per_mtok": _plain(output_nanos / _MTOK),
        "request_usd": _plain(request_nanos / _USD),
    }


def cost_unit(row: Row) -> dict[str, str] | None:
    """The cost price version's base rates, or None when the event recorded no version (or the
    version no longer exists). Long-context tiers and cache rates are in the price book."""
    if row.get("cost_input_nanos") is None:
        return None
    return _rates(
        Decimal(row["cost_input_nanos"]),
        Decimal(row["cost_output_nanos"]),
        Decimal(row["cost_request_nanos"]),
    )


def sell_unit(row: Row) -> dict[str, str] | None:
    """What the customer paid per unit: the cost rates marked up, a fixed rule's own rates, or
    the cost rates when no sell rule applied (``sell_version_id`` NULL: sold at cost). Exact:
    a call's rounding to a whole nano is not in a rate."""
    if row.get("sell_version_id") is None:
        return cost_unit(row)
    kind = row.get("sell_kind")
    if kind == "fixed":
        return _rates(
            Decimal(row["sell_input_nanos"]),
            Decimal(row["sell_output_nanos"]),
            Decimal(row["sell_request_nanos"]),
        )
    if kind != "markup" or row.get("cost_input_nanos") is None:
        return None
    factor = (_BP + Decimal(row["sell_markup_bp"])) / _BP
    return _rates(
        Decimal(row["cost_input_nanos"]) * factor,
        Decimal(row["cost_output_nanos"]) * factor,
        Decimal(row["cost_request_nanos"]) * factor,
    )


def _with_cents(line: Row) -> Row:
    line.update(money.cents_of(line, "cost_nanos", "sell_nanos"))
    line["margin_nanos"] = line["sell_nanos"] - line["cost_nanos"]
    line["margin_cents"] = money.cents(line["margin_nanos"])
    return line


def _grouped(groups: Iterable[Row], by: Sequence[str]) -> dict[tuple[Any, ...], Row]:
    lines: dict[tuple[Any, ...], Row] = {}
    for group in groups:
        line = lines.setdefault(tuple(group[name] for name in by), {name: group[name] for name in by})
        for name in _SUMS:
            line[name] = line.get(name, 0) + int(group[name])
    return lines


def usage_lines(groups: Iterable[Row]) -> list[Row]:
    """One line per (provider, model, price version, sell version), oldest version first, with
    calls, tokens, exact cost and sell (each rounded to cents once) and the unit prices."""
    groups = list(groups)
    units = {tuple(g[name] for name in USAGE_KEY): g for g in groups}
    lines = _grouped(groups, USAGE_KEY)
    for key, line in lines.items():
        line["tokens"] = line["input_tokens"] + line["output_tokens"]
        line["cost_unit"] = cost_unit(units[key])
        line["sell_unit"] = sell_unit(units[key])
        line["prices_from"] = units[key].get("prices_from")
        _with_cents(line)
    return [lines[key] for key in sorted(lines, key=_version_order)]


def _version_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    provider, model, price_version, sell_version = key
    return (provider, model, price_version or 0, sell_version or 0)


def key_lines(groups: Iterable[Row]) -> list[Row]:
    """One line per key, the largest sell amount first."""
    lines = _grouped(groups, KEY_KEY)
    for line in lines.values():
        _with_cents(line)
    ordered = sorted(lines.items(), key=lambda item: (-item[1]["sell_nanos"], item[0][0]))
    return [line for _, line in ordered]


def _line(kind: str, description: str, nanos: int) -> Row:
    return {"kind": kind, "description": description, "nanos": nanos, "cents": money.cents(nanos)}


def _usage_description(line: Row) -> str:
    """``AI usage: openai gpt-4o-mini (price v3, sell v2; 12 calls, 3,456 tokens)``: the versions
    tell two lines of one model apart (events billed before versions were recorded have none)."""
    calls = f"{line['calls']:,} call{'s' if line['calls'] != 1 else ''}, {line['tokens']:,} tokens"
    versions = ", ".join(
        f"{name} v{line[f'{name}_version_id']}" for name in ("price", "sell") if line[f"{name}_version_id"]
    )
    return f"AI usage: {line['provider']} {line['model']} ({f'{versions}; ' if versions else ''}{calls})"


def _topup_description(topup: Row) -> str:
    day = str(topup["created_at"])[:10]
    if topup["source"] == "stripe_reversal":
        return f"Stripe refund or dispute taken back ({day})"
    return f"Top-up, {'Stripe' if topup['source'] == 'stripe' else 'manual'} ({day})"


def statement(
    usage: Sequence[Row],
    push_invoices: Sequence[Row],
    topups: Sequence[Row],
    *,
    included_nanos: int,
    carried_in_nanos: int,
    plan: str,
    previous_month: str,
) -> list[Row]:
    """The flat list of lines: charges (usage per version, KaixuPush) then credits (included,
    carried in, top-ups and reversals in the order they were booked)."""
    lines = [_line("usage", _usage_description(line), line["sell_nanos"]) for line in usage]
    for push in push_invoices:
        deploys = int(push.get("deploys") or 0)
        lines.append(
            _line("push", f"KaixuPush: {deploys:,} deploy{'s' if deploys != 1 else ''}", push["total_nanos"])
        )
    if included_nanos:
        lines.append(_line("included_credit", f"Credit included in the {plan} plan", -included_nanos))
    if carried_in_nanos:
        lines.append(_line("carried_in", f"Credit carried in from {previous_month}", -carried_in_nanos))
    for topup in topups:
        kind = "reversal" if topup["source"] == "stripe_reversal" else "topup"
        lines.append(_line(kind, _topup_description(topup), -money.nanos(int(topup["amount_cents"]))))
    return lines


def carried_out(credit_remaining_nanos: int, carried_in_nanos: int, topups_net_nanos: int) -> int:
    """What carries to the next month: only paid-in credit (carried in + top-ups net), never
    more than is left. Included credit is spent first, so it is never what remains."""
    return min(credit_remaining_nanos, max(0, carried_in_nanos + topups_net_nanos))


def totals(
    usage: Sequence[Row],
    lines: Sequence[Row],
    *,
    push_nanos: int,
    included_nanos: int,
    carried_in_nanos: int,
    topups: Sequence[Row],
) -> Row:
    """Every figure of the month, exact and in cents rounded once. ``grand_total_nanos`` is
    the sum of the lines' nanos (due when positive, credit when negative); the invoice row's
    ``total_cents`` is ``due_cents``. ``total_nanos`` / ``total_cents`` stay the usage amount
    (at the sell price) as they always were."""
    usage_sums = {name: sum(int(line[name]) for line in usage) for name in _SUMS}
    added = sum(money.nanos(int(t["amount_cents"])) for t in topups if t["source"] != "stripe_reversal")
    reversed_ = sum(money.nanos(int(t["amount_cents"])) for t in topups if t["source"] == "stripe_reversal")
    charges = usage_sums["sell_nanos"] + push_nanos
    credits = carried_in_nanos + included_nanos + added + reversed_
    grand = sum(int(line["nanos"]) for line in lines)
    assert grand == charges - credits, "the statement lines must add up to the balance"
    remaining = max(0, -grand)
    exact = {
        "usage_nanos": usage_sums["sell_nanos"],
        "total_nanos": usage_sums["sell_nanos"],
        "push_nanos": push_nanos,
        "charges_nanos": charges,
        "included_credit_nanos": included_nanos,
        "carried_in_nanos": carried_in_nanos,
        "topups_nanos": added,
        "reversals_nanos": reversed_,
        "topups_net_nanos": added + reversed_,
        "credits_nanos": credits,
        "balance_nanos": -grand,
        "grand_total_nanos": grand,
        "due_nanos": max(0, grand),
        "credit_remaining_nanos": remaining,
        "carried_out_nanos": carried_out(remaining, carried_in_nanos, added + reversed_),
        "cost_nanos": usage_sums["cost_nanos"],
        "margin_nanos": usage_sums["sell_nanos"] - usage_sums["cost_nanos"],
    }
    return {
        "calls": usage_sums["calls"],
        "input_tokens": usage_sums["input_tokens"],
        "output_tokens": usage_sums["output_tokens"],
        "tokens": usage_sums["input_tokens"] + usage_sums["output_tokens"],
        **exact,
        **money.cents_of(exact, *exact),
    }


def document(row: dict[str, Any]) -> dict[str, Any]:
    """The row's snapshot document, refused (409) when it was taken before invoices were
    reconciled (no statement lines): it cannot be issued or printed; take a new version."""
    snapshot: dict[str, Any] = row["snapshot"]
    if "lines" not in snapshot or "carried_out_nanos" not in snapshot.get("totals", {}):
        raise ApiError(
            409,
            "SNAPSHOT_OUTDATED",
            f"Invoice snapshot {row['id']} predates reconciled invoices: "
            f"take a new snapshot of {row['month']}.",
        )
    return snapshot
