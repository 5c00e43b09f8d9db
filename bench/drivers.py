"""The load drivers: wrk when it is installed (cheapest on the CPU it shares with what it
measures), else the asyncio driver in ``bench/load.py``. Both run POSTs on keep-alive
connections for a number of seconds and report :class:`~bench.stats.Stats`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench import load, wrk
from bench.stats import Stats


class PythonDriver:
    name = "asyncio driver (bench/load.py)"

    async def run(
        self,
        port: int,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        connections: int,
        seconds: float,
        keys: Sequence[str] = (),
    ) -> Stats:
        variants = [{**headers, "authorization": f"Bearer {key}"} for key in keys] or [headers]
        requests = [load.build_request("127.0.0.1", port, path, body, h) for h in variants]
        result = await load.run_requests(
            "127.0.0.1", port, requests, concurrency=connections, total=10**9, max_seconds=seconds
        )
        return Stats.of(result.latencies_s, result.elapsed_s, result.errors)


class WrkDriver:
    def __init__(self) -> None:
        self.name = wrk.version()

    async def run(
        self,
        port: int,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        connections: int,
        seconds: float,
        keys: Sequence[str] = (),
    ) -> Stats:
        return await asyncio.to_thread(
            wrk.run, port, path, body, headers, connections=connections, seconds=seconds, keys=keys
        )


Driver = PythonDriver | WrkDriver


def pick(choice: str) -> Driver:
    """``auto`` (wrk if installed), ``wrk`` or ``python``."""
    if choice == "wrk" and not wrk.available():
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    if choice == "python" or not wrk.available():
        return PythonDriver()
    return WrkDriver()
