"""Group commit of ADMIT and SETTLE: calls that arrive together are written in one transaction,
each caller answered with its own row once they are committed, limits hold inside a batch,
batches never deadlock, and one bad call fails alone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest

from shared import db as shared_db
from shared.gateway import admissions, group_commit, keys, settlements
from shared.gateway.admissions import ADMIT
from tests.support.database import IssuedKey

COST = 1_000_000  # nanos billed per settled call


def admission(key: IssuedKey, **changes: Any) -> dict[str, Any]:
    """ADMIT's arguments for a call on ``key`` (40 prompt tokens, 100 out, never clamped)."""
    return {
        "customer_id": key.customer_id,
        "api_key_id": key.key_id,
        "key_hash": keys.hash_key(key.secret),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "install_id": None,
        "user_agent": None,
        "prompt_tokens": 40,
        "max_tokens": 100,
        "lease_tokens": 100,
        "clamp_min": 100,
        "embedding": False,
        "default_rpm": 0,
        "default_concurrency": 0,
        "cache_writes": False,
        **changes,
    }


def admit(conn: psycopg.Connection, key: IssuedKey) -> dict[str, Any]:
    row = conn.execute(ADMIT, admission(key)).fetchone()
    assert row["status"] == 0, row
    return row


def settlement(admission: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        **{name: admission[name] for name in ("reservation_id", "customer_id", "api_key_id", "month")},
        "provider": "openai",
        "model": "gpt-4o-mini",
        "install_id": None,
        "input_tokens": 40,
        "output_tokens": 10,
        "cost_nanos": COST,
        "sell_nanos": COST,
        "price_version_id": None,
        "sell_version_id": None,
        "outcome": "ok",
        "estimated": False,
        "request_id": request_id,
        "function": "gateway-chat",
        "app": None,
        "build": None,
        "status": 200,
        "duration_ms": 1.5,
        "summary": None,
        "user_agent": None,
        "clamped_to": None,
        "stopped_code": None,
    }


async def together(queue: group_commit.PerLoop, calls: list[dict[str, Any]]) -> tuple[list[Any], int]:
    """Every call submitted at once on a fresh loop; their outcomes and the flushes."""
    try:
        current = queue()
        outcomes = await asyncio.gather(*(current.submit(call) for call in calls), return_exceptions=True)
        return outcomes, current.flushes
    finally:
        await shared_db.close()


