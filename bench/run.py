"""Benchmark the gateway as it runs in production: ``python bench/run.py [--quick]``.

Starts PostgreSQL (embedded, or ``--database-url``), the fast fake upstream and the gateway
under uvicorn (``--workers``), seeds a customer and key whose caps and limits are too high to
interfere (every control stays on), then measures from this separate process:

- added latency at concurrency 1 (gateway minus direct-to-fake), p50 and p99;
- throughput at concurrency 64 (non-streaming): requests/s, p99, errors;
- one hot customer: that load on one customer's single key against the same load spread
  over 100 customers;
- streaming: added time to the first delta with 100 concurrent streams, p50 and p99, and what
  a stream's lease costs: extension round trips per 1,000 output tokens (streams of 1,024);
- memory: the server's RSS before and after a run of requests;
- idle streams: 1,000 open streams whose provider sends nothing: RSS per stream, and the
  added latency of other calls while they stay open;
- database round trips per gateway call (committed transactions per call);
- cold starts (``bench/cold_start.py``): each function's import and the first gateway-chat
  call of a new process, in the built Lambda artifact.

It prints a table and one JSON line. ``--compare-litellm`` runs the same load against a
LiteLLM proxy pointed at the same fake (see the README for installing it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cold_start, drivers, litellm_compare, load  # noqa: E402
from bench.statements import StatementLog  # noqa: E402
from bench.stats import Stats, percentile  # noqa: E402
from shared import migrate  # noqa: E402
from shared.gateway import keys  # noqa: E402
from shared.host.command import server_command  # noqa: E402
from shared.host.embedded_pg import EmbeddedPostgres  # noqa: E402

MODEL = "gpt-4o-mini"
CHAT_PATH = "/.netlify/functions/gateway-chat"
STREAM_PATH = "/.netlify/functions/gateway-stream"
UPSTREAM_PATH = "/v1/chat/completions"
CHAT_BODY = json.dumps(
    {
        "provider": "openai",
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 64,
    }
).encode()
# The same call in OpenAI's wire format, as the openai SDK sends it to the compatible endpoint.
COMPAT_PATH = "/.netlify/functions/openai/v1/chat/completions"
COMPAT_BODY = json.dumps(
    {
        "model": f"openai/{MODEL}",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 64,
    }
).encode()
UPSTREAM_BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "max_completion_tokens": 64}
).encode()
UPSTREAM_STREAM_BODY = json.dumps(
    {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 8192,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()
# Streams are long enough for their lease to grow: the fake writes 4,096 bytes (1,024 tokens at
# about four bytes a token) in 64 deltas, and max_tokens is far above that, so a stream takes its
# first step and 16 more (LEASE_STEP_TOKENS, 256: the lease counts bytes, which bound tokens).
STREAM_BODY = json.dumps(
    {
        "provider": "openai",
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 8192,
    }
).encode()
STREAM_BYTES, STREAM_FRAMES = 4096, 64

SIZES = {  # seconds of latency (each side) and throughput runs, streams, requests for the memory figure
    "full": {"latency_s": 10, "throughput_s": 30, "streams": 3000, "memory": 50000},
    "quick": {"latency_s": 4, "throughput_s": 10, "streams": 1000, "memory": 10000},
    "smoke": {"latency_s": 1, "throughput_s": 1, "streams": 100, "memory": 100},
}


def cold_start_functions(args: argparse.Namespace) -> Sequence[str]:
    """Every function, or two for the harness check."""
    return ("health", "gateway_chat") if args.smoke else cold_start.FUNCTIONS


def sizes(args: argparse.Namespace) -> dict[str, int]:
    return SIZES["smoke" if args.smoke else "quick" if args.quick else "full"]


LATENCY_TURNS = 4  # gateway-chat and the OpenAI format alternate this many times at concurrency 1
FRAME_DELAY_MS = 33  # the fake's pause between stream frames: a stream lasts about 2 s, as LLM streams do
STREAM_S = (STREAM_FRAMES + 1) * FRAME_DELAY_MS / 1000
IDLE_STREAMS = 1000
SETTLE_PAUSE_S = 10  # after a saturating run, the database's writeback slows what comes next
IDLE_FRAME_DELAY_MS = 3_600_000
IDLE_BODY = json.dumps(
    {
        "provider": "anthropic",
        "model": "claude-3-5-haiku-latest",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 64,
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def start(stack: ExitStack, command: list[str], env: dict[str, str], quiet: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(stop)
    return proc


def seed(database_url: str) -> str:
    """A customer and key with every control on but limits far above the benchmark's load."""
    env = {**os.environ, "DATABASE_URL": database_url}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "create-customer",
            f"bench-{time.time_ns()}@example.com",
            "--cap-cents",
            "1000000000",
            "--rpm",
            "10000000",
            "--max-concurrent",
            "0",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["key"]


