"""The soak's invariants, checked after the run against what the gateway wrote (and what the
witnesses of ``bench/soak_audit.sql`` saw as it happened) and what the client saw.

Each check answers a :class:`Check`: its name, whether it held, and a line of figures or of
the first counter-examples.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.soak_traffic import Outcomes, Rotation

NANOS_PER_CENT = 10_000_000
WINDOW = timedelta(seconds=60)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def _examples(items: list[Any], limit: int = 3) -> str:
    shown = "; ".join(str(item) for item in items[:limit])
    return shown + (f"; ... ({len(items)} in all)" if len(items) > limit else "")


def _all(conn: psycopg.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, args)
        return cur.fetchall()


# --------------------------------------------------------------------------- money


def sums(conn: psycopg.Connection, invoices: dict[tuple[int, str], dict[str, Any]]) -> Check:
    """Per customer and month, and per key: the events' exact sum = the month rollup = a fresh
    invoice preview, to the nano-dollar (calls and tokens too)."""
    bad: list[str] = []
    events = {
        (r["customer_id"], r["month"]): r
        for r in _all(
            conn,
            "SELECT customer_id, month, sum(sell_nanos)::bigint AS cost, count(*) AS calls, "
            "sum(input_tokens)::bigint AS input, sum(output_tokens)::bigint AS output "
            "FROM usage_events GROUP BY 1, 2",
        )
    }
    rollups = {
        (r["customer_id"], r["month"]): r
        for r in _all(
            conn,
            "SELECT customer_id, month, spent_nanos AS cost, calls, input_tokens AS input, "
            "output_tokens AS output FROM monthly_usage",
        )
    }
    compared_nanos = 0
    for scope in sorted(set(events) | set(rollups) | set(invoices)):
        event = events.get(scope) or {"cost": 0, "calls": 0, "input": 0, "output": 0}
        rollup = rollups.get(scope) or {"cost": 0, "calls": 0, "input": 0, "output": 0}
        invoice = (invoices.get(scope) or {}).get("totals") or {}
        figures = {
            "events": (event["cost"], event["calls"], event["input"], event["output"]),
            "rollup": (rollup["cost"], rollup["calls"], rollup["input"], rollup["output"]),
            "invoice": (
                invoice.get("total_nanos"),
                invoice.get("calls"),
                invoice.get("input_tokens"),
                invoice.get("output_tokens"),
            ),
        }
        if len(set(figures.values())) != 1:
            bad.append(f"customer {scope[0]} {scope[1]}: {figures}")
        compared_nanos += event["cost"]
    key_events = {
        (r["api_key_id"], r["month"]): r["cost"]
        for r in _all(
            conn,
            "SELECT api_key_id, month, sum(sell_nanos)::bigint AS cost FROM usage_events GROUP BY 1, 2",
        )
    }
    key_rollups = {
        (r["api_key_id"], r["month"]): r["spent_nanos"]
        for r in _all(conn, "SELECT api_key_id, month, spent_nanos FROM monthly_key_usage")
    }
    key_invoices = {
        (int(line["api_key_id"]), month): int(line["sell_nanos"])
        for (_, month), doc in invoices.items()
        for line in doc.get("by_key", [])
    }
    for scope in sorted(set(key_events) | set(key_rollups) | set(key_invoices)):
        figures = {
            "events": key_events.get(scope, 0),
            "rollup": key_rollups.get(scope, 0),
            "invoice": key_invoices.get(scope, 0),
        }
        if len(set(figures.values())) != 1:
            bad.append(f"key {scope[0]} {scope[1]}: {figures}")
    detail = (
        f"{len(events)} customer-months and {len(key_events)} key-months agree: "
        f"{compared_nanos:,} nanos in all"
        if not bad
        else _examples(bad)
    )
    return Check("Σ events = month rollup = invoice preview (customer and key)", not bad, detail)


def caps_from_event_log(conn: psycopg.Connection) -> Check:
    """Replay the usage events in the order they were settled: after each one, the customer's
    spend so far is within its cap plus the top-ups credited by then, and a key with a cap of
    its own within that cap."""
    caps = {
        r["id"]: r["monthly_cap_cents"] for r in _all(conn, "SELECT id, monthly_cap_cents FROM customers")
    }
    key_caps = {
        r["id"]: r["monthly_cap_cents"]
        for r in _all(conn, "SELECT id, monthly_cap_cents FROM api_keys WHERE monthly_cap_cents IS NOT NULL")
    }
    credits: dict[tuple[int, str], tuple[list[Any], list[int]]] = defaultdict(lambda: ([], []))
    for row in _all(
        conn, "SELECT customer_id, month, created_at, amount_cents FROM topups ORDER BY created_at, id"
    ):
        times, totals = credits[(row["customer_id"], row["month"])]
        times.append(row["created_at"])
        totals.append((totals[-1] if totals else 0) + row["amount_cents"])
    spent: Counter[tuple[int, str]] = Counter()
    key_spent: Counter[tuple[int, str]] = Counter()
    bad: list[str] = []
    settlements = 0
    tightest = None
    with conn.transaction(), conn.cursor(name="soak_events") as cur:
        cur.itersize = 20_000
        cur.execute(
            "SELECT customer_id, api_key_id, month, created_at, cost_nanos FROM usage_events "
            "ORDER BY created_at, id"
        )
        for customer, key, month, at, cost in cur:
            settlements += 1
            scope = (customer, month)
            spent[scope] += cost
            times, totals = credits.get(scope, ([], []))
            credited = totals[bisect.bisect_right(times, at) - 1] if times and times[0] <= at else 0
            allowed = (caps[customer] + credited) * NANOS_PER_CENT
            if spent[scope] > allowed:
                bad.append(f"customer {customer} at {at}: spent {spent[scope]} > {allowed}")
            headroom = allowed - spent[scope]
            tightest = headroom if tightest is None else min(tightest, headroom)
            if key in key_caps:
                key_spent[(key, month)] += cost
                if key_spent[(key, month)] > key_caps[key] * NANOS_PER_CENT:
                    bad.append(f"key {key} at {at}: spent {key_spent[(key, month)]} > {key_caps[key]} cents")
    detail = (
        f"{settlements:,} settlements replayed; least headroom left {tightest:,} nanos"
        if not bad
        else _examples(bad)
    )
    return Check("spend ≤ cap + top-ups at every settlement (event log, in order)", not bad, detail)


def caps_from_rollups(conn: psycopg.Connection) -> list[Check]:
    """What the rollup witnesses saw, change by change, in lock order."""
    breaches = _all(
        conn,
        "SELECT rollup, breach, count(*) AS n, min(customer_id) AS customer, min(api_key_id) AS key, "
        "max(spent_nanos + reserved_nanos - cap_nanos) AS worst FROM soak_rollup_breaches GROUP BY 1, 2",
    )
    found = {(r["rollup"], r["breach"]): r for r in breaches}

    def check(name: str, kinds: list[tuple[str, str]]) -> Check:
        hits = [found[k] for k in kinds if k in found]
        detail = "no breach in any change of a month rollup" if not hits else _examples(hits)
        return Check(name, not hits, detail)

    return [
        check("rollups: spend ≤ cap at every change", [("customer", "spent > cap"), ("key", "spent > cap")]),
        check(
            "rollups: spend + reserved ≤ cap at every change",
            [("customer", "spent + reserved > cap"), ("key", "spent + reserved > cap")],
        ),
        check("rollups: reserved never below zero", [("customer", "reserved < 0"), ("key", "reserved < 0")]),
    ]


def topups(conn: psycopg.Connection, outcomes: Outcomes) -> Check:
    """Every top-up the admin API accepted is credited once (a double send with one
    Idempotency-Key answers one top-up), and the month rollups hold the same credit."""
    bad: list[str] = []
    sent: Counter[int] = Counter()
    for topup in outcomes.topups:
        if topup.topup_ids:
            sent[topup.customer_id] += topup.amount_cents
        if len(set(topup.topup_ids)) > 1:
            bad.append(f"{topup.idempotency_key} credited {len(set(topup.topup_ids))} times")
    stored = Counter(
        {
            r["customer_id"]: int(r["cents"])
            for r in _all(conn, "SELECT customer_id, sum(amount_cents) AS cents FROM topups GROUP BY 1")
        }
    )
    rolled = Counter(
        {
            r["customer_id"]: int(r["cents"])
            for r in _all(conn, "SELECT customer_id, sum(topup_cents) AS cents FROM monthly_usage GROUP BY 1")
        }
    )
    for customer in set(sent) | set(stored) | set(rolled):
        if not sent[customer] == stored[customer] == rolled[customer]:
            bad.append(
                f"customer {customer}: sent {sent[customer]}, stored {stored[customer]}, "
                f"rollup {rolled[customer]}"
            )
    doubles = sum(1 for t in outcomes.topups if len(t.statuses) > 1)
    detail = (
        f"{len(outcomes.topups)} top-ups ({doubles} sent twice at once), "
        f"{sum(sent.values())} cents credited exactly once"
        if not bad
        else _examples(bad)
    )
    return Check("top-ups credited exactly once", not bad, detail)


# --------------------------------------------------------------------------- limits


def _limits(
    conn: psycopg.Connection, default_rpm: int, default_concurrency: int
) -> dict[int, dict[str, Any]]:
    return {
        r["id"]: r
        for r in _all(
            conn,
            "SELECT k.id, k.customer_id, coalesce(k.rpm_limit, c.rpm_limit, %s) AS rpm, "
            "nullif(coalesce(k.max_devices, c.max_devices_per_key), 0) AS seats, "
            "coalesce(c.max_concurrent, %s) AS customer_concurrency, k.max_concurrent AS key_concurrency "
            "FROM api_keys k JOIN customers c ON c.id = k.customer_id",
            (default_rpm, default_concurrency),
        )
    }


def rate_limits(conn: psycopg.Connection, default_rpm: int) -> list[Check]:
    """The minute ring promises an exact sliding window: for the admissions of a key at ring
    times t0 ≤ t1 ≤ ..., an admission is refused while the N-th most recent is less than 60 s
    old, so t[i+N] - t[i] ≥ 60 s for every i: never more than N in any window (t - 60 s, t]."""
    limits = _limits(conn, default_rpm, 0)
    takes: dict[int, list[Any]] = defaultdict(list)
    for row in _all(
        conn,
        "SELECT api_key_id, admitted_at, operation FROM soak_rate_takes WHERE period = 'minute' "
        "ORDER BY api_key_id, admitted_at",
    ):
        takes[row["api_key_id"]].append(row["admitted_at"])
    bad: list[str] = []
    fullest = []
    for key, times in takes.items():
        limit = limits[key]["rpm"]
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= WINDOW:
                start += 1
            most = max(most, end - start + 1)
        fullest.append((most / limit, key, most, limit))
        if most > limit:
            bad.append(f"key {key}: {most} admissions within 60 s, limit {limit}")
    admitted = Counter(
        {
            r["api_key_id"]: r["n"]
            for r in _all(conn, "SELECT api_key_id, count(*) AS n FROM soak_admissions GROUP BY 1")
        }
    )
    mismatched = [
        f"key {key}: {len(takes.get(key, []))} ring slots for {n} admissions"
        for key, n in admitted.items()
        if limits[key]["rpm"] > 0 and len(takes.get(key, [])) != n
    ]
    top = max(fullest, default=(0, None, 0, 0))
    detail = (
        f"{len(takes)} keys; fullest 60 s window: {top[2]} of {top[3]} (key {top[1]}); "
        f"{sum(1 for f in fullest if f[0] == 1)} keys reached their limit exactly"
        if not bad
        else _examples(bad)
    )
    return [
        Check("RPM: never more than the limit in any 60 s (sliding) window", not bad, detail),
        Check(
            "RPM: one ring slot per admission",
            not mismatched,
            f"{sum(admitted.values()):,} admissions, each with its slot"
            if not mismatched
            else _examples(mismatched),
        ),
    ]


def seats(conn: psycopg.Connection) -> Check:
    """No key ever has more distinct active devices than seats: nothing revokes devices during
    the soak, so the final count is the most there ever were; and every admitted device is one
    of the key's registered devices."""
    limits = _limits(conn, 0, 0)
    bad: list[str] = []
    devices = _all(
        conn, "SELECT api_key_id, count(*) AS n FROM key_devices WHERE revoked_at IS NULL GROUP BY 1"
    )
    for row in devices:
        seats_ = limits[row["api_key_id"]]["seats"]
        if seats_ is not None and row["n"] > seats_:
            bad.append(f"key {row['api_key_id']}: {row['n']} active devices, {seats_} seats")
    admitted = _all(
        conn,
        "SELECT a.api_key_id, count(DISTINCT a.install_id) AS n, "
        "count(*) FILTER (WHERE a.install_id IS NOT NULL AND d.install_id IS NULL) AS unregistered "
        "FROM soak_admissions a LEFT JOIN key_devices d "
        "ON d.api_key_id = a.api_key_id AND d.install_id = a.install_id GROUP BY 1",
    )
    for row in admitted:
        seats_ = limits[row["api_key_id"]]["seats"]
        if seats_ is not None and row["n"] > seats_:
            bad.append(f"key {row['api_key_id']}: {row['n']} distinct devices admitted, {seats_} seats")
        if row["unregistered"]:
            bad.append(f"key {row['api_key_id']}: {row['unregistered']} admissions of an unregistered device")
    full = sum(1 for r in devices if r["n"] == limits[r["api_key_id"]]["seats"])
    detail = f"{len(devices)} keys with devices, {full} with every seat taken" if not bad else _examples(bad)
    return Check("seats: never more active devices than seats per key", not bad, detail)


