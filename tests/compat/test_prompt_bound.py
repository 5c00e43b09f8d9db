"""What a compatible body's prompt bound counts (a body passed through as it came: every byte
but the images' own), and whether the prompt may be billed as cache writes (such a body that
marks ``cache_control`` anywhere; a translated body never carries the mark)."""

from __future__ import annotations

import json

import pytest

from shared.billing import pricing
from shared.compat import anthropic_format, openai_format
from shared.gateway import pipeline
from shared.providers.conversation import IMAGE_TOKEN_BOUND, Conversation
from tests.support.database import load_catalogue

OPUS = "claude-opus-4-1-20250805"
HELLO = [{"role": "user", "content": "Hi"}]
MARK = {"type": "ephemeral", "ttl": "1h"}
TOOL = {"name": "look", "input_schema": {"type": "object"}}


@pytest.fixture(autouse=True)
def catalogue(database_url: str) -> None:
    load_catalogue()


@pytest.mark.parametrize(
    "changes",
    [
        {"system": [{"type": "text", "text": "Be brief.", "cache_control": MARK}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": MARK}]}]},
        {"tools": [{**TOOL, "cache_control": MARK}]},
        {"cache_control": MARK},  # the whole request
    ],
)
def test_a_mark_anywhere_in_a_body_sent_as_it_came_may_write_the_cache(changes):
    conv = anthropic_format.parse({"model": OPUS, "messages": HELLO, "max_tokens": 9, **changes})
    assert conv.native is not None and conv.may_write_cache()


def test_a_body_without_the_mark_or_translated_for_another_provider_does_not():
    assert not anthropic_format.parse({"model": OPUS, "messages": HELLO, "max_tokens": 9}).may_write_cache()
    translated = openai_format.parse({"model": f"anthropic/{OPUS}", "messages": HELLO, "max_tokens": 9})
    assert translated.native is None and not translated.may_write_cache()


def test_nesting_deeper_than_the_stack_is_searched_without_recursion():
    deep: object = {"cache_control": MARK}
    for _ in range(100_000):
        deep = [deep]
    conv = Conversation(provider="anthropic", model=OPUS, turns=(), max_tokens=9, native={"metadata": deep})
    assert conv.may_write_cache()


def framing(conv: Conversation) -> int:
    return 32 + 8 * len(conv.turns)


def test_every_byte_of_a_body_sent_as_it_came_counts_in_its_prompts_bound():
    """Reasoning sent back to Anthropic is no neutral turn, yet Anthropic reads it (the last
    turn's, in a tool loop, is billed as input); so is any field the gateway passes unread."""
    thought = "Let me think about the weather in Paris. " * 50
    turns = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": thought, "signature": "sig"},
                {"type": "redacted_thinking", "data": "EncryptedBlob=="},
                {"type": "tool_use", "id": "t1", "name": "look", "input": {}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "Sunny"}]},
    ]
    body = {"model": OPUS, "messages": turns, "max_tokens": 9, "tools": [TOOL]}
    sent = json.dumps(body).encode()
    price = pricing.lookup("anthropic", OPUS)
    assert price is not None
    native = anthropic_format.parse(body)
    assert native.text_bytes() < len(thought)  # the neutral turns do not carry it
    assert pipeline.prompt_token_bound(native, price, len(sent)) == len(sent) + framing(native)
    translated = anthropic_format.parse({**body, "model": "openai/gpt-4o"})  # reasoning dropped
    assert translated.native is None
    bound = pipeline.prompt_token_bound(translated, price, len(sent))
    assert bound == translated.text_bytes() + framing(translated) < len(thought)


def test_an_images_own_bytes_count_once_as_its_bound_and_the_context_caps_it_all():
    image = "data:image/png;base64," + "iVBORw0KGgoA" * 1_000
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": image}}]
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": content}], "max_tokens": 9}
    sent = json.dumps(body).encode()
    price = pricing.lookup("openai", "gpt-4o")
    assert price is not None
    conv = openai_format.parse(body)
    image_data = len(image) - len("data:image/png;base64,")
    expected = len(sent) - image_data + IMAGE_TOKEN_BOUND + framing(conv)
    assert pipeline.prompt_token_bound(conv, price, len(sent)) == expected
    assert pipeline.prompt_token_bound(conv, price, 10**9) == price.max_input_tokens
