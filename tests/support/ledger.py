"""The books, checked whole: what every fault test asserts at its end."""

from __future__ import annotations

from typing import Any

from shared.billing import pricing
from shared.gateway import pipeline
from shared.gateway.request import parse_request

GATEWAY_FUNCTIONS = ("gateway-chat", "gateway-stream")


def _rows(db: Any, sql: str, params: Any = None) -> list[dict[str, Any]]:
    return db.execute(sql, params).fetchall()


def assert_ledger_balances(db: Any, calls: int | None = None) -> None:
    """Once nothing is in flight: no reservation is left; for every customer, and every key,
    the month's rollup holds nothing reserved and its spend, tokens and calls are exactly the
    sum of its usage events; no request is billed twice; and each billed call has exactly one
    monitor row (the gateway's own, or the reaper's for an abandoned call). With ``calls``,
    exactly that many calls were billed."""
    left = _rows(db, "SELECT id, customer_id, api_key_id, created_at FROM reservations")
    assert left == [], f"reservations still held: {left}"

    for rollup, owner in (("monthly_usage", "customer_id"), ("monthly_key_usage", "api_key_id")):
        mismatches = _rows(
            db,
            f"""
            SELECT {owner}, month, r.spent_nanos, r.reserved_nanos, r.calls, r.input_tokens,
                   r.output_tokens, e.cost, e.n, e.input_tokens AS e_input, e.output_tokens AS e_output
            FROM {rollup} r
            FULL JOIN (SELECT {owner}, month, sum(cost_nanos) AS cost, count(*) AS n,
                              sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
                       FROM usage_events GROUP BY 1, 2) e USING ({owner}, month)
            WHERE r.reserved_nanos IS DISTINCT FROM 0
               OR r.spent_nanos IS DISTINCT FROM coalesce(e.cost, 0)
               OR r.calls IS DISTINCT FROM coalesce(e.n, 0)
               OR r.input_tokens IS DISTINCT FROM coalesce(e.input_tokens, 0)
               OR r.output_tokens IS DISTINCT FROM coalesce(e.output_tokens, 0)
            """,
        )
        assert mismatches == [], f"{rollup} disagrees with usage_events: {mismatches}"

    events = _rows(db, "SELECT id, reservation_id, request_id, outcome FROM usage_events")
    settled = [e["request_id"] for e in events if e["outcome"] != "abandoned"]
    assert None not in settled, events
    assert len(settled) == len(set(settled)), f"a request billed twice: {sorted(settled)}"

    monitor = _rows(
        db,
        "SELECT request_id, count(*) AS n FROM gateway_events WHERE function_name = ANY(%s) "
        "AND request_id = ANY(%s) GROUP BY 1",
        (list(GATEWAY_FUNCTIONS), settled),
    )
    assert {m["request_id"]: m["n"] for m in monitor} == dict.fromkeys(settled, 1), monitor
    released = _rows(
        db,
        "SELECT count(*) AS n FROM gateway_events WHERE function_name = 'maintenance' "
        "AND api_key_id IS NOT NULL",
    )[0]["n"]
    assert released == len(events) - len(settled), "one reaper's monitor row per abandoned call"

    if calls is not None:
        assert len(events) == calls, f"{len(events)} calls billed, {calls} expected: {events}"


def usage(db: Any) -> list[dict[str, Any]]:
    """Every usage event, oldest first."""
    return _rows(
        db,
        "SELECT request_id, outcome, estimated, input_tokens, output_tokens, cost_nanos "
        "FROM usage_events ORDER BY id",
    )


def prompt_bound(payload: dict[str, Any]) -> tuple[int, int]:
    """A call's prompt at its admission bound: (tokens, nanos), what an abandoned call is billed."""
    conv = parse_request(payload)
    price = pricing.lookup(conv.provider, conv.model)
    assert price is not None
    tokens = pipeline.prompt_token_bound(conv, price)
    return tokens, pricing.worst_case_nanos(price, tokens, 0)


def worst_case(payload: dict[str, Any]) -> int:
    """What admitting ``payload`` reserves when it is not streamed (all of its max_tokens), in
    nanos; a stream reserves its lease instead (a step at a time: see shared/gateway/leases.py)."""
    conv = parse_request(payload)
    price = pricing.lookup(conv.provider, conv.model)
    assert price is not None
    return pricing.worst_case_nanos(price, pipeline.prompt_token_bound(conv, price), conv.max_tokens)
