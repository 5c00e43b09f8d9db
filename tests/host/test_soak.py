"""The soak (``bench/soak.py``) runs small within the suite and every invariant holds; and what
the soak found stays fixed."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from shared import config
from tests.support.calls import body
from tests.support.database import wait_for

SMALL = ["--calls", "2000", "--concurrency", "16", "--faults", "--warmup", "300"]
SMALL += ["--topup-every", "0.2", "--rotate-every", "0.5", "--seed", "11"]
SABOTAGED = [  # enough calls that the broken caps are passed by far, whenever the top-ups come
    "--calls",
    "1500",
    "--warmup",
    "150",
    "--faults",
    "--sabotage",
    "cap,rpm,seats,settle",
    "--seed",
    "5",
]


def test_a_small_soak_with_faults_holds_every_invariant():
    run = subprocess.run(
        [sys.executable, "bench/soak.py", *SMALL],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    result = json.loads(lines[-1])
    assert result["passed"] and result["calls"] == 2000
    assert result["invariants"] and all(result["invariants"].values()), result["invariants"]
    printed = [line for line in lines if line.startswith(("  PASS", "  FAIL"))]
    assert len(printed) == len(result["invariants"]) and all(line.startswith("  PASS") for line in printed)
    # The run really exercised what the invariants are about.
    outcomes, refusals = result["by_outcome"], result["refusals"]
    assert {"ok", "refused", "upstream_error", "stream_error", "client_disconnect"} <= set(outcomes)
    assert {"CAP_REACHED", "RATE_LIMITED", "DEVICE_LIMIT", "CONCURRENCY_LIMIT"} <= set(refusals)
    assert result["topups"] > 0 and result["rotations"] > 0
    assert result["billed"]["estimated"] > 0  # streams cut short were billed from estimates


def test_the_invariants_catch_a_broken_gateway():
    """The checks have teeth: with four bugs put into the soak's own database (no cap check,
    at admission nor at a lease step; no RPM window; one seat too many; one nano-dollar too many
    in the month rollup) each of their invariants fails, and the soak exits 1."""
    run = subprocess.run(
        [sys.executable, "bench/soak.py", *SABOTAGED],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr[-3000:]
    invariants = json.loads(run.stdout.splitlines()[-1])["invariants"]
    for broken in (
        "spend ≤ cap + top-ups at every settlement (event log, in order)",
        "rollups: spend ≤ cap at every change",
        "RPM: never more than the limit in any 60 s (sliding) window",
        "seats: never more active devices than seats per key",
        "Σ events = month rollup = invoice preview (customer and key)",
    ):
        assert invariants[broken] is False, broken
    assert invariants["every admitted call: exactly one usage event and one monitor row"]


def test_a_client_gone_before_its_body_was_read_is_not_a_server_error(
    server, make_key, db, caplog: pytest.LogCaptureFixture
):
    """Found by the soak at concurrency 64: a client that hung up before the gateway had read
    its body was logged as an unhandled error and recorded as a 500 in the monitor (an alarm
    on API 5xx would fire for every flaky mobile connection). It is a 499 now, nothing billed."""
    key = make_key()
    payload = json.dumps(body("openai")).encode()
    head = (
        "POST /.netlify/functions/gateway-chat HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nauthorization: Bearer {key.secret}\r\n"
        "x-kaixu-request-id: gone-before-the-body\r\n\r\n"
    ).encode()
    address = urlsplit(server)
    caplog.set_level(logging.WARNING)
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + payload[: len(payload) // 2])  # half the body, then hang up

    def monitor_row() -> dict | None:
        return db.execute(
            "SELECT status, level FROM gateway_events WHERE request_id = 'gone-before-the-body'"
        ).fetchone()

    assert wait_for(monitor_row) == {"status": 499, "level": "warn"}
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 0
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    assert "unhandled error" not in caplog.text
