"""The init request: its (optionally gzip-compressed) JSON body and the file manifest.

The manifest maps every file of the site to its SHA-1 (Netlify needs every file in every
deploy; unchanged digests are simply not requested again): at least one and at most 20,000
files, every path by the rules of ``paths``, every digest 40 lowercase hex, and no path
listed twice with two digests.

The body is checked while it arrives, never parsed whole first (see ``json_stream``): it is
inflated a piece at a time and its tokens go through the init grammar, so a body of the
wrong shape is refused at its first wrong token, the 20,001st file is refused as it comes,
and memory holds the files accepted so far plus one token. The inflated size is bounded by
:data:`MANIFEST_BOUND`, what 20,000 files need at the longest path the rules allow
(``KAIXUPUSH_MANIFEST_MAX_BYTES`` may only lower it). Nothing is created before the whole
body has passed.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, NamedTuple

import orjson

from shared import config, fields, numbers
from shared.errors import ApiError, bad_request
from shared.http import Ctx
from shared.kaixupush import json_stream, paths
from shared.kaixupush.json_stream import Scanner, expect, next_token

MAX_FILES = 20_000
SHA1_HEX = 40
ENTRY_SYNTAX = 16  # the quotes of path and digest, a colon, a comma and some whitespace
FIELDS_ALLOWANCE = 4096  # project_id, branch, title (escaped), draft, bytes, dry_run and the braces
MANIFEST_BOUND = MAX_FILES * (paths.MAX_LENGTH + SHA1_HEX + ENTRY_SYNTAX) + FIELDS_ALLOWANCE
SHA1 = re.compile(r"^[0-9a-f]{40}$")
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,79}$")
MAX_TITLE = 160
_INIT_FIELDS = ("project_id", "branch", "title", "draft", "files", "bytes", "dry_run")
_SCALARS = {
    "project_id": "a string",
    "branch": "a string",
    "title": "a string",
    "draft": "true or false",
    "bytes": "a whole number",
    "dry_run": "true or false",
}
_STEP = 64 * 1024  # bytes inflated and parsed at a time


class InitRequest(NamedTuple):
    project_id: str
    branch: str
    title: str
    draft: bool
    files: dict[str, str]  # canonical path -> sha1
    bytes: int  # what the client expects to upload at most (for the cap projection); 0 = unknown
    dry_run: bool = False  # compare with the published site only: no deploy, nothing written


def check_sha1(value: object, field: str) -> str:
    if not isinstance(value, str) or not SHA1.match(value):
        raise bad_request(field, f"{field} must be a SHA-1: 40 lowercase hexadecimal characters.")
    return value


def check_project_id(value: object, field: str = "project_id") -> str:
    if not isinstance(value, str) or not PROJECT_ID.match(value):
        raise bad_request(field, f"{field} must be 1-100 letters, digits, '.', '_' or '-'.")
    return value


def fingerprint(req: InitRequest) -> str:
    """What an Idempotency-Key is bound to: the request as understood (canonical paths). A dry
    run creates nothing to replay, so its flag stays out (fingerprints stored before it existed
    still match)."""
    request = {name: value for name, value in req._asdict().items() if name != "dry_run"}
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def body_limit() -> int:
    return min(config.settings().kaixupush_manifest_max_bytes, MANIFEST_BOUND)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "BODY_TOO_LARGE",
        f"The request body is larger than {limit} bytes once inflated.",
        limit_bytes=limit,
    )


def _bad_manifest(message: str) -> ApiError:
    return ApiError(400, "BAD_MANIFEST", message, field="files")


# ----------------------------------------------------------------------------- the grammar


class _Files:
    """The manifest as it is parsed: every entry checked on arrival, at most MAX_FILES."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.entries = 0

    def add(self, raw_path: str, digest: object) -> None:
        self.entries += 1
        if self.entries > MAX_FILES:
            raise ApiError(
                413, "MANIFEST_TOO_LARGE", f"A deploy may list at most {MAX_FILES} files.", limit=MAX_FILES
            )
        path = paths.normalize(raw_path)
        check_sha1(digest, f"files[{raw_path[:200]}]")
        if self.files.setdefault(path, digest) != digest:  # type: ignore[arg-type]
            raise ApiError(
                400,
                "BAD_MANIFEST",
                f"{path} is listed twice with different digests.",
                field="files",
                path=path,
            )


def _value(scanner: Scanner) -> Generator[None, None, tuple[str, Any]]:
    """A value where one must be: an object or array is returned as its opening token (the
    grammar refuses it for the field), punctuation anywhere else is not JSON."""
    kind, value = yield from next_token(scanner)
    if kind in ("string", "number", "literal", "{", "["):
        return kind, value
    raise json_stream.invalid("a value is missing")


def _entry(scanner: Scanner, first: bool) -> Generator[None, None, tuple[str | None, object, str]]:
    """One ``path: digest`` pair and the ',' or '}' after it; (None, None, '}') for ``{}``."""
    if (plain := scanner.plain_entry()) is not None:
        return plain
    kind, raw_path = yield from next_token(scanner)
    if kind == "}" and first:
        return None, None, "}"
    if kind != "string":
        raise json_stream.invalid("an object key must be a string")
    yield from expect(scanner, ":")
    kind, digest = yield from _value(scanner)
    end, _ = yield from next_token(scanner)
    if end not in (",", "}"):
        raise json_stream.invalid("expected ',' or '}'")
    return raw_path, digest if kind in ("string", "number", "literal") else {}, end


