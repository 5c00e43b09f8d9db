"""Server memory during a big CSV export: ``python bench/export_memory.py [--rows N]``.

Starts PostgreSQL (embedded in a temporary folder, or ``--database-url``), applies the
migrations, inserts ``--rows`` usage events (default 1,000,000) with one INSERT ... SELECT
generate_series, starts the system under uvicorn as a separate process, then downloads
``admin-export?type=usage`` (streamed to nowhere) while sampling the server's resident
memory every 20 ms. It prints the RSS before, at its peak and after, and the peak growth:
a streamed export should grow by a few MB whatever the row count, not by the file size.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import migrate  # noqa: E402
from shared.host.embedded_pg import EmbeddedPostgres  # noqa: E402

PASSWORD = "bench-export-password"
MB = 1024 * 1024
SEED = """
INSERT INTO usage_events (created_at, customer_id, api_key_id, month, provider, model, input_tokens,
                          output_tokens, cost_nanos, sell_nanos, outcome, install_id, app, build, request_id)
SELECT now() - make_interval(secs => %(rows)s - n), %(customer)s, %(key)s, '2026-02', 'openai', 'gpt-4o-mini',
       100 + mod(n, 900), 20 + mod(n, 300), 15000 + mod(n * 7, 1000000), 19650 + mod(n * 7, 1000000), 'ok',
       'install-' || mod(n, 1000), 'app, "quoted" ' || mod(n, 50), 'build-' || mod(n, 7), md5(n::text)
FROM generate_series(1, %(rows)s) AS n
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(server_url: str) -> str:
    name = f"kaixu_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def seed(url: str, rows: int) -> None:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        customer = conn.execute(
            "INSERT INTO customers (email, plan_id)"
            " SELECT 'bench@example.com', id FROM plans WHERE is_default RETURNING id"
        ).fetchone()[0]
        key = conn.execute(
            "INSERT INTO api_keys (customer_id, key_hash, key_last4) VALUES (%s, %s, 'abcd') RETURNING id",
            (customer, os.urandom(32)),
        ).fetchone()[0]
        conn.execute(SEED, {"rows": rows, "customer": customer, "key": key})
        conn.execute("VACUUM ANALYZE usage_events")
    print(f"seeded {rows:,} usage rows in {time.perf_counter() - started:.1f} s")


def start_server(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "ADMIN_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "shared.host.asgi:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen([*command, "--no-access-log"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/.netlify/functions/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


class Sampler:
    """Samples a process's RSS every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def download(base: str, params: dict[str, str]) -> tuple[int, int, float]:
    """Stream the export to nowhere; returns (bytes, lines, seconds)."""
    started, size, lines = time.perf_counter(), 0, 0
    headers = {"x-admin-password": PASSWORD}
    with (
        httpx.stream("GET", f"{base}/admin-export", params=params, headers=headers, timeout=600) as response,
        open(os.devnull, "wb") as sink,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes():
            sink.write(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, lines, time.perf_counter() - started


def measure(port: int, pid: int, rows: int) -> None:
    base = f"http://127.0.0.1:{port}/.netlify/functions"
    for _ in range(3):  # warm up: imports, pool, one small export
        download(base, {"type": "usage", "customer_id": "999999"})
    sampler = Sampler(pid)
    before = sampler.rss()
    with sampler:
        size, lines, seconds = download(base, {"type": "usage"})
    after = sampler.rss()
    exported = lines - 1  # the header line
    print(
        f"export: {exported:,} rows, {size / MB:.1f} MB in {seconds:.1f} s ({exported / seconds:,.0f} rows/s)"
    )
    print(
        f"server RSS before {before / MB:.1f} MB, peak {sampler.peak / MB:.1f} MB, after {after / MB:.1f} MB"
    )
    print(f"peak RSS growth: {(sampler.peak - before) / MB:.1f} MB")
    if exported != rows:
        raise SystemExit(f"expected {rows} rows, got {exported}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    with ExitStack() as stack:
        server_url = args.database_url
        if not server_url:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kaixu-bench-")))
            embedded = EmbeddedPostgres(folder / "pg", delete_on_stop=True)
            stack.callback(embedded.stop)
            server_url = embedded.url()
        url = fresh_database(server_url)
        migrate.migrate(url)
        seed(url, args.rows)
        port = free_port()
        server = start_server(url, port)
        stack.callback(server.wait, 10)
        stack.callback(server.terminate)
        measure(port, server.pid, args.rows)


if __name__ == "__main__":
    main()
