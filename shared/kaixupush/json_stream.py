"""JSON read as it arrives, a token at a time, for bodies whose shape is known in advance.

Why not ``orjson.loads`` on the whole body: a few KB of gzip inflate to megabytes of JSON,
and a parser that builds every value first turns ``[{},{},...]`` into hundreds of MB of
Python objects before anyone looks at the shape. Here the caller's grammar pulls one token
at a time and refuses the body at the first token it did not expect, so memory holds one
token (at most ``MAX_TOKEN`` bytes) plus what the grammar chose to keep.

A grammar is a generator: it takes tokens with ``yield from next_token(scanner)``, which
suspends it until more input is fed (:func:`advance`), and returns its result at the end.
Tokens are ``(kind, value)``: kind is one of ``{ } [ ] : ,``, ``string``, ``number``,
``literal`` (true, false, null) or ``eof``; strings and numbers are decoded by orjson,
which also checks their escapes and UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any, TypeVar

import orjson

from shared.errors import ApiError

MAX_TOKEN = 16 * 1024  # a path of 1024 characters, each escaped as a surrogate pair, fits
Token = tuple[str, Any]
T = TypeVar("T")

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(rb"[0-9.eE+-]*")
_PUNCTUATION = frozenset(b"{}[]:,")
_LITERALS = ((b"true", True), (b"false", False), (b"null", None))
# A plain manifest entry ("path": "sha1" and the ',' or '}' after it, no escapes in the path)
_ENTRY = re.compile(rb'[ \t\n\r]*"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*"([0-9a-f]{40})"[ \t\n\r]*([,}])')


def invalid(reason: str) -> ApiError:
    return ApiError(400, "INVALID_JSON", f"The request body is not valid JSON: {reason}.")


def _too_long() -> ApiError:
    message = f"The request body has a JSON value longer than {MAX_TOKEN} bytes."
    return ApiError(400, "INVALID_JSON", message, limit=MAX_TOKEN)


class Scanner:
    """The unread input and the tokens in it; ``final`` once no more input will come."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self.final = False

    def feed(self, data: bytes) -> None:
        self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def token(self) -> Token | None:
        """The next token, or None when it may continue in input not fed yet."""
        self._pos = _WHITESPACE.match(self._buf, self._pos).end()  # type: ignore[union-attr]
        if self._pos == len(self._buf):
            return ("eof", None) if self.final else None
        first = self._buf[self._pos]
        if first in _PUNCTUATION:
            self._pos += 1
            return chr(first), None
        if first == 0x22:  # "
            return self._string()
        if first == 0x2D or 0x30 <= first <= 0x39:  # - or a digit
            return self._number()
        return self._literal()

    def plain_entry(self) -> tuple[str, str, str] | None:
        """A whole ``"path": "sha1",`` (or ``}``) in one step when it is all fed and the path
        has no escape: most of a manifest. None: read it token by token instead."""
        found = _ENTRY.match(self._buf, self._pos)
        if found is None or found.end() - self._pos > MAX_TOKEN:
            return None
        try:
            path = found.group(1).decode()
        except UnicodeDecodeError:
            raise invalid("a bad string") from None
        self._pos = found.end()
        return path, found.group(2).decode(), found.group(3).decode()

    def _string(self) -> Token | None:
        found = _STRING.match(self._buf, self._pos)
        if found is None:  # not closed yet
            return self._wait("an unterminated string")
        return self._take(found, "string")

    def _number(self) -> Token | None:
        found = _NUMBER.match(self._buf, self._pos)
        if found is None:
            if self._pos + 1 == len(self._buf):  # a lone '-' so far
                return self._wait("a malformed number")
            raise invalid("a malformed number")
        if not self.final and self._runs_to_the_end(_NUMBER_TAIL, found.end()):
            return self._wait("a malformed number")  # the rest of the number may follow
        return self._take(found, "number")

    def _runs_to_the_end(self, pattern: re.Pattern[bytes], start: int) -> bool:
        return pattern.match(self._buf, start).end() == len(self._buf)  # type: ignore[union-attr]

    def _wait(self, broken: str) -> Token | None:
        """No token yet: more input may complete it (None), unless the input is over."""
        if self.final:
            raise invalid(broken)
        if len(self._buf) - self._pos > MAX_TOKEN:
            raise _too_long()
        return None

    def _take(self, found: re.Match[bytes], kind: str) -> Token:
        if found.end() - self._pos > MAX_TOKEN:
            raise _too_long()
        try:
            value = orjson.loads(found.group())
        except orjson.JSONDecodeError:
            raise invalid(f"a bad {kind}") from None
        self._pos = found.end()
        return kind, value

    def _literal(self) -> Token | None:
        rest = self._buf[self._pos : self._pos + 5]
        for text, value in _LITERALS:
            if rest.startswith(text):
                self._pos += len(text)
                return "literal", value
            if not self.final and len(rest) < len(text) and text.startswith(rest):
                return None
        raise invalid("an unexpected character")


def next_token(scanner: Scanner) -> Generator[None, None, Token]:
    """The next token, suspending the grammar until enough input has been fed."""
    while (token := scanner.token()) is None:
        yield
    return token


def expect(scanner: Scanner, kind: str) -> Generator[None, None, None]:
    found, _ = yield from next_token(scanner)
    if found != kind:
        raise invalid(f"expected '{kind}'")


def advance(grammar: Generator[None, None, T]) -> tuple[bool, T | None]:
    """Run the grammar over what was fed: (True, its result) once it is done, else (False, None)."""
    try:
        grammar.send(None)
    except StopIteration as done:
        return True, done.value
    return False, None