def _files(scanner: Scanner) -> Generator[None, None, dict[str, str]]:
    kind, _ = yield from next_token(scanner)
    if kind != "{":
        raise _bad_manifest("files must be a non-empty object of path -> sha1.")
    manifest = _Files()
    end = ","
    while end == ",":
        raw_path, digest, end = yield from _entry(scanner, first=manifest.entries == 0)
        if raw_path is not None:
            manifest.add(raw_path, digest)
    if not manifest.files:
        raise _bad_manifest("files must be a non-empty object of path -> sha1.")
    return manifest.files


def _field(scanner: Scanner, name: str) -> Generator[None, None, Any]:
    if name == "files":
        return (yield from _files(scanner))
    kind, value = yield from _value(scanner)
    if kind in ("{", "["):
        raise bad_request(name, f"{name} must be {_SCALARS[name]}.")
    return value


def _init_body(scanner: Scanner) -> Generator[None, None, dict[str, Any]]:
    """The init body: one object of known fields, nothing after it."""
    kind, _ = yield from next_token(scanner)
    if kind != "{":
        raise ApiError(400, "INVALID_JSON", "The request body must be a JSON object.")
    body: dict[str, Any] = {}
    kind, name = yield from next_token(scanner)
    while kind != "}":
        if kind != "string":
            raise json_stream.invalid("an object key must be a string")
        fields.reject_unknown({name: None}, _INIT_FIELDS)
        if name in body:
            raise bad_request(name, f"{name} is given twice.")
        yield from expect(scanner, ":")
        body[name] = yield from _field(scanner, name)
        kind, _ = yield from next_token(scanner)
        if kind == ",":
            kind, name = yield from next_token(scanner)
        elif kind != "}":
            raise json_stream.invalid("expected ',' or '}'")
    kind, _ = yield from next_token(scanner)
    if kind != "eof":
        raise json_stream.invalid("something follows the object")
    return body


# ----------------------------------------------------------------------------- reading the body


def _pieces(chunk: bytes) -> Iterator[bytes]:
    for start in range(0, len(chunk), _STEP):
        yield chunk[start : start + _STEP]


def _inflated(inflater: Any, chunk: bytes) -> Iterator[bytes]:
    """What ``chunk`` inflates to, a bounded piece at a time."""
    pending = chunk
    try:
        while True:
            data = inflater.decompress(pending, _STEP)
            pending = inflater.unconsumed_tail
            if not data:
                return
            yield data
    except zlib.error:
        raise ApiError(400, "INVALID_GZIP", "The body says content-encoding gzip but is not gzip.") from None


async def _decoded(ctx: Ctx, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, inflated when sent with ``content-encoding: gzip``, refused
    with 413 as soon as either its raw or its inflated size passes ``limit``."""
    encoding = ctx.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise ApiError(415, "UNSUPPORTED_ENCODING", "content-encoding may be gzip or nothing.")
    declared = ctx.headers.get("content-length")
    if declared and (numbers.whole(declared) or 0) > limit:
        raise _too_large(limit)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    received = inflated = 0
    async for chunk in ctx.request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        for piece in _pieces(chunk) if inflater is None else _inflated(inflater, chunk):
            inflated += len(piece)
            if inflated > limit:
                raise _too_large(limit)
            yield piece
    if inflater is not None and not inflater.eof:
        raise ApiError(400, "INVALID_GZIP", "The gzip body is truncated.")


async def read_init(ctx: Ctx) -> InitRequest:
    """The init request, checked while its body arrives (nothing is kept of a refused one)."""
    scanner = Scanner()
    grammar = _init_body(scanner)
    async for piece in _decoded(ctx, body_limit()):
        scanner.feed(piece)
        json_stream.advance(grammar)
    scanner.final = True
    done, body = json_stream.advance(grammar)
    if not done or body is None:  # cannot happen: with the input final, every token is known
        raise json_stream.invalid("the body ended early")
    return parse_init(body)


def _text(body: dict[str, Any], name: str, default: str, pattern: re.Pattern[str] | None) -> str:
    value = body.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str) or not value.strip():
        raise bad_request(name, f"{name} must be a non-empty string.")
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise bad_request(name, f"{name} must be 1-80 letters, digits, '.', '_', '/' or '-'.")
    if len(value) > MAX_TITLE or not value.isprintable():
        raise bad_request(name, f"{name} must be at most {MAX_TITLE} printable characters.")
    return value


def parse_init(body: dict[str, Any]) -> InitRequest:
    """The init fields of a body whose files were already checked by the grammar."""
    draft, dry_run = _flag(body, "draft"), _flag(body, "dry_run")
    files = body.get("files")
    if not files:
        raise _bad_manifest("files must be a non-empty object of path -> sha1.")
    return InitRequest(
        project_id=check_project_id(body.get("project_id")),
        branch=_text(body, "branch", "main", BRANCH),
        title=_text(body, "title", "KaixuPush deploy", None),
        draft=draft,
        files=files,
        bytes=fields.int_field(body, "bytes", minimum=0, required=False) or 0,
        dry_run=dry_run,
    )


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad_request(name, f"{name} must be true or false.")
    return value
