"""The demo provider through the real server, as the dev server runs it: every way in answers
with the demo model, and everything a real provider has applies to it (metering, billing,
monitor rows, invoices, caps, rate limits, seats, allowlists). Where the demo is not enabled
(production settings, AWS Lambda) the same server refuses it like a provider without a key.

The demo model and customer are seeded by the dev server's own seeding (``shared.host.demo``).
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from shared import money
from shared.host import demo
from shared.providers.demo_model import answer, count_tokens
from tests.support.admin import ADMIN_PASSWORD
from tests.support.database import IssuedKey, wait_for
from tests.support.devserver import seed_demo
from tests.support.sse import parse_sse

MODEL = f"{demo.PROVIDER}/{demo.MODEL}"
INPUT_NANOS, OUTPUT_NANOS = 20_000, 200_000  # demo.PRICES: $20 / $200 per million tokens
HELLO = [{"role": "user", "content": "Hello"}]


def body(**changes: object) -> dict:
    return {"provider": "demo", "model": demo.MODEL, "messages": HELLO, "max_tokens": 256, **changes}


def cost(input_tokens: int, output_tokens: int) -> int:
    return input_tokens * INPUT_NANOS + output_tokens * OUTPUT_NANOS


@pytest.fixture
def demo_on(configure, server, monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    configure(
        KAIXU_ENV="development", KAIXU_DEMO="1", KAIXU_DEMO_WORD_DELAY_S="0", ADMIN_PASSWORD=ADMIN_PASSWORD
    )


@pytest.fixture
def seeded(demo_on, db) -> IssuedKey:
    """The dev server's seeding: the demo model, the demo customer and its key."""
    made = seed_demo()
    key_id = db.execute("SELECT id FROM api_keys WHERE label = %s", (demo.KEY_LABEL,)).fetchone()["id"]
    assert made.model_added and made.secret
    return IssuedKey(made.customer_id, key_id, made.secret)


def test_seeding_adds_only_what_is_missing_and_audits_it(seeded, db):
    again = seed_demo()
    assert (again.model_added, again.customer_id, again.secret) == (False, seeded.customer_id, None)
    customer = db.execute("SELECT email FROM customers").fetchall()
    assert customer == [{"email": demo.EMAIL}]
    keys = db.execute("SELECT kind, role, label FROM api_keys ORDER BY id").fetchall()
    assert keys == [
        {"kind": "master", "role": "owner", "label": "master"},
        {"kind": "sub", "role": "caller", "label": "demo"},
    ]
    price = db.execute(
        "SELECT p.input_nanos, p.output_nanos, m.max_output_tokens FROM model_prices p "
        "JOIN models m ON m.id = p.model_id WHERE m.provider = 'demo'"
    ).fetchall()
    assert price == [{"input_nanos": INPUT_NANOS, "output_nanos": OUTPUT_NANOS, "max_output_tokens": 1024}]
    actions = [r["action"] for r in db.execute("SELECT action, actor FROM audit_events ORDER BY id")]
    assert actions == ["model.create", "customer.create", "key.create"]
    assert {r["actor"] for r in db.execute("SELECT actor FROM audit_events")} == {"devserver"}


def test_chat_answers_deterministically_and_bills_words_at_the_demo_price(client, db, seeded):
    first = client.post("gateway-chat", json=body(), headers=seeded.auth)
    second = client.post("gateway-chat", json=body(), headers=seeded.auth)
    assert first.status_code == second.status_code == 200, first.text
    reply = first.json()
    assert reply["output_text"] == second.json()["output_text"] == answer(demo.MODEL, "Hello")
    words = count_tokens(reply["output_text"])
    nanos = cost(1, words)
    assert reply["usage"] == {"input_tokens": 1, "output_tokens": words, "cost_cents": money.cents(nanos)}
    assert reply["usage"]["cost_cents"] >= 1  # a visible price: the money moves on one call
    events = db.execute("SELECT * FROM usage_events ORDER BY id").fetchall()
    assert [(e["provider"], e["model"], e["cost_nanos"], e["outcome"], e["estimated"]) for e in events] == [
        ("demo", demo.MODEL, nanos, "ok", False)
    ] * 2
    rollup = db.execute("SELECT spent_nanos, reserved_nanos, calls FROM monthly_usage").fetchone()
    assert rollup == {"spent_nanos": 2 * nanos, "reserved_nanos": 0, "calls": 2}
    monitor = wait_for(
        lambda: db.execute(
            "SELECT function_name, provider, model, status FROM gateway_events WHERE provider = 'demo'"
        ).fetchall()
    )
    assert (
        monitor
        == [{"function_name": "gateway-chat", "provider": "demo", "model": demo.MODEL, "status": 200}] * 2
    )


