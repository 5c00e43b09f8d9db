"""Calls clamped to what the month affords, not refused: a call whose max_tokens does not fit
the cap is admitted with the most output that does (never below CLAMP_MIN_TOKENS), the
provider is asked for no more, and the answer says so. Through real HTTP, against the real
database and the loopback provider fakes."""

from __future__ import annotations

import pytest

from shared import config
from shared.billing import pricing
from tests.support.ledger import assert_ledger_balances, prompt_bound

OPUS = "claude-opus-4-1-20250805"  # 15 / 75 USD per million tokens: among the dearest
CENT = 10_000_000


def opus_call(**changes: object) -> dict:
    return {
        "provider": "anthropic",
        "model": OPUS,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 8192,
        **changes,
    }


def affordable(payload: dict, room: int) -> int:
    """The most output tokens whose worst case fits ``room`` nanos (selling at cost)."""
    price = pricing.lookup("anthropic", OPUS)
    assert price is not None
    tokens, prompt_nanos = prompt_bound(payload)
    output = (room - prompt_nanos) // price.output
    assert (
        pricing.worst_case_nanos(price, tokens, output)
        <= room
        < pricing.worst_case_nanos(price, tokens, output + 1)
    )
    return output


def test_a_cent_of_headroom_makes_many_small_calls_of_an_expensive_model(client, db, make_key, upstreams):
    """The worst case of 8,192 output tokens of Opus is 61 cents: once refused outright against
    a one-cent cap, now each call is clamped to what is left, until too little is."""
    key = make_key(customer={"monthly_cap_cents": 1})
    upstreams.script("anthropic", text="Hi!", input_tokens=12, output_tokens=10)
    price = pricing.lookup("anthropic", OPUS)
    assert price is not None
    per_call = 12 * price.input + 10 * price.output  # 930,000 nanos
    spent, answered = 0, 0
    while True:
        response = client.post("gateway-chat", json=opus_call(), headers=key.auth)
        if response.status_code != 200:
            break
        answered += 1
        expected = affordable(opus_call(), CENT - spent)
        assert response.json()["max_tokens_clamped_to"] == expected
        assert response.headers["x-kaixu-max-tokens"] == str(expected)
        assert upstreams.last_request("anthropic").body["max_tokens"] == expected  # no more was asked
        assert response.json()["output_text"] == "Hi!"
        spent += per_call
    assert response.status_code == 402, response.text
    assert (response.json()["code"], response.json()["scope"]) == ("CAP_REACHED", "customer")
    assert "x-kaixu-max-tokens" not in response.headers
    # The minimum (16 tokens and the prompt) stopped fitting after nine calls of 930,000 nanos.
    assert answered == 9 and spent == 9 * per_call
    assert CENT - spent < prompt_bound(opus_call())[1] + config.settings().clamp_min_tokens * price.output
    events = db.execute("SELECT sell_nanos, clamped_to, outcome FROM usage_events ORDER BY id").fetchall()
    assert sum(e["sell_nanos"] for e in events) == spent <= CENT
    assert all(e["clamped_to"] is not None and e["outcome"] == "ok" for e in events)
    rollup = db.execute("SELECT spent_nanos, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"spent_nanos": spent, "reserved_nanos": 0}
    assert_ledger_balances(db, calls=9)
    summaries = db.execute(
        "SELECT summary, code, status FROM gateway_events WHERE function_name = 'gateway-chat' "
        "AND status = 200 ORDER BY id"
    ).fetchall()
    assert len(summaries) == 9
    assert summaries[0]["summary"].startswith("max_tokens clamped to 124")
    assert summaries[0]["code"] is None


def test_a_call_that_fits_is_not_clamped(client, db, make_key, upstreams):
    key = make_key(customer={"monthly_cap_cents": 100})
    response = client.post("gateway-chat", json=opus_call(max_tokens=100), headers=key.auth)
    assert response.status_code == 200
    assert "max_tokens_clamped_to" not in response.json()
    assert "x-kaixu-max-tokens" not in response.headers
    assert upstreams.last_request("anthropic").body["max_tokens"] == 100
    assert db.execute("SELECT clamped_to FROM usage_events").fetchone() == {"clamped_to": None}


def test_the_key_cap_clamps_and_refuses_with_its_scope(client, db, make_key, upstreams):
    key = make_key(customer={"monthly_cap_cents": 500}, monthly_cap_cents=1)
    upstreams.script(
        "anthropic", input_tokens=12, output_tokens=110
    )  # 8.43 of its cent: the rest is too little
    first = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert first.status_code == 200
    assert first.json()["max_tokens_clamped_to"] == affordable(opus_call(), CENT)
    second = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert second.status_code == 402
    assert (second.json()["code"], second.json()["scope"]) == ("CAP_REACHED", "key")
    assert_ledger_balances(db, calls=1)


def test_prepaid_credit_clamps_and_then_refuses_with_no_credit(client, db, make_key, upstreams):
    plan = db.execute(
        "INSERT INTO plans (name, monthly_cap_cents, prepaid, included_credit_cents) "
        "VALUES ('prepaid', 100000, true, 1) RETURNING id"
    ).fetchone()["id"]
    key = make_key(customer={"plan_id": plan, "monthly_cap_cents": 100000})
    upstreams.script("anthropic", input_tokens=12, output_tokens=110)
    first = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert first.status_code == 200
    assert first.json()["max_tokens_clamped_to"] == affordable(opus_call(), CENT)
    second = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert second.status_code == 402 and second.json()["code"] == "NO_CREDIT"


def test_a_markup_is_clamped_to_the_exact_token(client, db, make_key, upstreams):
    """Sold at cost + 33.33 %, rounded half up: the clamp is still the largest output whose
    sell price fits, to the token (the binary search in ADMIT prices each candidate)."""
    key = make_key(customer={"monthly_cap_cents": 1})
    db.execute(
        "INSERT INTO sell_prices (customer_id, kind, markup_bp, effective_from, created_by) "
        "VALUES (%s, 'markup', 3333, now() - interval '1 minute', 'test')",
        (key.customer_id,),
    )
    response = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert response.status_code == 200, response.text
    price = pricing.lookup("anthropic", OPUS)
    assert price is not None
    tokens, _ = prompt_bound(opus_call())

    def sells(output: int) -> int:
        return pricing.marked_up(pricing.worst_case_nanos(price, tokens, output), 3333)

    clamped = response.json()["max_tokens_clamped_to"]
    assert sells(clamped) <= CENT < sells(clamped + 1)


def test_below_the_minimum_a_call_is_refused_as_before(client, db, make_key, upstreams, configure):
    key = make_key(customer={"monthly_cap_cents": 1})
    # A 600-byte prompt leaves less than eight Opus tokens of a cent: max_tokens 8 does not fit.
    long_prompt = opus_call(max_tokens=8, messages=[{"role": "user", "content": "x" * 600}])
    refused = client.post("gateway-chat", json=long_prompt, headers=key.auth)
    assert refused.status_code == 402
    assert (refused.json()["code"], refused.json()["scope"]) == ("CAP_REACHED", "customer")
    assert set(refused.json()) >= {"error", "code", "request_id", "month"}
    # 124 output tokens fit the cent beside the short prompt: a minimum above that refuses ...
    assert affordable(opus_call(), CENT) == 124
    configure(CLAMP_MIN_TOKENS="125")
    assert client.post("gateway-chat", json=opus_call(), headers=key.auth).status_code == 402
    # ... and a minimum at it clamps.
    configure(CLAMP_MIN_TOKENS="124")
    response = client.post("gateway-chat", json=opus_call(), headers=key.auth)
    assert response.status_code == 200 and response.json()["max_tokens_clamped_to"] == 124
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


def test_a_call_asking_for_reasoning_is_never_clamped(client, make_key, upstreams):
    """Its thinking comes out of max_tokens: a clamped call would think and never answer."""
    key = make_key(customer={"monthly_cap_cents": 1})
    openai_o3 = {
        "provider": "openai",
        "model": "o3",  # reasons unasked (hidden_reasoning in the price book)
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 8192,
    }
    response = client.post("gateway-chat", json=openai_o3, headers=key.auth)
    assert response.status_code == 402 and response.json()["code"] == "CAP_REACHED"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEASE_STEP_TOKENS", "0"),
        ("LEASE_STEP_TOKENS", "8"),
        ("LEASE_STEP_TOKENS", "lots"),
        ("CLAMP_MIN_TOKENS", "0"),
        ("CLAMP_MIN_TOKENS", "-5"),
    ],
)
def test_invalid_settings_are_refused_at_load(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    try:
        with pytest.raises(SystemExit, match=name):
            config.reload()
    finally:
        monkeypatch.undo()
        config.reload()