def concurrency(conn: psycopg.Connection, default_concurrency: int) -> Check:
    limits = _limits(conn, 0, default_concurrency)
    bad: list[str] = []
    peak_customer: Counter[int] = Counter()
    for row in _all(
        conn,
        "SELECT api_key_id, customer_id, max(customer_in_flight) AS c, max(key_in_flight) AS k "
        "FROM soak_admissions GROUP BY 1, 2",
    ):
        limit = limits[row["api_key_id"]]
        peak_customer[row["customer_id"]] = max(peak_customer[row["customer_id"]], row["c"])
        if limit["customer_concurrency"] > 0 and row["c"] > limit["customer_concurrency"]:
            bad.append(
                f"customer {row['customer_id']}: {row['c']} in flight, limit {limit['customer_concurrency']}"
            )
        if limit["key_concurrency"] and row["k"] > limit["key_concurrency"]:
            bad.append(f"key {row['api_key_id']}: {row['k']} in flight, limit {limit['key_concurrency']}")
    detail = f"peak calls in flight per customer: {dict(peak_customer)}" if not bad else _examples(bad)
    return Check("concurrency: never more calls in flight than allowed", not bad, detail)


def revocations(conn: psycopg.Connection, rotations: list[Rotation]) -> Check:
    """A rotated-out key admits nothing whose statement began after the rotation answered
    (the database and the driver share this machine's clock)."""
    bad: list[str] = []
    for rotation in rotations:
        late = _all(
            conn,
            "SELECT count(*) AS n, max(statement_at) AS last FROM soak_admissions "
            "WHERE api_key_id = %s AND statement_at > to_timestamp(%s)",
            (rotation.old_key_id, rotation.answered_at),
        )[0]
        if late["n"]:
            bad.append(f"key {rotation.old_key_id}: {late['n']} admitted after its rotation")
    detail = f"{len(rotations)} rotations, no admission of an old key after" if not bad else _examples(bad)
    return Check("rotation: the old key admits nothing once rotated", not bad, detail)