@contextmanager
def bench_stack(database_url: str = "") -> Iterator[tuple[dict[str, str], str, int]]:
    """PostgreSQL (embedded unless ``database_url``), migrated and seeded, and the fake
    upstream: the environment a gateway process runs with, the seeded key, the fake's port."""
    with ExitStack() as stack:
        if not database_url:
            folder = Path(tempfile.mkdtemp(prefix="kaixu-bench-"))
            stack.callback(shutil.rmtree, folder, True)
            embedded = EmbeddedPostgres(folder / "pg")
            stack.callback(embedded.stop)
            database_url = embedded.url()
        migrate.migrate(database_url)
        key = seed(database_url)
        fake_port = free_port()
        fake = ["bench/fake_upstream.py", str(fake_port), "--frame-delay-ms", str(FRAME_DELAY_MS)]
        fake += ["--stream-bytes", str(STREAM_BYTES), "--stream-frames", str(STREAM_FRAMES)]
        start(stack, [sys.executable, *fake], dict(os.environ))
        # Anthropic's stand-in sends a stream's first frame, then nothing for an hour: idle streams.
        idle_port = free_port()
        idle = ["bench/fake_upstream.py", str(idle_port), "--frame-delay-ms", str(IDLE_FRAME_DELAY_MS)]
        start(stack, [sys.executable, *idle], dict(os.environ))
        wait_for_port(fake_port)
        wait_for_port(idle_port)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "OPENAI_API_KEY": "bench",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{idle_port}",
            "ANTHROPIC_API_KEY": "bench",
            "UPSTREAM_MAX_CONNECTIONS": str(IDLE_STREAMS + 200),
            "KAIXU_BUILD": "bench",
        }
        yield env, key, fake_port


SPREAD_CUSTOMERS = 100
_SEED_ONE = """
WITH c AS (INSERT INTO customers (email, plan_id, monthly_cap_cents, rpm_limit, max_concurrent)
           SELECT %s, id, 1000000000, 10000000, 0 FROM plans WHERE is_default RETURNING id)
INSERT INTO api_keys (customer_id, key_hash, key_last4, kind, role, label)
SELECT id, %s, %s, 'master', 'owner', 'master' FROM c
"""


def seed_spread(database_url: str, count: int = SPREAD_CUSTOMERS) -> list[str]:
    """``count`` more customers like the seeded one, a key each: the same load spread over
    many customers, to compare one hot customer against."""
    secrets = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(count):
            new = keys.generate()
            conn.execute(_SEED_ONE, (f"spread-{n}-{time.time_ns()}@example.com", new.hash, new.last4))
            secrets.append(new.secret)
    return secrets


