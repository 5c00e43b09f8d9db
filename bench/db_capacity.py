"""What one PostgreSQL primary holds: ``python bench/db_capacity.py [--database-url URL]``.

The database is the deployment's shared state: every gateway call, from however many Lambda
instances or server processes, is one ADMIT and one SETTLE there. This drives those two
statements (the gateway's own SQL, prepared as the gateway prepares them) from N concurrent
connections with no gateway and no provider in the way, for as many connections as a fleet
of Lambda instances would open, in two shapes:

- ``spread``: each connection calls for a customer of its own (many customers);
- ``hot``: every connection calls for one customer and key (their month rows are shared).

It prints calls a second and the latency of one ADMIT+SETTLE pair at each level, and one
JSON line. The embedded PostgreSQL shares this machine's cores with the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from shared import migrate  # noqa: E402
from shared.gateway import keys  # noqa: E402
from shared.gateway.admissions import ADMIT  # noqa: E402
from shared.gateway.settlements import SETTLE  # noqa: E402
from shared.host.embedded_pg import EmbeddedPostgres  # noqa: E402

COST_NANOS = 1_200_000
_ADMISSION = {  # a small call: 40 prompt tokens, up to 3,323 out (1,999,800 nanos at list price)
    "provider": "openai",
    "model": "gpt-4o-mini",
    "install_id": None,
    "user_agent": None,
    "prompt_tokens": 40,
    "max_tokens": 3323,
    "lease_tokens": 3323,  # not streamed: all of max_tokens
    "clamp_min": 16,
    "embedding": False,
    "default_rpm": 0,
    "default_concurrency": 0,
    "cache_writes": False,
}
_SETTLEMENT = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "install_id": None,
    "input_tokens": 12,
    "output_tokens": 20,
    "cost_nanos": COST_NANOS,
    "sell_nanos": COST_NANOS,
    "price_version_id": None,
    "sell_version_id": None,
    "outcome": "ok",
    "clamped_to": None,
    "stopped_code": None,
    "estimated": False,
    "function": "gateway-chat",
    "app": None,
    "build": None,
    "status": 200,
    "duration_ms": 1.0,
    "summary": None,
    "user_agent": None,
}


def seed(database_url: str, customers: int) -> list[bytes]:
    """Customers with caps and limits far above the load, one key each; their key hashes."""
    hashes = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(customers):
            customer = conn.execute(
                "INSERT INTO customers (email, plan_id, monthly_cap_cents, rpm_limit, max_concurrent) "
                "SELECT %s, id, 10000000000, 0, 0 FROM plans WHERE is_default RETURNING id",
                (f"capacity-{time.time_ns()}-{n}@example.com",),
            ).fetchone()[0]
            key = keys.generate()
            conn.execute(
                "INSERT INTO api_keys (customer_id, key_hash, key_last4, rpm_limit) VALUES (%s, %s, %s, 0)",
                (customer, key.hash, key.last4),
            )
            hashes.append(key.hash)
    return hashes


async def worker(database_url: str, key_hash: bytes, until: float, latencies: list[float]) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = conn.cursor()
        while time.perf_counter() < until:
            started = time.perf_counter()
            await cursor.execute(ADMIT, {**_ADMISSION, "key_hash": key_hash})
            reservation, customer, key, month = _admission(cursor, await cursor.fetchone())
            settlement = {
                "reservation_id": reservation,
                "customer_id": customer,
                "api_key_id": key,
                "month": month,
            }
            await cursor.execute(SETTLE, {**_SETTLEMENT, **settlement, "request_id": f"cap-{time.time_ns()}"})
            await cursor.fetchone()
            latencies.append(time.perf_counter() - started)


def _admission(cursor: psycopg.AsyncCursor, row: tuple) -> tuple:
    names = [column.name for column in cursor.description]
    record = dict(zip(names, row, strict=True))
    if record["status"]:
        raise SystemExit(f"capacity: the call was refused ({record['code']})")
    return record["reservation_id"], record["customer_id"], record["api_key_id"], record["month"]


async def level(database_url: str, hashes: list[bytes], connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(worker(database_url, hashes[n % len(hashes)], until, latencies) for n in range(connections))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "connections": connections,
        "calls_per_s": round(len(latencies) / elapsed),
        "pair_p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "pair_p99_ms": round(percentile(ordered, 99) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--connections", default="1,8,32,128", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    levels = [int(part) for part in args.connections.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        embedded = None if args.database_url else EmbeddedPostgres(Path(folder) / "pg", delete_on_stop=True)
        url = args.database_url or embedded.url()
        try:
            migrate.migrate(url)
            spread = seed(url, max(levels))
            hot = seed(url, 1)
            results = {"spread": [], "hot": []}
            for shape, hashes in (("spread", spread), ("hot", hot)):
                for connections in levels:
                    result = uvloop.run(level(url, hashes, connections, args.seconds))
                    results[shape].append(result)
                    print(
                        f"{shape:6} {connections:4} connections: {result['calls_per_s']:6} calls/s, "
                        f"pair p50 {result['pair_p50_ms']} ms, p99 {result['pair_p99_ms']} ms",
                        flush=True,
                    )
            print(json.dumps(results))
        finally:
            if embedded is not None:
                embedded.stop()


if __name__ == "__main__":
    main()
