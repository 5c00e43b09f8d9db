"""Soak the gateway with mixed, faulty traffic and check that the money and the limits hold:
``python bench/soak.py --calls N --concurrency C --faults``.

It starts its own stack: PostgreSQL (embedded, or a fresh database on the server named by
``--database-url``, dropped afterwards), the provider fake of ``bench/soak_upstream.py`` in a
process of its own, and the gateway under uvicorn as production runs it. It seeds customers and
keys through the admin API with tight monthly caps (of customers and of keys), RPM limits,
device seats and concurrency limits, then drives ``gateway-chat`` and ``gateway-stream`` calls
to all three providers from several install ids per key. With ``--faults`` the provider fake
answers with errors, mid-stream error events, dropped connections, streams without an end and
stalls past ``UPSTREAM_TIMEOUT_S``, and the client hangs up mid-stream or before an answer.
Meanwhile admin tasks credit top-ups (some sent twice at once with one Idempotency-Key) and
rotate keys.

Triggers installed in the soak's own database (``bench/soak_audit.sql``) witness every
admission, rate-ring slot and month-rollup change as it happens. After the run (and a
``maintenance`` run) it checks the invariants (see ``bench/soak_checks.py``), prints a table of
figures and the invariants with PASS/FAIL, then one JSON line, and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import soak_checks as checks  # noqa: E402
from bench.run import free_port, start, wait_for_port  # noqa: E402
from bench.soak_traffic import Admin, KeySlot, Outcomes, Traffic, rotations_loop, topups_loop  # noqa: E402
from shared import migrate  # noqa: E402
from shared.host.command import server_command  # noqa: E402
from shared.host.embedded_pg import EmbeddedPostgres  # noqa: E402
from tests.support.fakes.upstreams import DEFAULT_KEYS  # noqa: E402

AUDIT_SQL = Path(__file__).with_name("soak_audit.sql")
FUNCTIONS = ROOT / "sql" / "functions"
# Deliberate bugs, put into the soak's own database only, to show the invariants catch them:
# name -> (the check that must fail, [(file of sql/functions, the text to change, what it becomes)]).
# "cap" takes out every cap check, the lease steps' too: with only admission's gone, streams
# still stop at the caps, and a short run whose top-ups came early may never pass one.
SABOTAGES = {
    "cap": (
        "spend ≤ cap + top-ups at every settlement (event log, in order)",
        [
            ("admit.sql", "IF v_worst > v_room THEN\n        -- Clamp:", "IF false THEN\n        -- Clamp:"),
            (
                "leases.sql",
                "IF v_cu.spent_nanos + v_cu.reserved_nanos + v_add > kx_nanos(cap_cents) THEN",
                "IF false THEN",
            ),
            (
                "leases.sql",
                "IF v_key_capped AND v_ku.spent_nanos + v_ku.reserved_nanos + v_add > "
                "kx_nanos(key_cap_cents) THEN",
                "IF false THEN",
            ),
        ],
    ),
    "rpm": (
        "RPM: never more than the limit in any 60 s (sliding) window",
        [
            (
                "admit.sql",
                "v_block := kx_ring_blocker(v_minute, interval '60 seconds', v_now);",
                "v_block := NULL;",
            )
        ],
    ),
    "seats": (
        "seats: never more active devices than seats per key",
        [
            (
                "admit.sql",
                "WHERE d.api_key_id = k.id AND d.revoked_at IS NULL) >= v_seats THEN",
                "WHERE d.api_key_id = k.id AND d.revoked_at IS NULL) > v_seats THEN",
            )
        ],
    ),
    "settle": (
        "Σ events = month rollup = invoice preview (customer and key)",
        [
            (
                "settle.sql",
                "spent_nanos = mu.spent_nanos + v_sell,",
                "spent_nanos = mu.spent_nanos + v_sell + 1,",
            )
        ],
    ),
}
DEFAULT_RPM = 120
DEFAULT_CONCURRENCY = 32
DB_POOL_MAX = 5
STREAM_USAGE_WAIT_S = 1.0
LEASE_STEP_TOKENS = 16
RSS_TOLERANCE_MB = 20.0  # the README's memory goal for the benchmark's 50,000 calls
OTHER_FD_TOLERANCE = 2
# The gateway keeps at most this many idle connections to one provider origin (the pool in
# shared/providers/transport.py); calls whose client left still read their provider, so more
# than the driver's concurrency may be open at once and then idle.
UPSTREAM_IDLE_MAX = 50


# --------------------------------------------------------------------------- the stack


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def fresh_database(stack: ExitStack, server_url: str, keep: bool) -> str:
    name = f"kaixu_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    if not keep:
        stack.callback(drop)
    return _with_database(server_url, name)


def sabotage(conn: psycopg.Connection, names: list[str]) -> None:
    """Replace server-side functions in the soak's database with broken ones (``--sabotage``)."""
    texts: dict[str, str] = {}
    for name in names:
        for file, before, after in SABOTAGES[name][1]:
            text = texts.get(file, (FUNCTIONS / file).read_text())
            if before not in text:
                raise SystemExit(f"--sabotage {name}: sql/functions/{file} no longer has {before!r}")
            texts[file] = text.replace(before, after)
    for text in texts.values():
        conn.execute(text)