def server_cpu_s(parent: subprocess.Popen) -> float:
    process = psutil.Process(parent.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def server_rss_mb(parent: subprocess.Popen) -> float:
    process = psutil.Process(parent.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


async def round_trips_per_call(database_url: str, request: bytes, port: int, calls: int) -> float | None:
    """Statements the server received per gateway call, from its own log (None when this
    process cannot read the server's log, e.g. a remote database)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        log = StatementLog(conn)
        if not log.available:
            return None
        with log:
            result = await load.run_requests("127.0.0.1", port, request, concurrency=1, total=calls)
    return log.count / len(result.latencies_s)


async def stream_round_trips(
    database_url: str, request: bytes, port: int, streams: int
) -> dict[str, float] | None:
    """What a stream's lease costs, counted from the server's own log: statements per stream
    (ADMIT, the lease's steps, SETTLE, whose group commit may carry several streams at once),
    and the steps (kx_extend_lease) per 1,000 output tokens billed (None: log not readable)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        log = StatementLog(conn)
        if not log.available:
            return None
        (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM usage_events").fetchone() or (0,)
        with log:
            result = await load.run_requests("127.0.0.1", port, request, concurrency=10, total=streams)
        (tokens,) = conn.execute(
            "SELECT coalesce(sum(output_tokens), 0) FROM usage_events WHERE id > %s", (before,)
        ).fetchone() or (0,)
    done = len(result.latencies_s)
    steps = log.calls_of("kx_extend_lease")
    return {
        "streams": done,
        "output_tokens_per_stream": round(int(tokens) / max(done, 1), 1),
        "statements_per_stream": round(log.count / max(done, 1), 2),
        "extensions_per_stream": round(steps / max(done, 1), 2),
        "extensions_per_1000_output_tokens": round(steps * 1000 / max(int(tokens), 1), 2),
        "errors": result.errors,
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def measure(
    args: argparse.Namespace,
    driver: drivers.Driver,
    ports: tuple[int, int],
    key: str,
    server: subprocess.Popen,
    database_url: str,
) -> dict:
    gw_port, fake_port = ports
    size = sizes(args)
    auth = {"authorization": f"Bearer {key}", "x-kaixu-app": "bench"}
    upstream_auth = {"authorization": "Bearer bench"}
    chat = load.build_request("127.0.0.1", gw_port, CHAT_PATH, CHAT_BODY, auth)
    stream = load.build_request("127.0.0.1", gw_port, STREAM_PATH, STREAM_BODY, auth)
    direct_stream = load.build_request(
        "127.0.0.1", fake_port, UPSTREAM_PATH, UPSTREAM_STREAM_BODY, upstream_auth
    )

    async def gateway(connections: int, seconds: float, keys: Sequence[str] = ()) -> Stats:
        return await driver.run(
            gw_port, CHAT_PATH, CHAT_BODY, auth, connections=connections, seconds=seconds, keys=keys
        )

    async def openai_format(connections: int, seconds: float) -> Stats:
        return await driver.run(
            gw_port, COMPAT_PATH, COMPAT_BODY, auth, connections=connections, seconds=seconds
        )

    await gateway(8, 2)  # warm-up: connections, prepared statements, caches
    await openai_format(8, 1)
    base = await driver.run(
        fake_port, UPSTREAM_PATH, UPSTREAM_BODY, upstream_auth, connections=1, seconds=size["latency_s"]
    )
    # The two ways in take turns, so that the VM's drift falls on both alike; the server's CPU
    # time per call is counted too (steadier than latency on a shared VM).
    cpu = {"gateway": 0.0, "openai": 0.0}

    async def timed(way: str, run: Any) -> Stats:
        before = server_cpu_s(server)
        stats: Stats = await run(1, size["latency_s"] / LATENCY_TURNS)
        cpu[way] += server_cpu_s(server) - before
        return stats

    turns = [
        (await timed("gateway", gateway), await timed("openai", openai_format)) for _ in range(LATENCY_TURNS)
    ]
    via, compat = (Stats.mean([turn[side] for turn in turns]) for side in (0, 1))
    round_trips = await round_trips_per_call(database_url, chat, gw_port, 300 if not args.smoke else 20)
    leases = await stream_round_trips(database_url, stream, gw_port, 100 if not args.smoke else 10)

    rss_before = server_rss_mb(server)  # the memory figure covers the streams and the 50,000 calls
    streams = size["streams"]
    stream_base = await load.time_to_marker(
        "127.0.0.1", fake_port, direct_stream, b'"content"', concurrency=100, total=streams, ramp_s=STREAM_S
    )
    stream_via = await load.time_to_marker(
        "127.0.0.1", gw_port, stream, b"event: delta", concurrency=100, total=streams, ramp_s=STREAM_S
    )
    burst = await load.time_to_marker(
        "127.0.0.1", gw_port, stream, b"event: delta", concurrency=100, total=100
    )

    # Saturation comes last: the disk writeback it leaves behind stalled the commits of whatever
    # ran right after it (the stream p99 doubled), so each phase starts from a quiet system.
    tput = await gateway(64, size["throughput_s"])  # one customer, one key: the hot case
    spread_keys = seed_spread(database_url)
    await asyncio.sleep(0 if args.smoke else SETTLE_PAUSE_S)  # the same quiet start as the hot run had
    spread = await gateway(64, size["throughput_s"], keys=spread_keys)

    served, errors = tput.requests, tput.errors
    while served < size["memory"]:
        more = await gateway(32, min(30, max(1, (size["memory"] - served) / max(tput.rps, 100))))
        served, errors = served + more.requests, errors + more.errors
    rss_after = server_rss_mb(server)
    idle = await idle_streams(args, driver, gw_port, auth, server)

    def added(pct: int, via_r: load.Result, base_r: load.Result) -> float:
        return ms(percentile(via_r.latencies_s, pct) - percentile(base_r.latencies_s, pct))

    return {
        "workers": args.workers,
        "driver": driver.name,
        "added_latency_ms": {"p50": ms(via.p50_s - base.p50_s), "p99": ms(via.p99_s - base.p99_s)},
        "direct_latency_ms": {"p50": ms(base.p50_s), "p99": ms(base.p99_s)},
        "gateway_latency_ms": {"p50": ms(via.p50_s), "p99": ms(via.p99_s)},
        "openai_format_added_latency_ms": {
            "p50": ms(compat.p50_s - base.p50_s),
            "p99": ms(compat.p99_s - base.p99_s),
            "vs_gateway_chat_p50": round((compat.p50_s - base.p50_s) / max(via.p50_s - base.p50_s, 1e-9), 3),
            "server_cpu_us_per_call": round(cpu["openai"] / max(compat.requests, 1) * 1e6),
            "gateway_chat_server_cpu_us_per_call": round(cpu["gateway"] / max(via.requests, 1) * 1e6),
        },
        "throughput": {
            "concurrency": 64,
            "requests": tput.requests,
            "rps": round(tput.rps, 1),
            "p99_ms": ms(tput.p99_s),
            "errors": tput.errors,
        },
        "hot_customer": {
            "concurrency": 64,
            "one_key_rps": round(tput.rps, 1),
            "spread_over_customers": SPREAD_CUSTOMERS,
            "spread_rps": round(spread.rps, 1),
            "ratio": round(tput.rps / max(spread.rps, 1e-9), 3),
            "errors": spread.errors,
        },
        "stream_added_ttfd_ms": {
            "concurrent": 100,
            "streams": len(stream_via.latencies_s),
            "p50": added(50, stream_via, stream_base),
            "p99": added(99, stream_via, stream_base),
            "errors": stream_via.errors + burst.errors,
            "burst_of_100_p50": ms(percentile(burst.latencies_s, 50)),
            "burst_of_100_p99": ms(percentile(burst.latencies_s, 99)),
        },
        "memory_mb": {
            "requests": served,
            "rss_before": round(rss_before, 1),
            "rss_after": round(rss_after, 1),
            "growth": round(rss_after - rss_before, 1),
        },
        "idle_streams": idle,
        "db_round_trips_per_call": None if round_trips is None else round(round_trips, 2),
        "stream_leases": leases,
        "errors": via.errors
        + base.errors
        + compat.errors
        + errors
        + spread.errors
        + idle["errors"]
        + (leases["errors"] if leases else 0),
    }


async def idle_streams(
    args: argparse.Namespace,
    driver: drivers.Driver,
    gw_port: int,
    auth: dict[str, str],
    server: subprocess.Popen,
) -> dict[str, Any]:
    """What open streams that send nothing cost: RSS per stream, and the gateway-chat latency
    at concurrency 1 while they stay open, against the same figure just before they opened
    (the start of the run is no control: the database has grown since, and the load before
    this phase leaves writeback behind)."""
    count = 50 if args.smoke else IDLE_STREAMS
    request = load.build_request("127.0.0.1", gw_port, STREAM_PATH, IDLE_BODY, auth)

    async def gateway_chat_c1() -> load.Result:
        return await driver.run(
            gw_port, CHAT_PATH, CHAT_BODY, auth, connections=1, seconds=sizes(args)["latency_s"]
        )

    await asyncio.sleep(0 if args.smoke else SETTLE_PAUSE_S)
    alone = await gateway_chat_c1()
    rss_before = server_rss_mb(server)
    streams = await load.open_streams("127.0.0.1", gw_port, request, count)
    try:
        await asyncio.sleep(2)  # every stream past its first frame, the allocator settled
        rss_open = server_rss_mb(server)
        during = await gateway_chat_c1()
    finally:
        load.close_all(streams)
    await asyncio.sleep(3)  # the gateway settles each as the client's disconnect
    return {
        "streams": count,
        "rss_before": round(rss_before, 1),
        "rss_open": round(rss_open, 1),
        "kb_per_stream": round((rss_open - rss_before) * 1024 / count, 1),
        "gateway_p50_ms_before": ms(alone.p50_s),
        "gateway_p50_ms": ms(during.p50_s),
        "latency_p50_increase_ms": ms(during.p50_s - alone.p50_s),
        "errors": alone.errors + during.errors,
    }


def print_table(result: dict) -> None:
    rows = [
        (
            "added latency c=1 p50 / p99 (ms)",
            f"{result['added_latency_ms']['p50']} / {result['added_latency_ms']['p99']}",
        ),
        (
            "/v1/chat/completions (OpenAI format) added c=1 p50 / p99 (ms)",
            "{p50} / {p99} ({vs_gateway_chat_p50} x gateway-chat)".format(
                **result["openai_format_added_latency_ms"]
            ),
        ),
        (
            "direct-to-fake c=1 p50 / p99 (ms)",
            f"{result['direct_latency_ms']['p50']} / {result['direct_latency_ms']['p99']}",
        ),
        (
            "throughput c=64 (req/s)",
            f"{result['throughput']['rps']} ({result['throughput']['errors']} errors)",
        ),
        ("throughput c=64 p99 (ms)", str(result["throughput"]["p99_ms"])),
        (
            "one hot customer / 100 customers, c=64 (req/s)",
            "{one_key_rps} / {spread_rps} (ratio {ratio})".format(**result["hot_customer"]),
        ),
        (
            "stream added TTFD p50 / p99 (ms), 100 open streams",
            f"{result['stream_added_ttfd_ms']['p50']} / {result['stream_added_ttfd_ms']['p99']}",
        ),
        (
            "stream TTFD p50 / p99 (ms), burst of 100 at once",
            "{burst_of_100_p50} / {burst_of_100_p99}".format(**result["stream_added_ttfd_ms"]),
        ),
        (
            "RSS before / after / growth (MB)",
            "{rss_before} / {rss_after} / {growth}".format(**result["memory_mb"]),
        ),
        (
            "idle streams: KB each / gateway-chat p50 increase (ms)",
            "{kb_per_stream} / {latency_p50_increase_ms} ({streams} open)".format(**result["idle_streams"]),
        ),
        ("DB round trips per call", str(result["db_round_trips_per_call"])),
        (
            "stream lease: extensions per 1,000 output tokens / statements per stream",
            "n/a"
            if result["stream_leases"] is None
            else "{extensions_per_1000_output_tokens} / {statements_per_stream} "
            "({output_tokens_per_stream} tokens each)".format(**result["stream_leases"]),
        ),
        (
            "cold start: slowest import / first gateway-chat (ms)",
            "{ms} ({function}) / ".format(**result["cold_start"]["slowest_import"])
            + str(result["cold_start"]["first_gateway_chat_ms"]),
        ),
    ]
    if "litellm" in result:
        rows.append(("LiteLLM c=64 (req/s)", str(result["litellm"]["rps"])))
        rows.append(("throughput ratio (Kaixu / LiteLLM)", str(result["litellm"]["ratio"])))
    width = max(len(name) for name, _ in rows)
    print(f"Kaixu Gateway benchmark: {result['machine']}, {result['workers']} worker(s), {result['driver']}")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (under 2 minutes)")
    parser.add_argument("--smoke", action="store_true", help="tiny load, to check the harness works")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway worker processes (on 2 cores one leaves a core to PostgreSQL)",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--compare-litellm", action="store_true")
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load driver for the latency, throughput and memory runs (auto: wrk when installed)",
    )
    args = parser.parse_args()
    driver = drivers.pick(args.driver)

    with ExitStack() as stack:
        env, key, fake_port = stack.enter_context(bench_stack(args.database_url))
        gw_port = free_port()
        server = start(stack, server_command(gw_port, args.workers), env)
        wait_for_port(gw_port)
        result = uvloop.run(measure(args, driver, (gw_port, fake_port), key, server, env["DATABASE_URL"]))
        result["machine"] = (
            f"{platform.machine()} {psutil.cpu_count()} cores, Python {platform.python_version()}"
        )
        result["cold_start"] = cold_start.measure(
            env, key, runs=1 if args.smoke else 3 if args.quick else 10, functions=cold_start_functions(args)
        )
        if args.compare_litellm:
            result["litellm"] = litellm_compare.run(
                stack, driver, fake_port, result["throughput"]["rps"], sizes(args)
            )
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