# --------------------------------------------------------------------------- bookkeeping


def nothing_in_flight(conn: psycopg.Connection, released: int) -> Check:
    row = _all(
        conn,
        "SELECT (SELECT count(*) FROM reservations) AS reservations, "
        "(SELECT coalesce(sum(reserved_nanos), 0) FROM monthly_usage) AS customer_reserved, "
        "(SELECT coalesce(sum(reserved_nanos), 0) FROM monthly_key_usage) AS key_reserved, "
        "(SELECT count(*) FROM usage_events WHERE outcome = 'abandoned') AS abandoned",
    )[0]
    passed = not any(row.values()) and released == 0
    detail = (
        f"0 reservations, 0 nanos reserved; maintenance released {released}"
        if passed
        else f"{row}, maintenance released {released}"
    )
    return Check("no reservation left after maintenance (none abandoned)", passed, detail)


def one_event_and_monitor_row(conn: psycopg.Connection) -> Check:
    row = _all(
        conn,
        """
        SELECT
          (SELECT count(*) FROM soak_admissions) AS admissions,
          (SELECT count(*) FROM soak_admissions a
           WHERE NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.reservation_id = a.reservation_id))
            AS unsettled,
          (SELECT count(*) FROM usage_events e
           WHERE NOT EXISTS (SELECT 1 FROM soak_admissions a WHERE a.reservation_id = e.reservation_id))
            AS unadmitted,
          (SELECT count(*) FROM usage_events WHERE request_id IS NULL) AS without_request_id,
          (SELECT count(*) FROM usage_events e
           WHERE (SELECT count(*) FROM gateway_events g WHERE g.request_id = e.request_id) <> 1)
            AS monitor_rows_not_one,
          (SELECT count(*) - count(DISTINCT request_id) FROM usage_events) AS repeated_request_ids
        """,
    )[0]
    problems = {k: v for k, v in row.items() if k != "admissions" and v}
    detail = (
        f"{row['admissions']:,} admissions: {row['admissions']:,} usage events and monitor rows"
        if not problems
        else str(problems)
    )
    return Check("every admitted call: exactly one usage event and one monitor row", not problems, detail)


