"""The demo model on its own: deterministic answers, word tokens, OpenAI's wire format (read by
the OpenAI adapter's own parsers), its pace, and when the demo provider counts as configured."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from shared import config, providers
from shared.provider_names import PROVIDER_NAMES
from shared.providers.conversation import Conversation, Text, Turn
from shared.providers.demo_model import TIPS, LocalResponse, Reply, answer, count_tokens
from shared.providers.openai import OpenAIStream
from shared.providers.sse import SSEDecoder


def conversation(text: str = "Hello there", max_tokens: int = 256, **fields: object) -> Conversation:
    turns = (Turn("system", (Text("Be brief."),)), Turn("user", (Text(text),)))
    return Conversation(provider="demo", model="kaixu-demo-1", turns=turns, max_tokens=max_tokens, **fields)


@pytest.fixture
def demo_on(configure):
    return configure(KAIXU_ENV="development", KAIXU_DEMO="1", KAIXU_DEMO_WORD_DELAY_S="0")


def test_every_provider_name_has_an_adapter():
    assert tuple(providers.PROVIDERS) == PROVIDER_NAMES


def test_the_same_prompt_gets_the_same_answer_and_another_prompt_may_not():
    assert answer("kaixu-demo-1", "Hello") == answer("kaixu-demo-1", "Hello")
    assert "Kaixu demo model" in answer("kaixu-demo-1", "Hello")
    assert '"Hello"' in answer("kaixu-demo-1", "Hello")
    tips = {next(t for t in TIPS if t in answer("kaixu-demo-1", f"question {i}")) for i in range(40)}
    assert len(tips) > 1  # the hash picks among them
    long = answer("kaixu-demo-1", " ".join(f"w{i}" for i in range(30)))
    assert '"w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 ..."' in long


def test_tokens_are_words_of_every_message_and_max_tokens_cuts_the_answer():
    body = {
        "model": "kaixu-demo-1",
        "messages": [
            {"role": "system", "content": "Be  brief."},
            {"role": "user", "content": [{"type": "text", "text": "two words"}, {"type": "image_url"}]},
        ],
        "max_completion_tokens": 5,
    }
    reply = Reply(body)
    assert reply.usage == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    assert reply.finish == "length" and reply.text == "Hello! I am kaixu-demo-1, the"
    whole = Reply({**body, "max_completion_tokens": 1000})
    assert whole.finish == "stop" and count_tokens(whole.text) == whole.usage["completion_tokens"] > 40
    assert "".join(whole.pieces()) == whole.text
    assert Reply({"model": "m", "messages": []}).usage["prompt_tokens"] == 1  # never a free prompt


def test_the_stream_is_openai_chunks_that_the_openai_parser_reads_back():
    reply = Reply({"model": "kaixu-demo-1", "messages": [{"role": "user", "content": "Hi"}]})
    parser, decoder, text = OpenAIStream("Kaixu demo"), SSEDecoder(), []
    for event in decoder.feed(b"".join(reply.events())):
        text += [piece for piece in parser.feed(event) if isinstance(piece, str)]
    assert parser.finished and "".join(text) == reply.text
    assert (parser.usage.input_tokens, parser.usage.output_tokens) == (1, count_tokens(reply.text))
    chunk = orjson.loads(reply.events()[1].removeprefix(b"data: "))
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["delta"] == {
        "content": "Hello!"
    }


def test_a_stream_paces_its_words_and_stops_when_closed():
    body = {"model": "kaixu-demo-1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6}

    async def read(delay_s: float, take: int | None = None) -> tuple[int, float]:
        response = LocalResponse(body, stream=True, delay_s=delay_s)
        started, seen = time.monotonic(), 0
        async for _ in response.aiter_bytes():
            seen += 1
            if seen == take:
                break
        await response.aclose()
        return seen, time.monotonic() - started

    events, took = asyncio.run(read(0.05))
    assert events == 6 + 4 and took >= 5 * 0.05  # role, 6 words, finish, usage, [DONE]
    assert asyncio.run(read(0.05, take=2))[1] < 0.05  # closed after the first word: no more waits


def test_complete_and_stream_through_the_adapter(demo_on):
    async def run() -> tuple[providers.Completion, str, providers.Usage | None]:
        completion = await providers.complete(conversation())
        async with providers.open_stream(conversation()) as stream:
            text = "".join([piece async for piece in stream if isinstance(piece, str)])
        return completion, text, stream.usage

    completion, streamed, usage = asyncio.run(run())
    assert completion.text == streamed and completion.finish == "stop"
    assert completion.usage == usage and completion.usage.input_tokens == 4  # "Be brief." + "Hello there"
    assert completion.upstream_request_id.startswith("chatcmpl-demo-")


def test_the_demo_refuses_what_prose_cannot_honour():
    from shared.providers.conversation import ResponseFormat, ToolChoice

    assert providers.refusal(conversation(response_format=ResponseFormat("json_object"))) == "response_format"
    assert providers.refusal(conversation(tool_choice=ToolChoice("required"))) == "tool_choice"
    assert providers.refusal(conversation(tool_choice=ToolChoice("auto"))) is None


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"KAIXU_ENV": "development", "KAIXU_DEMO": "1"}, True),
        ({"KAIXU_ENV": "development", "KAIXU_DEMO": "0"}, False),
        ({"KAIXU_ENV": "development", "KAIXU_DEMO": ""}, False),
        ({"KAIXU_ENV": "production", "KAIXU_DEMO": "1"}, False),
        ({"KAIXU_ENV": "", "KAIXU_DEMO": "1"}, False),  # unset is production
        ({"KAIXU_ENV": "development", "KAIXU_DEMO": "1", "AWS_LAMBDA_FUNCTION_NAME": "gateway-chat"}, False),
    ],
)
def test_the_demo_provider_is_configured_only_in_development_off_lambda(configure, monkeypatch, env, enabled):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    configure(**env)
    assert config.settings().demo_enabled is enabled
    assert providers.is_configured("demo") is enabled


def test_a_call_where_the_demo_is_off_fails_before_any_work(configure):
    configure(KAIXU_ENV="production", KAIXU_DEMO="1")
    with pytest.raises(providers.UpstreamError) as refused:
        asyncio.run(providers.complete(conversation()))
    assert (refused.value.status, refused.value.code) == (503, "PROVIDER_NOT_CONFIGURED")
