"""A gateway process killed (SIGKILL) with calls in flight: one between ADMIT and SETTLE, one
mid-stream. Nothing in the dead process settles them (the call holds its max_tokens, the
stream its lease); a new process's maintenance releases them by the abandoned-call rule (billed
the prompt at its admission bound, estimated) and the cap they held is whole again."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.calls import body
from tests.support.ledger import assert_ledger_balances, prompt_bound, usage, worst_case
from tests.support.processes import GatewayProcess, gateway_environment

CALL = body(
    max_tokens=7000
)  # reserves about 4.2M nanos, not streamed: two fit under a 1-cent cap, three do not


@pytest.fixture
def gateways(database_url, upstreams):
    """Start gateway processes on demand; whatever is still running is stopped afterwards."""
    started: list[GatewayProcess] = []

    def start() -> GatewayProcess:
        process = GatewayProcess(gateway_environment(database_url, upstreams))
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


def _post_in_background(url: str, key) -> threading.Thread:
    def call() -> None:
        try:
            httpx.post(url + "gateway-chat", json=CALL, headers=key.auth, timeout=30)
        except httpx.HTTPError:
            pass  # the process died under it: the client sees a broken connection

    runner = threading.Thread(target=call, daemon=True)
    runner.start()
    return runner


def test_a_gateway_killed_mid_call_and_mid_stream_is_billed_by_the_abandoned_call_rule(
    gateways, db, make_key, upstreams
):
    held = worst_case(CALL)
    assert 2 * held <= 10_000_000 < 3 * held
    key = make_key(customer={"monthly_cap_cents": 1})
    upstreams.script("openai", once=True, delay_s=20)  # the chat: admitted, the provider silent
    upstreams.script("openai", once=True, deltas=[f"w{i} " for i in range(50)], chunk_delay_s=0.1)
    first = gateways()

    chat = _post_in_background(first.url, key)
    assert upstreams.wait_for(lambda: len(upstreams.requests) == 1, timeout=10)
    deltas = 0
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", first.url + "gateway-stream", json=CALL, headers=key.auth) as stream,
    ):
        lines = stream.iter_lines()
        for line in lines:
            deltas += line == "event: delta"
            if deltas == 3:
                break
        assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 2
        first.kill()
        with pytest.raises(httpx.HTTPError):  # the stream breaks: no done, no error frame
            for line in lines:
                assert line not in ("event: done", "event: error")
    chat.join(10)
    assert not chat.is_alive()

    # The dead still hold it: the chat all its max_tokens, the stream the steps of its lease so far.
    leases = [r["leased_tokens"] for r in db.execute("SELECT leased_tokens FROM reservations ORDER BY id")]
    assert leases[0] == 7000 and 256 <= leases[1] < 7000, leases
    holding = db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"]
    tokens, nanos = prompt_bound(CALL)
    second = gateways()
    squeezed = httpx.post(second.url + "gateway-chat", json=body(max_tokens=16_000), headers=key.auth)
    assert squeezed.status_code == 200, squeezed.text
    assert squeezed.json()["max_tokens_clamped_to"] == (10_000_000 - holding - nanos) // 600  # gpt-4o-mini
    db.execute("UPDATE reservations SET created_at = now() - interval '1 hour'")
    assert second.maintenance()["released_reservations"] == 2

    abandoned = [r for r in usage(db) if r["outcome"] == "abandoned"]
    assert [
        (r["outcome"], r["estimated"], r["input_tokens"], r["output_tokens"], r["cost_nanos"])
        for r in abandoned
    ] == [("abandoned", True, tokens, 0, nanos)] * 2
    spent = db.execute("SELECT sum(cost_nanos) AS s FROM usage_events").fetchone()["s"]
    rollup = db.execute("SELECT spent_nanos, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"spent_nanos": spent, "reserved_nanos": 0}
    again = httpx.post(second.url + "gateway-chat", json=CALL, headers=key.auth)
    assert again.status_code == 200, again.text  # the cap is whole again
    assert "max_tokens_clamped_to" not in again.json()
    assert_ledger_balances(db, calls=4)