def in_two_processes(
    queue: group_commit.PerLoop, one: list[list[dict[str, Any]]], other: list[list[dict[str, Any]]]
) -> list[Any]:
    """Two threads with an event loop each (as two server processes) submit their batches at the
    same time, the second's calls in reverse order; every outcome."""
    outcomes: list[Any] = []

    def process(batches: list[list[dict[str, Any]]]) -> None:
        for calls in batches:
            outcomes.extend(asyncio.run(together(queue, calls))[0])

    threads = [
        threading.Thread(target=process, args=(one,)),
        threading.Thread(target=process, args=([list(reversed(calls)) for calls in other],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


async def settle_together(calls: list[dict[str, Any]]) -> tuple[list[Any], int]:
    return await together(settlements.queue, calls)


async def admit_together(calls: list[dict[str, Any]]) -> tuple[list[Any], int]:
    return await together(admissions.queue, calls)


def ledger(conn: psycopg.Connection, customer_id: int) -> dict[str, int]:
    return conn.execute(
        "SELECT (SELECT spent_nanos FROM monthly_usage WHERE customer_id = %(c)s) AS spent,"
        " (SELECT reserved_nanos FROM monthly_usage WHERE customer_id = %(c)s) AS reserved,"
        " (SELECT coalesce(sum(sell_nanos), 0) FROM usage_events WHERE customer_id = %(c)s) AS billed,"
        " (SELECT count(*) FROM usage_events WHERE customer_id = %(c)s) AS events,"
        " (SELECT count(*) FROM gateway_events WHERE customer_id = %(c)s) AS monitor_rows,"
        " (SELECT count(*) FROM reservations WHERE customer_id = %(c)s) AS open",
        {"c": customer_id},
    ).fetchone()


def test_settlements_submitted_together_commit_in_one_transaction(db, make_key):
    key = make_key(customer={"monthly_cap_cents": 100_000})
    calls = [settlement(admit(db, key), f"gc-{n}") for n in range(50)]

    outcomes, flushes = asyncio.run(settle_together(calls))

    assert flushes == 1
    spends = sorted(outcome["spent_nanos"] for outcome in outcomes)
    assert spends == [COST * n for n in range(1, 51)]  # each caller sees the month after its own bill
    assert all(outcome["month"] == calls[0]["month"] for outcome in outcomes)
    assert ledger(db, key.customer_id) == {
        "spent": 50 * COST,
        "reserved": 0,
        "billed": 50 * COST,
        "events": 50,
        "monitor_rows": 50,
        "open": 0,
    }


def test_a_large_burst_is_written_in_bounded_batches(db, make_key):
    key = make_key(customer={"monthly_cap_cents": 100_000})
    calls = [settlement(admit(db, key), f"burst-{n}") for n in range(group_commit.MAX_BATCH + 7)]

    outcomes, flushes = asyncio.run(settle_together(calls))

    assert flushes == 2
    assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert ledger(db, key.customer_id)["events"] == group_commit.MAX_BATCH + 7


def test_one_bad_settlement_fails_alone(db, make_key):
    key = make_key(customer={"monthly_cap_cents": 100_000})
    calls = [settlement(admit(db, key), f"ok-{n}") for n in range(6)]
    calls[3]["request_id"] = "bad\x00id"  # PostgreSQL text cannot hold it

    outcomes, _ = asyncio.run(settle_together(calls))

    assert shared_db.is_nul_in_text(outcomes[3])
    assert all(isinstance(outcome, dict) for n, outcome in enumerate(outcomes) if n != 3)
    after = ledger(db, key.customer_id)
    assert (after["events"], after["billed"], after["open"]) == (5, 5 * COST, 1)  # the bad one still holds


def test_a_repeated_settlement_changes_nothing_inside_a_batch(db, make_key):
    key = make_key(customer={"monthly_cap_cents": 100_000})
    call = settlement(admit(db, key), "twice")
    first, _ = asyncio.run(settle_together([call]))
    others = [settlement(admit(db, key), f"more-{n}") for n in range(3)]

    outcomes, _ = asyncio.run(settle_together([call, *others]))

    assert first[0]["spent_nanos"] == COST
    assert outcomes[0]["month"] is None  # already settled: nothing to report, nothing billed
    assert ledger(db, key.customer_id)["billed"] == 4 * COST


def test_batches_from_many_processes_over_the_same_customers_never_deadlock(db, make_key):
    """Two event loops (as two server processes) settle interleaved calls of the same customers
    and keys in opposite orders: batches take month rows in one order, so all commit."""
    keys_ = [make_key(customer={"monthly_cap_cents": 100_000}) for _ in range(4)]
    keys_ += [make_key(customer_id=key.customer_id) for key in keys_]
    rounds = 6
    work = [
        [settlement(admit(db, keys_[n % len(keys_)]), f"p{side}-{r}-{n}") for n in range(24)]
        for side in range(2)
        for r in range(rounds)
    ]
    outcomes = in_two_processes(settlements.queue, work[:rounds], work[rounds:])

    assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for key in keys_[:4]:
        assert ledger(db, key.customer_id) == pytest.approx(
            {
                "spent": 12 * rounds * COST,
                "reserved": 0,
                "billed": 12 * rounds * COST,
                "events": 12 * rounds,
                "monitor_rows": 12 * rounds,
                "open": 0,
            }
        )


# gpt-4o-mini sold at cost: 40 prompt tokens at 150 nanos and 3,323 output tokens at 600 nanos
# reserve 1,999,800 nanos, so a cap of 1 cent (10,000,000 nanos) affords five such calls.
AFFORDABLE = 5


def test_admissions_submitted_together_share_one_transaction_and_the_cap_holds(db, make_key):
    key = make_key(customer={"monthly_cap_cents": 1})
    calls = [admission(key, max_tokens=3_323, lease_tokens=3_323, clamp_min=3_323) for _ in range(20)]

    outcomes, flushes = asyncio.run(admit_together(calls))

    assert flushes == 1
    assert (
        sorted(outcome["code"] or "admitted" for outcome in outcomes)
        == ["CAP_REACHED"] * 15 + ["admitted"] * AFFORDABLE
    )
    admitted = [outcome["reservation_id"] for outcome in outcomes if outcome["status"] == 0]
    assert len(set(admitted)) == AFFORDABLE
    assert ledger(db, key.customer_id)["reserved"] == AFFORDABLE * 1_999_800
    assert ledger(db, key.customer_id)["open"] == AFFORDABLE


def test_a_rate_limit_holds_inside_a_batch(db, make_key):
    key = make_key(rpm_limit=7)

    outcomes, flushes = asyncio.run(admit_together([admission(key) for _ in range(20)]))

    assert flushes == 1
    assert [outcome["status"] for outcome in outcomes].count(0) == 7
    assert {outcome["code"] for outcome in outcomes if outcome["status"]} == {"RATE_LIMITED"}
    assert ledger(db, key.customer_id)["open"] == 7


def test_one_bad_admission_fails_alone(db, make_key):
    key = make_key()
    calls = [admission(key) for _ in range(6)]
    calls[2]["user_agent"] = "bad\x00agent"  # PostgreSQL text cannot hold it
    calls[2]["install_id"] = "device-1"  # a new device: ADMIT writes the user agent

    outcomes, _ = asyncio.run(admit_together(calls))

    assert shared_db.is_nul_in_text(outcomes[2])
    assert [outcome["status"] for n, outcome in enumerate(outcomes) if n != 2] == [0] * 5
    assert ledger(db, key.customer_id)["open"] == 5
    assert db.execute("SELECT count(*) AS n FROM key_devices").fetchone()["n"] == 0


def test_admission_batches_from_many_processes_never_deadlock(db, make_key):
    """Two event loops (as two server processes) admit calls of the same customers at once, one
    on both keys of each customer, the other on their second keys only: each batch locks a
    customer's month row before its keys' rate rings, in one order, so all pass."""
    firsts = [make_key(customer={"monthly_cap_cents": 100_000}, rpm_limit=1_000) for _ in range(4)]
    seconds = [make_key(customer_id=key.customer_id, rpm_limit=1_000) for key in firsts]
    rounds = 6
    work = [[admission((firsts + seconds)[n % 8]) for n in range(24)] for _ in range(rounds)]
    work += [[admission(seconds[n % 4]) for n in range(24)] for _ in range(rounds)]
    outcomes = in_two_processes(admissions.queue, work[:rounds], work[rounds:])

    assert [outcome["status"] for outcome in outcomes] == [0] * 24 * 2 * rounds
    for key in firsts:
        assert ledger(db, key.customer_id)["open"] == 12 * rounds
