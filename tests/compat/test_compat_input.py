"""Bad input to the compatible endpoints: a 4xx in the API's own error shape that names the
field, and nothing reserved, billed or written."""

from __future__ import annotations

import httpx
import pytest

OPENAI = "openai/v1/chat/completions"  # below the client's /.netlify/functions/
ANTHROPIC = "anthropic/v1/messages"
HELLO = [{"role": "user", "content": "Hi"}]
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def key(make_key, upstreams):
    return make_key()


def nothing_written(db) -> bool:
    usage = db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"]
    held = db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"]
    reserved = db.execute("SELECT coalesce(sum(reserved_nanos), 0) AS n FROM monthly_usage").fetchone()["n"]
    return (usage, held, reserved) == (0, 0, 0)


def chat(**changes):
    return {"model": "openai/gpt-4o-mini", "messages": HELLO, "max_tokens": 5, **changes}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO}, "model"),
        (chat(messages=[]), "messages"),
        (chat(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (
            chat(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]),
            "messages[0].content[0].type",
        ),
        (
            chat(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}],
                    }
                ]
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(
                messages=[
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1"}}
                        ],
                    }
                ]
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (chat(n=2), "n"),
        (chat(temperature="hot"), "temperature"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens=10**9), "max_tokens"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(tools=[{"type": "web_search"}]), "tools[0].type"),
        (chat(tool_choice={"type": "function"}), "tool_choice.function"),
        (chat(response_format={"type": "xml"}), "response_format.type"),
        (chat(service_tier="priority"), "service_tier"),  # billed above the price book's rates
        (chat(service_tier="flex"), "service_tier"),
        (chat(prediction={"type": "content", "content": "Hi"}), "prediction"),
        (chat(audio={"voice": "alloy", "format": "wav"}), "audio"),
        (chat(modalities=["text", "audio"]), "modalities"),
        (chat(modalities="text"), "modalities"),
        (chat(web_search_options={}), "web_search_options"),
        (chat(model="anthropic/claude-sonnet-4-5", logprobs=True), "logprobs"),
        (chat(model="anthropic/claude-sonnet-4-5", seed=1), "seed"),
        (chat(model="gemini/gemini-2.5-flash", user="u1"), "user"),
        (
            chat(
                model="gemini/gemini-2.5-flash",
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    }
                ],
            ),
            "image_url",
        ),
    ],
)
def test_openai_bad_fields_are_400_naming_the_param(client, db, key, body, param):
    response = client.post(OPENAI, json=body, headers={"authorization": f"Bearer {key.secret}"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["request_id"] == response.headers["x-kaixu-request-id"]
    assert nothing_written(db)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "anthropic/claude-sonnet-4-5", "messages": HELLO}, "max_tokens"),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {
                "model": "openai/gpt-4o-mini",
                "max_tokens": 5,
                "messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}],
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "openai/gpt-4o-mini",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="},
                            }
                        ],
                    }
                ],
            },
            "messages[0].content[0].source.data",
        ),
        ({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": HELLO, "top_k": 3}, "top_k"),
        (  # billed above the price book's rates
            {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": HELLO, "inference_geo": "us"},
            "inference_geo",
        ),
        (
            {"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": HELLO, "tools": [{"name": "f"}]},
            "tools[0].input_schema",
        ),
    ],
)
def test_anthropic_bad_fields_are_400_in_anthropics_shape(client, db, key, body, param):
    response = client.post(ANTHROPIC, json=body, headers={"x-api-key": key.secret})
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["field"] == param
    assert nothing_written(db)


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        (OPENAI, {}, 401, "authentication_error"),
        (OPENAI, {"authorization": "Bearer sk-not-ours"}, 401, "authentication_error"),
        ("openai/v1/completions", None, 404, "not_found_error"),
        ("openai/v1/chat/completions/extra", None, 404, "not_found_error"),
    ],
)
def test_openai_keys_and_paths(client, db, key, path, headers, status, kind):
    headers = {"authorization": f"Bearer {key.secret}"} if headers is None else headers
    response = client.post(path, json=chat(), headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert nothing_written(db)


def test_not_json_and_wrong_methods_answer_in_each_apis_shape(client, db, key):
    auth = {"authorization": f"Bearer {key.secret}", "content-type": "application/json"}
    response = client.post(OPENAI, content=b"{not json", headers=auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_JSON"
    response = client.post(ANTHROPIC, content=b"[]", headers={"x-api-key": key.secret})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = client.get(OPENAI, headers=auth)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
    response = client.delete(ANTHROPIC, headers={"x-api-key": key.secret})
    assert response.status_code == 405 and response.json()["type"] == "error"
    assert "POST" in response.headers["allow"]
    assert nothing_written(db)


def test_models_are_each_keys_own(server, make_key, db, upstreams):
    mine = make_key(allowed_providers=["gemini"])
    theirs = make_key(allowed_models={"openai": ["gpt-4o-mini"]})
    revoked = make_key(revoked_at="2026-01-01T00:00:00Z")

    def ids(secret: str) -> httpx.Response:
        return httpx.get(f"{server}/v1/models", headers={"authorization": f"Bearer {secret}"})

    assert {m["id"].split("/")[0] for m in ids(mine.secret).json()["data"]} == {"gemini"}
    assert [m["id"] for m in ids(theirs.secret).json()["data"]] == ["openai/gpt-4o-mini"]
    assert ids(revoked.secret).status_code == 401
    assert ids("kx_live_" + "y" * 43).status_code == 401