def client_agrees(conn: psycopg.Connection, outcomes: Outcomes) -> list[Check]:
    """What the client saw matches what was written: an answered call was billed under its
    request id, a refusal at admission billed nothing; and the gateway never answered with an
    internal error or broke a connection the client did not break itself."""
    billed = {
        r["request_id"]: r["outcome"]
        for r in _all(conn, "SELECT request_id, outcome FROM usage_events WHERE request_id LIKE 'soak-%%'")
    }
    bad: list[str] = []
    for rid, (_, endpoint, _, fault, outcome, status, code) in outcomes.calls.items():
        if outcome in ("ok", "stream_error", "upstream_error", "stopped") and rid not in billed:
            bad.append(f"{rid} ({endpoint}, {fault}): {outcome} {status} {code} but no usage event")
        elif outcome in ("ok", "stopped") and billed[rid] != outcome:
            bad.append(f"{rid} ({endpoint}, {fault}): answered {outcome}, billed as {billed[rid]}")
        elif outcome == "refused" and rid in billed:
            bad.append(f"{rid}: refused with {code}, yet billed")
    unknown = set(billed) - set(outcomes.calls)
    if unknown:
        bad.append(f"{len(unknown)} usage events for requests the client never sent: {sorted(unknown)[:3]}")
    unexpected = [
        f"{rid} ({endpoint}, {fault}): {outcome} {status} {code}"
        for rid, (_, endpoint, _, fault, outcome, status, code) in outcomes.calls.items()
        if outcome in ("server_error", "broken", "broken_stream")
    ]
    return [
        Check(
            "client's view = what was billed",
            not bad,
            f"{len(outcomes.calls):,} calls matched by request id" if not bad else _examples(bad),
        ),
        Check(
            "no internal error, no connection broken by the server",
            not unexpected,
            "none" if not unexpected else _examples(unexpected),
        ),
    ]
