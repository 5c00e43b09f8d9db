"""Which requests may be billed cache writes: a body passed through to its provider as it came
that marks ``cache_control`` anywhere. A translated body never carries the mark."""

from __future__ import annotations

import pytest

from shared.compat import anthropic_format, openai_format
from shared.providers.conversation import Conversation
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
