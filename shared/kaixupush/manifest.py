"""The init request: its (optionally gzip-compressed) JSON body and the file manifest.

The manifest maps every file of the site to its SHA-1 (Netlify needs every file in every
deploy; unchanged digests are simply not requested again). It is validated whole before
anything is created: at least one and at most 20,000 files, every path by the rules of
``paths``, every digest 40 lowercase hex, and no path listed twice with two digests.
A gzip body is inflated with a limit, so a small compressed bomb is a 413, not an outage.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from shared import config, fields
from shared.http import ApiError, Ctx, bad_request
from shared.kaixupush import paths

MAX_FILES = 20_000
SHA1 = re.compile(r"^[0-9a-f]{40}$")
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,79}$")
MAX_TITLE = 160
_INIT_FIELDS = ("project_id", "branch", "title", "draft", "files", "bytes")


@dataclass(frozen=True)
class InitRequest:
    project_id: str
    branch: str
    title: str
    draft: bool
    files: dict[str, str]  # canonical path -> sha1
    bytes: int  # what the client expects to upload at most (for the cap projection); 0 = unknown


def check_sha1(value: object, field: str) -> str:
    if not isinstance(value, str) or not SHA1.match(value):
        raise bad_request(field, f"{field} must be a SHA-1: 40 lowercase hexadecimal characters.")
    return value


def check_project_id(value: object, field: str = "project_id") -> str:
    if not isinstance(value, str) or not PROJECT_ID.match(value):
        raise bad_request(field, f"{field} must be 1-100 letters, digits, '.', '_' or '-'.")
    return value


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "BODY_TOO_LARGE", f"The request body is larger than {limit} bytes once inflated.")


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise ApiError(400, "INVALID_GZIP", "The body says content-encoding gzip but is not gzip.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise ApiError(400, "INVALID_GZIP", "The gzip body is truncated.")
    return data


async def read_json_object(ctx: Ctx) -> dict[str, Any]:
    """The JSON object body, inflated first when sent with ``content-encoding: gzip``."""
    limit = config.settings().kaixupush_manifest_max_bytes
    encoding = ctx.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise ApiError(415, "UNSUPPORTED_ENCODING", "content-encoding may be gzip or nothing.")
    raw = await ctx.body(limit)
    data = _gunzip(raw, limit) if encoding == "gzip" else raw
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_JSON", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_JSON", "The request body must be a JSON object.")
    return body


def parse_files(files: object) -> dict[str, str]:
    """The manifest as canonical path -> sha1, or the 400/413 naming the first problem."""
    if not isinstance(files, dict) or not files:
        raise ApiError(
            400, "BAD_MANIFEST", "files must be a non-empty object of path -> sha1.", field="files"
        )
    if len(files) > MAX_FILES:
        raise ApiError(
            413, "MANIFEST_TOO_LARGE", f"A deploy may list at most {MAX_FILES} files.", limit=MAX_FILES
        )
    manifest: dict[str, str] = {}
    for raw_path, digest in files.items():
        path = paths.normalize(raw_path)
        check_sha1(digest, f"files[{raw_path[:200]}]")
        if manifest.setdefault(path, digest) != digest:
            raise ApiError(
                400,
                "BAD_MANIFEST",
                f"{path} is listed twice with different digests.",
                field="files",
                path=path,
            )
    return manifest


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
    fields.reject_unknown(body, _INIT_FIELDS)
    draft = body.get("draft", False)
    if not isinstance(draft, bool):
        raise bad_request("draft", "draft must be true or false.")
    return InitRequest(
        project_id=check_project_id(body.get("project_id")),
        branch=_text(body, "branch", "main", BRANCH),
        title=_text(body, "title", "KaixuPush deploy", None),
        draft=draft,
        files=parse_files(body.get("files")),
        bytes=fields.int_field(body, "bytes", minimum=0, required=False) or 0,
    )