def customers_plan(calls: int) -> list[dict[str, Any]]:
    """Customers and keys sized to the run: the caps are reached (and raised by top-ups) in a
    run of any length, the RPM limits of some keys bind, every key has fewer seats than the
    install ids that use it, and one customer runs at a concurrency limit."""
    scale = max(calls / 1000, 1)

    def cents(per_thousand: float) -> int:
        return max(1, math.ceil(per_thousand * scale))

    return [
        {
            "label": "tight-cap",
            "customer": {"monthly_cap_cents": cents(0.8), "rpm_limit": 6000},
            "keys": [{"max_devices": 3}, {"max_devices": 2}, {"max_devices": 4, "rpm_limit": 600}],
        },
        {
            "label": "tight-rpm",
            "customer": {"monthly_cap_cents": cents(20)},
            "keys": [
                {"rpm_limit": 30, "max_devices": 3},
                {"rpm_limit": 120, "max_devices": 3},
                {"rpm_limit": 600, "max_devices": 2},
            ],
        },
        {
            "label": "key-caps",
            "customer": {"monthly_cap_cents": cents(3), "rpm_limit": 6000},
            "keys": [
                {"monthly_cap_cents": cents(0.3), "max_devices": 2},
                {"monthly_cap_cents": cents(0.8), "max_devices": 3},
                {"max_devices": 3},
            ],
        },
        {
            "label": "concurrency",
            "customer": {"monthly_cap_cents": cents(3), "rpm_limit": 6000, "max_concurrent": 3},
            "keys": [{"max_devices": 3, "max_concurrent": 2}, {"max_devices": 3}, {"max_devices": 2}],
        },
    ]


async def seed(admin: Admin, calls: int) -> tuple[list[dict[str, Any]], list[KeySlot]]:
    customers, slots = [], []
    for profile in customers_plan(calls):
        email = f"soak-{profile['label']}-{uuid.uuid4().hex[:6]}@example.com"
        item = (await admin.post("admin-customers", {"email": email, **profile["customer"]}))["item"]
        customer = {"id": int(item["id"]), "label": profile["label"], **profile["customer"]}
        customers.append(customer)
        for n, settings in enumerate(profile["keys"]):
            body = {"customer_id": customer["id"], "label": f"{profile['label']}-{n}", **settings}
            key = (await admin.post("admin-keys", body))["item"]
            seats = settings["max_devices"]
            slots.append(
                KeySlot(
                    slot=len(slots),
                    customer_id=customer["id"],
                    key_id=int(key["id"]),
                    secret=key["key"],
                    rpm=settings.get("rpm_limit") or profile["customer"].get("rpm_limit") or DEFAULT_RPM,
                    seats=seats,
                    installs=[f"install-{len(slots)}-{i}" for i in range(seats + 2)],
                    key_ids=[int(key["id"])],
                )
            )
    return customers, slots