def test_stream_sends_a_delta_per_word_then_done(client, db, seeded):
    response = client.post("gateway-stream", json=body(), headers=seeded.auth)
    assert response.status_code == 200
    frames = parse_sse(response.text)
    deltas = [data["text"] for name, data in frames if name == "delta"]
    assert frames[0][0] == "meta" and frames[0][1]["provider"] == "demo" and frames[-1][0] == "done"
    assert "".join(deltas) == answer(demo.MODEL, "Hello") and len(deltas) == count_tokens("".join(deltas))
    assert deltas[:3] == ["Hello!", " I", " am"]
    done = frames[-1][1]
    assert done["usage"] == {"input_tokens": 1, "output_tokens": len(deltas), "cost_cents": 1}
    assert done["month"]["spent_cents"] == 1
    event = db.execute("SELECT cost_nanos, output_tokens FROM usage_events").fetchone()
    assert event == {"cost_nanos": cost(1, len(deltas)), "output_tokens": len(deltas)}


def test_max_tokens_cuts_the_answer_as_a_model_would(client, seeded):
    reply = client.post("gateway-chat", json=body(max_tokens=3), headers=seeded.auth).json()
    assert reply["output_text"] == "Hello! I am" and reply["usage"]["output_tokens"] == 3


def test_the_openai_sdk_calls_it_streamed_or_not(server, db, seeded):
    sdk = openai.OpenAI(
        base_url=f"{server}/.netlify/functions/openai/v1", api_key=seeded.secret, max_retries=0
    )
    assert MODEL in [m.id for m in sdk.models.list().data]
    reply = sdk.chat.completions.create(model=demo.MODEL, messages=HELLO, max_tokens=100)
    text = reply.choices[0].message.content
    assert text == answer(demo.MODEL, "Hello") and reply.model == MODEL
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, count_tokens(text))
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=100, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text and chunks[-1].usage.completion_tokens == count_tokens(text)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=10, response_format={"type": "json_object"}
        )
    assert "response_format" in str(refused.value)
    assert db.execute("SELECT count(*) AS n FROM usage_events WHERE provider = 'demo'").fetchone()["n"] == 2


def test_the_anthropic_sdk_calls_it_streamed_or_not(server, db, seeded):
    sdk = anthropic.Anthropic(
        base_url=f"{server}/.netlify/functions/anthropic", api_key=seeded.secret, max_retries=0
    )
    reply = sdk.messages.create(model=demo.MODEL, system="Be brief.", messages=HELLO, max_tokens=100)
    text = "".join(block.text for block in reply.content)
    assert text == answer(demo.MODEL, "Hello") and reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (3, count_tokens(text))
    with sdk.messages.stream(model=MODEL, messages=HELLO, max_tokens=4) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "Hello! I am kaixu-demo-1," and final.stop_reason == "max_tokens"
    events = db.execute("SELECT output_tokens, cost_nanos FROM usage_events ORDER BY id").fetchall()
    assert events == [
        {"output_tokens": count_tokens(text), "cost_nanos": cost(3, count_tokens(text))},
        {"output_tokens": 4, "cost_nanos": cost(1, 4)},
    ]


def test_caps_rate_limits_seats_and_allowlists_apply(client, db, seeded, make_key):
    capped = make_key(customer={"monthly_cap_cents": 0})
    refused = client.post("gateway-chat", json=body(), headers=capped.auth)
    assert refused.status_code == 402 and refused.json()["code"] == "CAP_REACHED"
    paced = make_key(customer_id=seeded.customer_id, rpm_limit=1)
    assert client.post("gateway-chat", json=body(), headers=paced.auth).status_code == 200
    limited = client.post("gateway-chat", json=body(), headers=paced.auth)
    assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
    seats = make_key(customer_id=seeded.customer_id, max_devices=1)
    phone = client.post("gateway-chat", json=body(), headers={**seats.auth, "x-kaixu-install-id": "phone"})
    tablet = client.post("gateway-chat", json=body(), headers={**seats.auth, "x-kaixu-install-id": "tablet"})
    assert phone.status_code == 200 and tablet.status_code == 403
    openai_only = make_key(customer_id=seeded.customer_id, allowed_providers=["openai"])
    blocked = client.post("gateway-chat", json=body(), headers=openai_only.auth)
    assert blocked.status_code == 403 and blocked.json()["code"] == "PROVIDER_NOT_ALLOWED"
    demo_only = make_key(customer_id=seeded.customer_id, allowed_providers=["demo"])
    assert client.post("gateway-chat", json=body(), headers=demo_only.auth).status_code == 200
    billed = db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"]
    assert billed == 3  # the refused calls cost nothing
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


