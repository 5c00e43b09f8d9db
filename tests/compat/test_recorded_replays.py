"""Recorded provider replies, replayed through every way in: the gateway's own contract and the
OpenAI- and Anthropic-compatible endpoints bill exactly the same tokens and nanos for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.calls import PROVIDER_MODELS, body

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "recorded"
REPLIES = [
    ("openai", "openai_chat.json", False),
    ("openai", "openai_stream.txt", True),
    ("anthropic", "anthropic_message.json", False),
    ("anthropic", "anthropic_message_cache.json", False),
    ("anthropic", "anthropic_stream_sonnet45.txt", True),
    ("gemini", "gemini_generate.json", False),
    ("gemini", "gemini_generate_cached.json", False),
    ("gemini", "gemini_stream.txt", True),
]
HELLO = [{"role": "user", "content": "Hello"}]


def _call(client, secret: str, way: str, provider: str, stream: bool) -> None:
    model = f"{provider}/{PROVIDER_MODELS[provider]}"
    auth = {"authorization": f"Bearer {secret}"}
    if way == "gateway":
        path, payload = ("gateway-stream" if stream else "gateway-chat"), body(provider)
    elif way == "openai":
        path = "openai/v1/chat/completions"
        payload = {"model": model, "messages": HELLO, "max_tokens": 256, "stream": stream}
    else:
        path, auth = "anthropic/v1/messages", {"x-api-key": secret}
        payload = {"model": model, "messages": HELLO, "max_tokens": 256, "stream": stream}
    response = client.post(path, json=payload, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("provider", "name", "stream"), REPLIES)
def test_every_way_in_bills_a_recorded_reply_the_same(
    client, db, make_key, upstreams, provider, name, stream
):
    upstreams.script(provider, recorded=(RECORDED / name).read_text())
    billed = {}
    for way in ("gateway", "openai", "anthropic"):
        key = make_key()
        _call(client, key.secret, way, provider, stream)
        billed[way] = db.execute(
            "SELECT input_tokens, output_tokens, cost_nanos, estimated, outcome FROM usage_events "
            "WHERE api_key_id = %s",
            (key.key_id,),
        ).fetchall()
    assert billed["gateway"][0]["outcome"] == "ok" and not billed["gateway"][0]["estimated"]
    assert billed["gateway"][0]["input_tokens"] > 0 and billed["gateway"][0]["cost_nanos"] > 0
    assert billed["openai"] == billed["gateway"] == billed["anthropic"]