# --------------------------------------------------------------------------- the server's resources


def server_resources(pid: int, port: int, upstream_port: int, database_url: str) -> dict[str, Any]:
    """RSS and open files of the gateway process, and its connections by kind: clients
    (inbound to its port), the provider fake (keep-alive pool), PostgreSQL (counted by the
    server itself: every session on the soak's database but this one), sockets left
    half-closed (CLOSE_WAIT: the peer hung up and the gateway never closed its side), and the
    file descriptors that are no socket at all."""
    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)]
    inet = [c for p in processes for c in p.net_connections(kind="inet")]
    unix = [c for p in processes for c in p.net_connections(kind="unix")]
    with psycopg.connect(database_url, autocommit=True) as conn:
        database = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    fds = sum(p.num_fds() for p in processes)
    return {
        "rss_mb": round(sum(p.memory_info().rss for p in processes) / 2**20, 1),
        "fds": fds,
        "other_fds": fds - len(inet) - len(unix),
        "clients": len([c for c in inet if c.laddr.port == port and c.status != psutil.CONN_LISTEN]),
        "upstream": len([c for c in inet if c.raddr and c.raddr.port == upstream_port]),
        "database": int(database),
        "close_wait": len([c for c in inet if c.status == psutil.CONN_CLOSE_WAIT]),
    }