def test_admin_api_sees_it_like_any_provider(client, seeded):
    assert client.post("gateway-chat", json=body(), headers=seeded.auth).status_code == 200
    admin = {"x-admin-password": ADMIN_PASSWORD}
    models = client.get("admin-models", params={"provider": "demo"}, headers=admin).json()["items"]
    assert [(m["model"], m["configured"], m["price"]["output"]) for m in models] == [
        (demo.MODEL, True, "200")
    ]
    usage = client.get(
        "admin-usage", params={"customer_id": seeded.customer_id, "provider": "demo"}, headers=admin
    )
    assert [row["model"] for row in usage.json()["items"]] == [demo.MODEL]
    policy = client.patch(
        "admin-customers",
        params={"id": seeded.customer_id},
        json={"allowed_providers": ["demo"]},
        headers=admin,
    )
    assert policy.status_code == 200, policy.text
    preview = client.get(
        "admin-invoices", params={"customer_id": seeded.customer_id, "preview": "1"}, headers=admin
    ).json()["item"]["snapshot"]
    (line,) = preview["usage"]
    assert (line["provider"], line["model"], line["calls"], line["sell_cents"]) == ("demo", demo.MODEL, 1, 1)


def test_setting_a_real_provider_key_changes_nothing_about_it(client, seeded, upstreams):
    assert client.post("gateway-chat", json=body(), headers=seeded.auth).json()["output_text"] == answer(
        demo.MODEL, "Hello"
    )
    assert upstreams.requests == []  # nothing left the process


@pytest.mark.parametrize(
    "settings",
    [{"KAIXU_ENV": "production"}, {"AWS_LAMBDA_FUNCTION_NAME": "kaixu-gateway-chat"}],
    ids=["production settings", "on AWS Lambda"],
)
def test_it_cannot_be_enabled_outside_the_dev_server(client, configure, seeded, settings):
    """The same ASGI app, the same database with the demo model priced, KAIXU_DEMO=1 still set:
    in production settings, or on Lambda, a demo call is refused before ADMIT, like a provider
    without a key, and nothing lists it as callable."""
    configure(**settings)
    for way in ("gateway-chat", "gateway-stream"):
        refused = client.post(way, json=body(), headers=seeded.auth)
        assert refused.status_code == 503 and refused.json()["code"] == "PROVIDER_NOT_CONFIGURED", (
            refused.text
        )
    compatible = client.post(
        "openai/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, headers=seeded.auth
    )
    assert compatible.status_code == 503
    listed = client.get("openai/v1/models", headers=seeded.auth).json()["data"]
    assert MODEL not in [m["id"] for m in listed]
    models = client.get(
        "admin-models", params={"provider": "demo"}, headers={"x-admin-password": ADMIN_PASSWORD}
    )
    assert [m["configured"] for m in models.json()["items"]] == [False]


def test_without_the_seed_the_demo_model_is_unpriced(client, demo_on, make_key):
    refused = client.post("gateway-chat", json=body(), headers=make_key().auth)
    assert refused.status_code == 409 and refused.json()["code"] == "UNPRICED_MODEL"


def test_a_client_that_hangs_up_mid_stream_is_billed_the_models_own_usage(server, db, seeded, configure):
    """As with a real provider, the gateway reads on after the hang-up (``STREAM_USAGE_WAIT_S``)
    and bills the usage the model reports, not an estimate."""
    configure(KAIXU_DEMO_WORD_DELAY_S="0.02")
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST", f"{server}/.netlify/functions/gateway-stream", json=body(), headers=seeded.auth
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break
    event = wait_for(lambda: db.execute("SELECT * FROM usage_events").fetchone(), timeout=15)
    words = count_tokens(answer(demo.MODEL, "Hello"))
    assert (event["outcome"], event["output_tokens"], event["estimated"]) == (
        "client_disconnect",
        words,
        False,
    )
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
