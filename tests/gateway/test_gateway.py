"""gateway-chat and gateway-stream through HTTP, against the loopback provider fakes."""

from __future__ import annotations

import httpx
import pytest

from shared import money
from shared.billing import pricing
from shared.gateway import pipeline as gateway
from shared.gateway.request import parse_request
from shared.providers import Usage
from tests.support.calls import PROVIDER_MODELS, body
from tests.support.database import wait_for
from tests.support.sse import parse_sse


def expected_cents(provider: str, input_tokens: int, output_tokens: int) -> tuple[int, int]:
    price = pricing.lookup(provider, PROVIDER_MODELS[provider])
    nanos = pricing.cost_nanos(price, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    return nanos, money.cents(nanos)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_chat_for_each_provider_meters_exactly(client, db, make_key, upstreams, provider):
    key = make_key(customer={"monthly_cap_cents": 5000}, monthly_cap_cents=700)
    upstreams.script(provider, text="Hi there, friend.", input_tokens=120_000, output_tokens=30_000)
    response = client.post("gateway-chat", json=body(provider), headers=key.auth)
    assert response.status_code == 200, response.text
    nanos, cents = expected_cents(provider, 120_000, 30_000)
    reply = response.json()
    assert reply["provider"] == provider and reply["model"] == PROVIDER_MODELS[provider]
    assert reply["output_text"] == "Hi there, friend."
    assert reply["usage"] == {"input_tokens": 120_000, "output_tokens": 30_000, "cost_cents": cents}
    assert reply["month"]["cap_cents"] == 5000 and reply["month"]["key_cap_cents"] == 700
    assert reply["month"]["spent_cents"] == cents == reply["month"]["key_spent_cents"]
    event = db.execute("SELECT * FROM usage_events").fetchone()
    assert (event["cost_nanos"], event["outcome"], event["estimated"]) == (nanos, "ok", False)
    assert (event["input_tokens"], event["output_tokens"]) == (120_000, 30_000)
    rollup = db.execute("SELECT * FROM monthly_usage").fetchone()
    assert (rollup["spent_nanos"], rollup["reserved_nanos"], rollup["calls"]) == (nanos, 0, 1)
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_stream_frames_for_each_provider(client, db, make_key, upstreams, provider):
    key = make_key()
    upstreams.script(provider, deltas=["Hel", "lo", " world\u2028!"], input_tokens=40, output_tokens=9)
    response = client.post("gateway-stream", json=body(provider), headers=key.auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(response.text)
    names = [name for name, _ in frames]
    assert names == ["meta", "delta", "delta", "delta", "done"], frames
    meta = frames[0][1]
    assert meta == {"provider": provider, "model": PROVIDER_MODELS[provider], "month": meta["month"]}
    assert set(meta["month"]) == {"month", "cap_cents", "spent_cents", "key_cap_cents", "key_spent_cents"}
    assert "".join(data["text"] for name, data in frames if name == "delta") == "Hello world\u2028!"
    nanos, cents = expected_cents(provider, 40, 9)
    done = frames[-1][1]
    assert done["usage"] == {"input_tokens": 40, "output_tokens": 9, "cost_cents": cents}
    assert set(done) == {"usage", "month"}
    event = db.execute("SELECT cost_nanos, outcome FROM usage_events").fetchone()
    assert (event["cost_nanos"], event["outcome"]) == (nanos, "ok")
    if provider == "openai":
        assert upstreams.last_request("openai").body["stream_options"] == {"include_usage": True}


def test_stream_sends_pings_while_the_provider_is_quiet(client, make_key, upstreams, configure):
    configure(STREAM_PING_S="0.05")
    key = make_key()
    upstreams.script("openai", deltas=["a", "b"], chunk_delay_s=0.25)
    frames = parse_sse(client.post("gateway-stream", json=body(), headers=key.auth).text)
    names = [name for name, _ in frames]
    assert "ping" in names and names[0] == "meta" and names[-1] == "done"
    assert all(isinstance(data["t"], int) for name, data in frames if name == "ping")


def test_unpriced_model_is_refused_before_the_upstream(client, make_key, upstreams):
    key = make_key()
    response = client.post("gateway-chat", json=body(model="gpt-4o-mini-turbo-ultra"), headers=key.auth)
    assert response.status_code == 409 and response.json()["code"] == "UNPRICED_MODEL"
    assert upstreams.requests == []


def test_a_prefix_is_not_a_price(client, make_key, upstreams):
    response = client.post("gateway-chat", json=body(model="gpt-4o-m"), headers=make_key().auth)
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("status", "code", "gateway_status"),
    [
        (401, "UPSTREAM_AUTH", 502),
        (403, "UPSTREAM_AUTH", 502),
        (429, "UPSTREAM_RATE_LIMITED", 429),
        (500, "UPSTREAM_ERROR", 502),
        (529, "UPSTREAM_ERROR", 502),
    ],
)
def test_upstream_failures_bill_nothing_and_release_the_reservation(
    client, db, make_key, upstreams, status, code, gateway_status
):
    key = make_key()
    upstreams.script("anthropic", status=status, headers={"retry-after": "7"} if status == 429 else {})
    response = client.post("gateway-chat", json=body("anthropic"), headers=key.auth)
    assert response.status_code == gateway_status
    error = response.json()
    assert error["code"] == code and error["request_id"] and error["provider_status"] == status
    assert upstreams.keys["anthropic"] not in response.text
    if status == 429:
        assert response.headers["retry-after"] == "7"
    event = db.execute("SELECT outcome, cost_nanos FROM usage_events").fetchone()
    assert (event["outcome"], event["cost_nanos"]) == ("upstream_error", 0)
    assert db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"] == 0


def test_upstream_timeout_is_504(client, db, make_key, upstreams, configure):
    configure(UPSTREAM_TIMEOUT_S="0.3")
    upstreams.script("openai", delay_s=1.0)
    response = client.post("gateway-chat", json=body(), headers=make_key().auth)
    assert response.status_code == 504 and response.json()["code"] == "UPSTREAM_TIMEOUT"
    assert db.execute("SELECT outcome FROM usage_events").fetchone()["outcome"] == "upstream_error"


def test_provider_without_credentials_is_503(client, make_key, upstreams, configure):
    configure(GEMINI_API_KEY="")
    response = client.post("gateway-chat", json=body("gemini"), headers=make_key().auth)
    assert response.status_code == 503 and response.json()["code"] == "PROVIDER_NOT_CONFIGURED"


def test_stream_upstream_refusal_is_a_plain_http_error(client, db, make_key, upstreams):
    upstreams.script("openai", status=429, headers={"retry-after": "3"})
    response = client.post("gateway-stream", json=body(), headers=make_key().auth)
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert db.execute("SELECT outcome FROM usage_events").fetchone()["outcome"] == "upstream_error"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_midstream_error_sends_an_error_frame_and_bills_what_streamed(
    client, db, make_key, upstreams, provider
):
    upstreams.script(provider, deltas=["one ", "two ", "three"], error_after=2)
    frames = parse_sse(client.post("gateway-stream", json=body(provider), headers=make_key().auth).text)
    assert [name for name, _ in frames] == ["meta", "delta", "delta", "error"]
    assert frames[-1][1]["code"] == "UPSTREAM_STREAM_ERROR" and frames[-1][1]["error"]
    event = db.execute("SELECT outcome, estimated, output_tokens, cost_nanos FROM usage_events").fetchone()
    assert event["outcome"] == "stream_error" and event["estimated"] is True
    assert event["output_tokens"] >= 2 and event["cost_nanos"] > 0
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


def _leave_after_three_deltas(server: str, key, provider: str = "anthropic") -> None:
    with (
        httpx.Client(base_url=f"{server}/.netlify/functions/", timeout=10) as http,
        http.stream("POST", "gateway-stream", json=body(provider), headers=key.auth) as response,
    ):
        seen = 0
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                seen += 1
                if seen == 3:
                    break


def test_after_a_client_hangs_up_the_rest_is_read_and_billed_from_the_providers_usage(
    server, db, make_key, upstreams
):
    """The provider bills the whole reply (hidden reasoning included): so do we, from its figures."""
    key = make_key()
    upstreams.script(
        "anthropic", deltas=[f"word{i} " for i in range(40)], chunk_delay_s=0.02, output_tokens=40
    )
    _leave_after_three_deltas(server, key)
    rows = wait_for(lambda: db.execute("SELECT * FROM usage_events").fetchall(), timeout=10)
    assert [(r["outcome"], r["estimated"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("client_disconnect", False, 12, 40)
    ]
    assert upstreams.streams_cancelled == 0  # read to its end, so the provider's usage arrived
    assert db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"] == 0


def test_a_provider_too_slow_after_a_hang_up_is_cut_and_billed_the_prompt_bound(
    server, db, make_key, upstreams, configure
):
    configure(STREAM_USAGE_WAIT_S="0.3")
    key = make_key()
    # OpenAI reports usage only at the end of a stream: a call cut before it has no figures.
    upstreams.script("openai", deltas=[f"word{i} " for i in range(40)], chunk_delay_s=0.2)
    _leave_after_three_deltas(server, key, "openai")
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1, timeout=5)
    rows = wait_for(lambda: db.execute("SELECT * FROM usage_events").fetchall())
    assert len(rows) == 1
    event = rows[0]
    request = parse_request(body("openai"))
    bound = gateway.prompt_token_bound(request, pricing.lookup("openai", request.model))
    assert event["outcome"] == "client_disconnect" and event["estimated"] is True
    assert event["input_tokens"] == bound > 12  # never less than the provider read
    assert event["output_tokens"] >= 3 and event["cost_nanos"] > 0
    assert db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}, "provider"),
        ({**body(), "provider": "mistral"}, "provider"),
        ({**body(), "provider": 7}, "provider"),
        ({**body(), "model": ""}, "model"),
        ({**body(), "model": ["gpt"]}, "model"),
        ({**body(), "messages": []}, "messages"),
        ({**body(), "messages": "hello"}, "messages"),
        ({**body(), "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({**body(), "messages": [{"role": "user"}]}, "messages.0.content"),
        (
            {**body(), "messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]},
            "messages.0.content",
        ),
        ({**body(), "max_tokens": 0}, "max_tokens"),
        ({**body(), "max_tokens": "many"}, "max_tokens"),
        ({**body(), "max_tokens": 2.5}, "max_tokens"),
        ({**body(), "max_tokens": 10_000_000}, "max_tokens"),
        ({**body(), "temperature": 3}, "temperature"),
        ({**body(), "temperature": "hot"}, "temperature"),
        ([1, 2, 3], "body"),
    ],
)
@pytest.mark.parametrize("endpoint", ["gateway-chat", "gateway-stream"])
def test_bad_input_is_400_naming_the_field(client, make_key, upstreams, payload, field, endpoint):
    response = client.post(endpoint, json=payload, headers=make_key().auth)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["field"].startswith(field) and error["code"] == "INVALID_INPUT" and error["request_id"]
    assert upstreams.requests == []


def test_broken_json_huge_bodies_and_bad_headers(client, make_key, upstreams):
    key = make_key()
    assert client.post("gateway-chat", content=b'{"provider":', headers=key.auth).status_code == 400
    huge = {**body(), "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 10)}]}
    assert client.post("gateway-chat", json=huge, headers=key.auth).status_code == 413
    long_id = {**key.auth, "x-kaixu-install-id": "d" * 500}
    response = client.post("gateway-chat", json=body(), headers=long_id)
    assert response.status_code == 400 and response.json()["field"] == "x-kaixu-install-id"
    assert client.post("gateway-chat", json=body()).status_code == 401
    assert client.post("gateway-chat", json=body(), headers={"authorization": "Basic abc"}).status_code == 401
    garbage = {"authorization": "Bearer kx_live_" + "A" * 43}
    assert client.post("gateway-chat", json=body(), headers=garbage).json()["code"] == "INVALID_KEY"
    assert client.get("gateway-chat").status_code == 405
    assert upstreams.requests == []


def test_revoked_key_disabled_customer_and_allowlists(client, db, make_key, upstreams):
    revoked = make_key()
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (revoked.key_id,))
    assert client.post("gateway-chat", json=body(), headers=revoked.auth).json()["code"] == "KEY_REVOKED"

    disabled = make_key(customer={"is_active": False})
    response = client.post("gateway-chat", json=body(), headers=disabled.auth)
    assert (response.status_code, response.json()["code"]) == (403, "CUSTOMER_DISABLED")

    limited = make_key(customer={"allowed_providers": ["anthropic"]})
    response = client.post("gateway-chat", json=body("openai"), headers=limited.auth)
    assert (response.status_code, response.json()["code"]) == (403, "PROVIDER_NOT_ALLOWED")
    assert client.post("gateway-chat", json=body("anthropic"), headers=limited.auth).status_code == 200

    # A key's list replaces the customer's.
    widened = make_key(limited.customer_id, allowed_providers=["openai"])
    assert client.post("gateway-chat", json=body("openai"), headers=widened.auth).status_code == 200

    models = make_key(allowed_models={"openai": ["gpt-4o"], "gemini": ["*"]})
    response = client.post("gateway-chat", json=body("openai"), headers=models.auth)
    assert (response.status_code, response.json()["code"]) == (403, "MODEL_NOT_ALLOWED")
    assert client.post("gateway-chat", json=body("gemini"), headers=models.auth).status_code == 200
    assert client.post("gateway-chat", json=body("anthropic"), headers=models.auth).status_code == 403
    assert len(upstreams.requests) == 3


def test_device_seats_revocation_and_required_install_id(client, db, make_key, upstreams):
    key = make_key(max_devices=1)
    assert client.post("gateway-chat", json=body(), headers=key.auth).json()["code"] == "INSTALL_ID_REQUIRED"
    first = {**key.auth, "x-kaixu-install-id": "phone-1", "user-agent": "KaixuApp/1.0"}
    assert client.post("gateway-chat", json=body(), headers=first).status_code == 200
    second = {**key.auth, "x-kaixu-install-id": "phone-2"}
    response = client.post("gateway-chat", json=body(), headers=second)
    assert (response.status_code, response.json()["code"]) == (403, "DEVICE_LIMIT")
    device = db.execute("SELECT * FROM key_devices").fetchone()
    assert (device["install_id"], device["user_agent"]) == ("phone-1", "KaixuApp/1.0")
    db.execute("UPDATE key_devices SET revoked_at = now() WHERE install_id = 'phone-1'")
    response = client.post("gateway-chat", json=body(), headers=first)
    assert (response.status_code, response.json()["code"]) == (403, "DEVICE_REVOKED")
    # The revoked device frees its seat.
    assert client.post("gateway-chat", json=body(), headers=second).status_code == 200


def test_rate_limit_headers_and_refusals_do_not_count(client, db, make_key, upstreams):
    key = make_key(rpm_limit=2)
    statuses = [client.post("gateway-chat", json=body(), headers=key.auth) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    limited = statuses[2]
    assert limited.json()["code"] == "RATE_LIMITED"
    assert limited.headers["ratelimit-limit"] == "2" and limited.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["ratelimit-reset"] == limited.headers["retry-after"]
    # Slide the window: the two admissions happened 61 s ago; refused calls took no slot.
    db.execute("UPDATE rate_limit_slots SET admitted_at = admitted_at - interval '61 seconds'")
    assert [client.post("gateway-chat", json=body(), headers=key.auth).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    # The ring wrapped: the new admissions overwrote the two old slots.
    assert db.execute("SELECT count(*) AS n FROM rate_limit_slots").fetchone()["n"] == 2


def test_rate_limit_per_day(client, db, make_key, upstreams):
    key = make_key(rpd_limit=1, rpm_limit=100)
    assert client.post("gateway-chat", json=body(), headers=key.auth).status_code == 200
    refused = client.post("gateway-chat", json=body(), headers=key.auth)
    assert refused.status_code == 429 and refused.json()["scope"] == "day"
    assert int(refused.headers["retry-after"]) > 3600


def test_cap_refusal_says_scope_and_month(client, db, make_key, upstreams):
    key = make_key(customer={"monthly_cap_cents": 0})
    response = client.post("gateway-chat", json=body(), headers=key.auth)
    assert response.status_code == 402
    error = response.json()
    assert error["code"] == "CAP_REACHED" and error["scope"] == "customer"
    assert error["month"]["cap_cents"] == 0 and len(error["month"]["month"]) == 7
    key_capped = make_key(monthly_cap_cents=0)
    assert client.post("gateway-chat", json=body(), headers=key_capped.auth).json()["scope"] == "key"
    assert upstreams.requests == []


def test_topups_raise_the_customer_cap(client, db, make_key, upstreams):
    key = make_key(customer={"monthly_cap_cents": 0})
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, topup_cents) "
        "VALUES (%s, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), 100)",
        (key.customer_id,),
    )
    response = client.post("gateway-chat", json=body(), headers=key.auth)
    assert response.status_code == 200 and response.json()["month"]["cap_cents"] == 100


def test_every_gateway_call_writes_one_monitor_row(client, db, make_key, upstreams):
    key = make_key()
    headers = {**key.auth, "x-kaixu-app": "notes", "x-kaixu-build": "7", "x-kaixu-request-id": "gw-ok"}
    assert client.post("gateway-chat", json=body(), headers=headers).status_code == 200
    refused = {**headers, "x-kaixu-request-id": "gw-bad", "authorization": "Bearer kx_live_nope"}
    assert client.post("gateway-chat", json=body(), headers=refused).status_code == 401
    for request_id, status in (("gw-ok", 200), ("gw-bad", 401)):
        rows = wait_for(
            lambda rid=request_id: db.execute(
                "SELECT * FROM gateway_events WHERE request_id = %s", (rid,)
            ).fetchall()
        )
        assert len(rows) == 1
        assert (rows[0]["function_name"], rows[0]["status"], rows[0]["app"]) == (
            "gateway-chat",
            status,
            "notes",
        )
    ok = db.execute("SELECT * FROM gateway_events WHERE request_id = 'gw-ok'").fetchone()
    assert (ok["provider"], ok["model"], ok["customer_id"]) == ("openai", "gpt-4o-mini", key.customer_id)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_finished_stream_leaves_its_upstream_connection_reusable(client, make_key, upstreams, provider):
    key = make_key()
    for _ in range(3):
        assert "event: done" in client.post("gateway-stream", json=body(provider), headers=key.auth).text
    ports = {request.client_port for request in upstreams.requests}
    assert len(ports) == 1, ports  # one keep-alive connection served all three streams


def test_provider_cookies_are_never_kept_or_sent_back(client, make_key, upstreams):
    key = make_key()
    upstreams.script("openai", headers={"set-cookie": "__cf_bm=tracking; Path=/; HttpOnly"})
    for _ in range(2):
        assert client.post("gateway-chat", json=body(), headers=key.auth).status_code == 200
    assert all("cookie" not in request.headers for request in upstreams.requests)