def wait_quiet(database_url: str, timeout_s: float) -> int:
    """Wait until no call is in flight in the database (the client is done, but the server may
    still be reading a provider for a departed client's usage); the reservations left."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            left = conn.execute("SELECT count(*) FROM reservations").fetchone()[0]
            if left == 0 or time.monotonic() > deadline:
                return int(left)
            time.sleep(0.2)


# --------------------------------------------------------------------------- the run


async def drive(
    args: argparse.Namespace, gw_port: int, upstream_port: int, server_pid: int, database_url: str
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{gw_port}"
    admin = Admin(base, args.admin_password)
    await admin.login()
    customers, slots = await seed(admin, args.calls)
    traffic = Traffic(
        gw_port,
        slots,
        faults=args.faults,
        seed=args.seed,
        upstream_timeout_s=args.upstream_timeout_s,
        deadline=time.time() + args.max_seconds,
    )
    warmup = min(args.warmup, args.calls // 2)
    await traffic.run(warmup, args.concurrency)
    await admin.close()
    await asyncio.sleep(1.0)
    wait_quiet(database_url, 15)
    before = server_resources(server_pid, gw_port, upstream_port, database_url)

    admin = Admin(base, args.admin_password)
    await admin.login()
    stop = asyncio.Event()
    ids = [c["id"] for c in customers]
    side = [
        asyncio.ensure_future(
            topups_loop(admin, ids, traffic.outcomes, args.topup_every, stop, args.seed + 1)
        ),
        asyncio.ensure_future(
            rotations_loop(admin, slots, traffic.outcomes, args.rotate_every, stop, args.seed + 2)
        ),
    ]
    samples = []

    async def sample() -> None:
        while not stop.is_set():
            samples.append(server_resources(server_pid, gw_port, upstream_port, database_url)["rss_mb"])
            await asyncio.sleep(5)

    side.append(asyncio.ensure_future(sample()))
    main_started = time.perf_counter()
    await traffic.run(args.calls - warmup, args.concurrency)
    main_s = time.perf_counter() - main_started
    stop.set()
    await asyncio.gather(*side)

    left = await asyncio.to_thread(
        wait_quiet, database_url, args.upstream_timeout_s + STREAM_USAGE_WAIT_S + 15
    )
    answer = await admin.http.post(
        "maintenance", headers={"x-kaixu-maintenance-secret": args.maintenance_secret}
    )
    maintenance = answer.json().get("item", {}) if answer.status_code == 200 else {"error": answer.text[:200]}
    months = [
        row[0]
        for row in psycopg.connect(database_url, autocommit=True)
        .execute("SELECT DISTINCT month FROM monthly_usage")
        .fetchall()
    ]
    invoices = {}
    for customer in customers:
        for month in months:
            item = (await admin.get("admin-invoices", preview=1, customer_id=customer["id"], month=month))[
                "item"
            ]
            invoices[(customer["id"], month)] = item["snapshot"]
    await admin.close()
    await asyncio.sleep(1.0)
    after = server_resources(server_pid, gw_port, upstream_port, database_url)
    return {
        "outcomes": traffic.outcomes,
        "customers": customers,
        "slots": slots,
        "warmup": warmup,
        "main_s": main_s,
        "left_in_flight": left,
        "maintenance": maintenance,
        "invoices": invoices,
        "resources": {"before": before, "after": after, "rss_samples": samples},
    }


def _last_lines(text: str, n: int) -> str:
    block = text.split("\n\n")[0].splitlines()
    return " | ".join(line.strip() for line in block[-n:])


def _resources(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in figures.items() if k != "rss_mb")


def evaluate(database_url: str, run: dict[str, Any]) -> list[checks.Check]:
    outcomes: Outcomes = run["outcomes"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = [
            checks.sums(conn, run["invoices"]),
            checks.caps_from_event_log(conn),
            *checks.caps_from_rollups(conn),
            checks.topups(conn, outcomes),
            *checks.rate_limits(conn, DEFAULT_RPM),
            checks.seats(conn),
            checks.concurrency(conn, DEFAULT_CONCURRENCY),
            checks.revocations(conn, outcomes.rotations),
            checks.nothing_in_flight(conn, int(run["maintenance"].get("released_reservations", -1))),
            checks.one_event_and_monitor_row(conn),
            *checks.client_agrees(conn, outcomes),
        ]
    before, after = run["resources"]["before"], run["resources"]["after"]
    growth = after["rss_mb"] - before["rss_mb"]
    found.append(
        checks.Check(
            f"server RSS flat (growth ≤ {RSS_TOLERANCE_MB:g} MB after warm-up)",
            growth <= RSS_TOLERANCE_MB,
            f"{before['rss_mb']} → {after['rss_mb']} MB ({growth:+.1f})",
        )
    )
    connections_ok = (
        after["clients"] == 0
        and after["close_wait"] == 0
        and after["database"] <= DB_POOL_MAX
        and after["upstream"] <= UPSTREAM_IDLE_MAX
        and after["other_fds"] <= before["other_fds"] + OTHER_FD_TOLERANCE
    )
    found.append(
        checks.Check(
            f"server connections flat (0 clients, 0 CLOSE_WAIT, database ≤ {DB_POOL_MAX}, "
            f"upstream ≤ {UPSTREAM_IDLE_MAX} idle, other fds ≤ before + {OTHER_FD_TOLERANCE})",
            connections_ok,
            f"before {_resources(before)}; after {_resources(after)}",
        )
    )
    found.append(
        checks.Check(
            "admin work answered (top-ups, rotations)",
            not outcomes.admin_errors,
            f"{len(outcomes.topups)} top-ups, {len(outcomes.rotations)} rotations"
            if not outcomes.admin_errors
            else checks._examples(outcomes.admin_errors),
        )
    )
    return found


def database_figures(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        billed = dict(
            conn.execute("SELECT outcome, count(*) FROM usage_events GROUP BY 1 ORDER BY 1").fetchall()
        )
        estimated = conn.execute("SELECT count(*) FROM usage_events WHERE estimated").fetchone()[0]
        total = conn.execute("SELECT coalesce(sum(cost_nanos), 0) FROM usage_events").fetchone()[0]
        monitor = conn.execute("SELECT count(*) FROM gateway_events").fetchone()[0]
    return {
        "billed_by_outcome": billed,
        "estimated": estimated,
        "billed_nanos": int(total),
        "monitor_rows": monitor,
    }


def report(
    args: argparse.Namespace, run: dict[str, Any], found: list[checks.Check], figures: dict[str, Any]
) -> dict:
    outcomes: Outcomes = run["outcomes"]
    calls = len(outcomes.calls)
    res = run["resources"]
    result = {
        "calls": calls,
        "concurrency": args.concurrency,
        "faults": args.faults,
        "seconds": round(outcomes.elapsed_s, 1),
        "calls_per_s": round(calls / max(outcomes.elapsed_s, 1e-9), 1),
        "by_outcome": dict(sorted(outcomes.by_outcome().items())),
        "refusals": dict(sorted(outcomes.refusals().items())),
        "faults_drawn": dict(sorted(Counter(c[3] for c in outcomes.calls.values()).items())),
        "billed": figures,
        "topups": len(outcomes.topups),
        "rotations": len(outcomes.rotations),
        "customers": len(run["customers"]),
        "keys": len(run["slots"]),
        "resources": {"before": res["before"], "after": res["after"]},
        "rss_samples_mb": [min(res["rss_samples"], default=0), max(res["rss_samples"], default=0)],
        "maintenance": run["maintenance"],
        "invariants": {c.name: c.passed for c in found},
        "passed": all(c.passed for c in found),
    }
    before, after = res["before"], res["after"]
    rows = [
        ("calls", f"{calls:,} ({args.concurrency} concurrent, faults {'on' if args.faults else 'off'})"),
        ("time, calls/s", f"{outcomes.elapsed_s:.1f} s, {result['calls_per_s']:,} calls/s"),
        ("calls by outcome (client)", ", ".join(f"{k} {v:,}" for k, v in result["by_outcome"].items())),
        ("refusals by code", ", ".join(f"{k} {v:,}" for k, v in result["refusals"].items()) or "none"),
        (
            "billed by outcome (database)",
            ", ".join(f"{k} {v:,}" for k, v in figures["billed_by_outcome"].items()),
        ),
        ("billed", f"{figures['billed_nanos']:,} nanos, {figures['estimated']:,} calls estimated"),
        ("admin work", f"{len(outcomes.topups)} top-ups, {len(outcomes.rotations)} key rotations"),
        ("server RSS after warm-up → end", f"{before['rss_mb']} → {after['rss_mb']} MB"),
        ("server RSS sampled (min / max)", "{} / {} MB".format(*result["rss_samples_mb"])),
        ("server connections after warm-up", _resources(before)),
        ("server connections at the end", _resources(after)),
        ("maintenance", json.dumps(run["maintenance"])),
    ]
    width = max(len(name) for name, _ in rows)
    print("Kaixu Gateway soak")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    print("Invariants")
    for check in found:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    print("RESULT:", "PASS" if result["passed"] else "FAIL")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000, help="gateway calls in all (warm-up included)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight from the driver")
    parser.add_argument("--faults", action="store_true", help="provider faults and client hang-ups")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", ""))
    parser.add_argument("--keep-database", action="store_true", help="leave the soak's database behind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1000, help="calls before the baseline figures")
    parser.add_argument(
        "--upstream-timeout-s", type=float, default=1.0, help="the gateway's UPSTREAM_TIMEOUT_S"
    )
    parser.add_argument("--topup-every", type=float, default=0.5, help="seconds between top-ups (on average)")
    parser.add_argument("--rotate-every", type=float, default=2.0, help="seconds between key rotations")
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop sending calls after this long")
    parser.add_argument(
        "--sabotage",
        type=lambda text: [name for name in text.split(",") if name],
        default=[],
        help=f"break the soak's own database on purpose to see the checks fail: {', '.join(SABOTAGES)}",
    )
    args = parser.parse_args()
    if unknown := set(args.sabotage) - set(SABOTAGES):
        parser.error(f"unknown sabotage {sorted(unknown)}")
    args.admin_password = secrets.token_urlsafe(24)
    args.maintenance_secret = secrets.token_urlsafe(24)

    with ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="kaixu-soak-"))
        stack.callback(shutil.rmtree, folder, True)
        server_url = args.database_url
        if not server_url:
            embedded = EmbeddedPostgres(folder / "pg")
            stack.callback(embedded.stop)
            server_url = embedded.url()
        database_url = fresh_database(stack, server_url, args.keep_database)
        migrate.migrate(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(AUDIT_SQL.read_text())
            sabotage(conn, args.sabotage)

        fake_port, gw_port = free_port(), free_port()
        start(stack, [sys.executable, "bench/soak_upstream.py", str(fake_port)], dict(os.environ))
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DB_POOL_MAX": str(DB_POOL_MAX),
            "KAIXU_ENV": "production",
            "KAIXU_BUILD": "soak",
            "ADMIN_PASSWORD": args.admin_password,
            "ADMIN_TOKEN_SECRET": secrets.token_urlsafe(32),
            "KEY_PEPPER": secrets.token_urlsafe(32),
            "KAIXU_MAINTENANCE_SECRET": args.maintenance_secret,
            "DEFAULT_RPM_LIMIT": str(DEFAULT_RPM),
            "DEFAULT_MAX_CONCURRENT": str(DEFAULT_CONCURRENCY),
            "UPSTREAM_TIMEOUT_S": str(args.upstream_timeout_s),
            "STREAM_USAGE_WAIT_S": str(STREAM_USAGE_WAIT_S),
            # The soak's streams are short: a small step makes their leases grow, race for the
            # caps and stop at them (the outcome 'stopped').
            "LEASE_STEP_TOKENS": os.environ.get("LEASE_STEP_TOKENS", str(LEASE_STEP_TOKENS)),
            "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
            "GEMINI_BASE_URL": f"http://127.0.0.1:{fake_port}",
            "OPENAI_API_KEY": DEFAULT_KEYS["openai"],
            "ANTHROPIC_API_KEY": DEFAULT_KEYS["anthropic"],
            "GEMINI_API_KEY": DEFAULT_KEYS["gemini"],
        }
        for name in ("ALERT_WEBHOOK_URL", "TRUSTED_PROXIES"):
            env.pop(name, None)
        log_path = folder / "gateway.log"
        log = stack.enter_context(log_path.open("w"))
        server = subprocess.Popen(
            server_command(gw_port, proxy_headers=False),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

        def stop_server() -> None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()

        stack.callback(stop_server)
        wait_for_port(fake_port)
        wait_for_port(gw_port)
        run = uvloop.run(drive(args, gw_port, fake_port, server.pid, database_url))
        found = evaluate(database_url, run)
        log.flush()
        text = log_path.read_text(errors="replace")
        tracebacks = text.count("Traceback (most recent call last)")
        kept = ""
        if tracebacks:
            kept = str(Path(tempfile.gettempdir()) / f"kaixu-soak-gateway-{uuid.uuid4().hex[:6]}.log")
            shutil.copy(log_path, kept)
        found.append(
            checks.Check(
                "no unhandled exception in the server's log",
                tracebacks == 0,
                "none"
                if not tracebacks
                else f"{tracebacks}, the log kept in {kept}; the first ends: "
                + _last_lines(text[text.index("Traceback") :], 6),
            )
        )
        result = report(args, run, found, database_figures(database_url))
        result["server_log_lines"] = len(text.splitlines())
    print(json.dumps(result, default=str))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
