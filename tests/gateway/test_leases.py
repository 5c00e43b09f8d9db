"""A stream's reservation is a lease: it starts with one step of output, grows a step at a time
ahead of what the provider streams, and when a step is refused the stream stops cleanly (an
``error`` frame with the refusal's code, then ``done``), the provider is let go, and the month
is never past its cap. Through real HTTP, against the real database and the provider fakes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.billing import pricing
from shared.gateway import keys
from tests.support.database import wait_for
from tests.support.ledger import assert_ledger_balances, prompt_bound
from tests.support.sse import names, parse_sse

CENT = 10_000_000


def stream_call(model: str = "gpt-4o-mini", max_tokens: int = 8192, provider: str = "openai") -> dict:
    return {
        "provider": provider,
        "model": model,
        "messages": [{"role": "user", "content": "Write at length."}],
        "max_tokens": max_tokens,
    }


def test_a_stream_reserves_one_step_and_grows_its_lease_as_it_streams(client, db, make_key, upstreams):
    key = make_key()
    # 40 deltas of 50 bytes: at most 2,000 output tokens (a token is at least one byte).
    upstreams.script("openai", deltas=["x" * 50] * 40, output_tokens=2_000, chunk_delay_s=0.002)
    held, text = None, b""
    with client.stream("POST", "gateway-stream", json=stream_call(), headers=key.auth) as response:
        for chunk in response.iter_bytes():
            text += chunk
            if held is None and b"event: delta" in text:
                held = db.execute("SELECT leased_tokens, reserved_nanos FROM reservations").fetchone()
    assert held is not None
    assert held["leased_tokens"] <= 2 * 256  # the first step, and perhaps the next: not 8,192
    frames = parse_sse(text.decode())
    assert names(frames)[-1] == "done"
    assert frames[-1][1]["usage"]["output_tokens"] == 2_000
    price = pricing.lookup("openai", "gpt-4o-mini")
    assert price is not None
    assert held["reserved_nanos"] == pricing.worst_case_nanos(
        price, prompt_bound(stream_call())[0], held["leased_tokens"]
    )
    assert_ledger_balances(db, calls=1)


@pytest.mark.parametrize("cache_writes", [False, True])
def test_a_prompt_that_may_write_the_cache_is_priced_so_at_admission_and_each_step(
    db, make_key, cache_writes
):
    """Anthropic bills cache writes at up to twice the input rate: a reservation that says its
    prompt may write the cache prices the prompt at the dearest rate, and so does each step."""
    key, opus = make_key(), "claude-opus-4-1-20250805"
    admitted = db.execute(
        "SELECT * FROM kx_admit(p_key_hash => %s, p_provider => 'anthropic', p_model => %s,"
        " p_install_id => NULL, p_user_agent => NULL, p_prompt_tokens => 1000, p_max_tokens => 4096,"
        " p_lease_tokens => 256, p_clamp_min => 16, p_embedding => false, p_default_rpm => 0,"
        " p_default_concurrency => 0, p_cache_writes => %s)",
        (keys.hash_key(key.secret), opus, cache_writes),
    ).fetchone()
    assert admitted["status"] == 0
    price = pricing.lookup("anthropic", opus)
    assert price is not None
    held = db.execute("SELECT reserved_nanos, prompt_nanos, cache_writes FROM reservations").fetchone()
    assert held == {
        "reserved_nanos": pricing.worst_case_nanos(price, 1000, 256, cache_writes=cache_writes),
        "prompt_nanos": pricing.worst_case_nanos(price, 1000, 0, cache_writes=cache_writes),
        "cache_writes": cache_writes,
    }
    step = db.execute(
        "SELECT * FROM kx_extend_lease(%s, %s, %s, 256)",
        (admitted["reservation_id"], key.customer_id, key.key_id),
    ).fetchone()
    assert (step["status"], step["leased_tokens"]) == (0, 512)
    reserved = db.execute("SELECT reserved_nanos FROM reservations").fetchone()["reserved_nanos"]
    assert reserved == pricing.worst_case_nanos(price, 1000, 512, cache_writes=cache_writes)


def test_a_stream_stopped_at_the_cap_ends_with_an_error_then_done(client, db, make_key, upstreams):
    """gpt-4o against a cent: the first three steps of 256 tokens fit, the fourth does not."""
    key = make_key(customer={"monthly_cap_cents": 1})
    upstreams.script("openai", deltas=["y" * 32] * 200, output_tokens=6_400, chunk_delay_s=0.001)
    response = client.post("gateway-stream", json=stream_call("gpt-4o"), headers=key.auth)
    assert response.status_code == 200
    frames = parse_sse(response.text)
    assert names(frames)[-2:] == ["error", "done"]
    error, done = frames[-2][1], frames[-1][1]
    assert error["code"] == "CAP_REACHED" and "stopped" in error["error"]
    assert done["stopped"] == "CAP_REACHED"
    streamed = sum(len(data["text"]) for name, data in frames if name == "delta")
    assert 0 < streamed <= 768  # never past what was leased
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1)  # the provider was let go
    event = db.execute("SELECT * FROM usage_events").fetchone()
    assert (event["outcome"], event["stopped_code"], event["estimated"]) == ("stopped", "CAP_REACHED", True)
    assert event["output_tokens"] == done["usage"]["output_tokens"] == -(-streamed // 4)
    assert event["sell_nanos"] <= CENT
    monitor = db.execute(
        "SELECT status, code, level FROM gateway_events WHERE request_id = %s", (event["request_id"],)
    ).fetchone()
    assert monitor == {"status": 402, "code": "CAP_REACHED", "level": "warn"}
    assert_ledger_balances(db, calls=1)


async def _streams(server: str, auth: dict, payload: dict, count: int) -> list[str]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"{server}/.netlify/functions/", timeout=60, limits=limits) as http:

        async def one() -> str:
            async with http.stream("POST", "gateway-stream", json=payload, headers=auth) as response:
                assert response.status_code == 200, await response.aread()
                return (await response.aread()).decode()

        return await asyncio.gather(*(one() for _ in range(count)))


def test_fifty_streams_against_five_cents_complete_or_stop_and_never_pass_the_cap(
    server, db, make_key, upstreams
):
    """Half the streams would write 800 tokens, half 4,000 (one token per byte: the bound
    exactly): together 7.2 cents. All are admitted (the provider answers after half a second,
    so every first step is taken before any output), then they race for the steps: the short
    ones can finish, the long ones cannot all."""
    key = make_key(customer={"monthly_cap_cents": 5, "max_concurrent": 0}, rpm_limit=1000)
    for i in range(50):
        deltas = 20 if i % 2 else 100
        upstreams.script(
            "openai",
            once=True,
            deltas=["z" * 40] * deltas,
            input_tokens=12,
            output_tokens=40 * deltas,
            delay_s=0.5,
            chunk_delay_s=0.002,
        )
    bodies = asyncio.run(_streams(server, key.auth, stream_call(), 50))
    completed = stopped = 0
    for text in bodies:
        frames = parse_sse(text)
        kinds = names(frames)
        assert kinds[0] == "meta" and kinds[-1] == "done", kinds
        if kinds[-2] == "error":
            assert frames[-2][1]["code"] == "CAP_REACHED", frames[-2]
            assert frames[-1][1]["stopped"] == "CAP_REACHED"
            stopped += 1
        else:
            assert "error" not in kinds and frames[-1][1]["usage"]["output_tokens"] in (800, 4_000)
            completed += 1
    assert completed + stopped == 50 and completed > 0 and stopped > 0
    events = db.execute("SELECT outcome, sell_nanos FROM usage_events").fetchall()
    assert sorted({e["outcome"] for e in events}) == ["ok", "stopped"]
    total = sum(e["sell_nanos"] for e in events)
    rollup = db.execute("SELECT spent_nanos, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"spent_nanos": total, "reserved_nanos": 0}
    assert total <= 5 * CENT
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    assert_ledger_balances(db, calls=50)


def test_a_key_revoked_mid_stream_stops_it_within_a_step(client, db, make_key, upstreams, configure):
    configure(LEASE_STEP_TOKENS="32")
    key = make_key()
    upstreams.script("openai", deltas=["abcdefgh"] * 400, output_tokens=3_200, chunk_delay_s=0.01)
    received = 0
    at_revocation = None
    frames: list[tuple[str, dict]] = []
    with client.stream("POST", "gateway-stream", json=stream_call(), headers=key.auth) as response:
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            if not block:
                continue
            [frame] = parse_sse("\n".join(block) + "\n\n")
            block = []
            frames.append(frame)
            if frame[0] == "delta":
                received += len(frame[1]["text"])
            if at_revocation is None and received >= 200:
                db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.key_id,))
                at_revocation = received
    assert at_revocation is not None
    assert names(frames)[-2:] == ["error", "done"]
    assert frames[-2][1]["code"] == "KEY_REVOKED"
    # Within a step: the step out when the key was revoked, and the one refused after it.
    assert received - at_revocation <= 2 * 32 + 8, (received, at_revocation)
    assert received < 3_200
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1)
    event = db.execute("SELECT outcome, stopped_code FROM usage_events").fetchone()
    assert event == {"outcome": "stopped", "stopped_code": "KEY_REVOKED"}
    assert_ledger_balances(db, calls=1)


def test_a_quiet_stream_whose_key_is_revoked_stops_at_its_keep_alive(
    client, db, make_key, upstreams, configure, monkeypatch
):
    from shared.gateway import leases

    monkeypatch.setattr(leases, "KEEP_ALIVE_EVERY_S", 0.2)
    configure(STREAM_PING_S="60")
    key = make_key()
    upstreams.script("openai", deltas=["a ", "b "], chunk_delay_s=5)  # says nothing for 5 s
    with client.stream("POST", "gateway-stream", json=stream_call(), headers=key.auth) as response:
        db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.key_id,))
        frames = parse_sse(response.read().decode())
    assert names(frames) == ["meta", "error", "done"]
    assert frames[1][1]["code"] == "KEY_REVOKED"
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1)
    assert_ledger_balances(db, calls=1)


def test_a_stream_that_cannot_afford_its_first_step_starts_clamped(client, db, make_key, upstreams):
    """Opus against a cent: 122 output tokens fit beside the prompt, not a step of 256. The
    stream is admitted asking the provider for 122, and says so in its header and meta frame."""
    key = make_key(customer={"monthly_cap_cents": 1})
    payload = stream_call("claude-opus-4-1-20250805", provider="anthropic")
    price = pricing.lookup("anthropic", "claude-opus-4-1-20250805")
    assert price is not None
    affordable = (CENT - prompt_bound(payload)[1]) // price.output  # 122 beside this prompt
    assert 16 <= affordable < 256
    response = client.post("gateway-stream", json=payload, headers=key.auth)
    assert response.status_code == 200
    assert response.headers["x-kaixu-max-tokens"] == str(affordable)
    frames = parse_sse(response.text)
    assert frames[0][0] == "meta" and frames[0][1]["max_tokens_clamped_to"] == affordable
    assert names(frames)[-1] == "done"
    assert upstreams.last_request("anthropic").body["max_tokens"] == affordable
    assert db.execute("SELECT clamped_to FROM usage_events").fetchone() == {"clamped_to": affordable}


def test_a_stream_on_a_model_that_reasons_unseen_reserves_all_its_max_tokens(client, db, make_key, upstreams):
    key = make_key()
    upstreams.script("openai", chunk_delay_s=0.3)
    with client.stream("POST", "gateway-stream", json=stream_call("o3", 5_000), headers=key.auth) as response:
        held = wait_for(lambda: db.execute("SELECT leased_tokens FROM reservations").fetchone())
        response.read()
    assert held == {"leased_tokens": 5_000}


def test_a_stream_asking_for_reasoning_reserves_all_its_max_tokens(client, db, make_key, upstreams):
    key = make_key()
    upstreams.script("anthropic", chunk_delay_s=0.3)
    with client.stream(  # the OpenAI format asks for reasoning (the gateway's own takes no such field)
        "POST",
        "openai/v1/chat/completions",
        json={
            "model": "anthropic/claude-sonnet-4-5",
            "messages": [{"role": "user", "content": "Think first."}],
            "max_tokens": 5_000,
            "reasoning_effort": "low",
            "stream": True,
        },
        headers=key.auth,
    ) as response:
        held = wait_for(lambda: db.execute("SELECT leased_tokens FROM reservations").fetchone())
        response.read()
    assert held == {"leased_tokens": 5_000}
