"""The SSE decoder: line ends, framing, fields, and chunk boundaries anywhere."""

from __future__ import annotations

import json
import random

from shared.providers.sse import SSEDecoder, SSEEvent


def feed_bytewise(data: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]
    return events + decoder.close()


def feed_whole(data: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(data) + decoder.close()


OPENAI = (
    b'data: {"choices":[{"delta":{"content":"The"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":" end"}}]}\n\n'
    b"data: [DONE]\n\n"
)


def test_openai_frames_byte_by_byte() -> None:
    events = feed_bytewise(OPENAI)
    assert [e.data for e in events] == [
        '{"choices":[{"delta":{"content":"The"}}]}',
        '{"choices":[{"delta":{"content":" end"}}]}',
        "[DONE]",
    ]
    assert all(e.event == "message" for e in events)


def test_gemini_crlf_crlf_frames_byte_by_byte() -> None:
    data = b'data: {"a": 1}\r\n\r\ndata: {"a": 2}\r\n\r\n'
    assert [json.loads(e.data) for e in feed_bytewise(data)] == [{"a": 1}, {"a": 2}]


def test_cr_at_chunk_end_and_lf_at_next_start_is_one_line_break() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\r") == []
    assert decoder.feed(b"\n") == []  # the pair of the \r, not a blank line
    assert decoder.feed(b"\r") == [SSEEvent("message", "one")]
    assert decoder.feed(b"\ndata: two\r\n\r\n") == [SSEEvent("message", "two")]


def test_bare_cr_line_ends() -> None:
    events = feed_bytewise(b"event: ping\rdata: x\r\rdata: y\r\r")
    assert events == [SSEEvent("ping", "x"), SSEEvent("message", "y")]


def test_unicode_line_separators_inside_json_do_not_split() -> None:
    text = "a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei é🙂"
    payload = json.dumps({"text": text}, ensure_ascii=False)
    data = f"data: {payload}\n\n".encode()
    for events in (feed_bytewise(data), feed_whole(data)):
        assert len(events) == 1
        assert json.loads(events[0].data)["text"] == text


def test_multibyte_characters_split_across_chunks() -> None:
    data = "data: 日本語🙂\n\n".encode()
    for cut in range(1, len(data)):
        decoder = SSEDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert events == [SSEEvent("message", "日本語🙂")], cut


def test_multiple_data_lines_are_joined_with_newline() -> None:
    events = feed_bytewise(b"data: first\ndata:second\ndata\ndata:  third\n\n")
    assert events == [SSEEvent("message", "first\nsecond\n\n third")]


def test_one_space_after_the_colon_is_stripped_and_no_more() -> None:
    assert feed_whole(b"data:x\n\n")[0].data == "x"
    assert feed_whole(b"data: x\n\n")[0].data == "x"
    assert feed_whole(b"data:  x \n\n")[0].data == " x "


def test_comments_and_unknown_fields_are_ignored() -> None:
    data = b": keep-alive\n\n:another\nretry: 300\nfoo: bar\ndata: hi\n: inside\n\n"
    assert feed_bytewise(data) == [SSEEvent("message", "hi")]


def test_event_name_and_id() -> None:
    events = feed_whole(b"event: message_start\nid: 7\ndata: {}\n\ndata: {}\n\n")
    assert events == [SSEEvent("message_start", "{}", "7"), SSEEvent("message", "{}", "7")]


def test_frame_without_data_is_not_dispatched() -> None:
    assert feed_whole(b"event: ping\n\n") == []


def test_anthropic_padded_json() -> None:
    data = (
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0        }\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"    }\n\n'
    )
    events = feed_bytewise(data)
    assert [e.event for e in events] == ["content_block_stop", "message_stop"]
    assert [json.loads(e.data)["type"] for e in events] == ["content_block_stop", "message_stop"]


def test_unterminated_last_frame_is_dispatched_at_close() -> None:
    """Recorded Anthropic streams end with ``data: {...}`` and no newline at all."""
    decoder = SSEDecoder()
    assert decoder.feed(b'event: message_stop\ndata: {"type":"message_stop"}') == []
    assert decoder.close() == [SSEEvent("message_stop", '{"type":"message_stop"}')]


def test_leading_bom_is_stripped() -> None:
    assert feed_bytewise(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent("message", "x")]


def test_random_chunking_matches_whole_feed() -> None:
    data = (
        OPENAI
        + b'data: {"candidates": [1]}\r\n\r\n'
        + "event: e\rdata: \u2028☃\r\r".encode()
        + b": c\r\ndata: z\r\n\r\n"
    )
    expected = feed_whole(data)
    assert len(expected) == 6
    rng = random.Random(1234)
    for _ in range(200):
        decoder = SSEDecoder()
        events: list[SSEEvent] = []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 9)
            events += decoder.feed(data[pos : pos + step])
            pos += step
        assert events + decoder.close() == expected
