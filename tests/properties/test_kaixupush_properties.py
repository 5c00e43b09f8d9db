"""Properties of KaixuPush's path rules (``shared/kaixupush/paths.py``) and of the init body's
streaming parser (``shared/kaixupush/manifest.py``).

Paths: normalising is idempotent, never escapes the site's root, treats ``\\`` and repeated
slashes as one ``/``, refuses only with 400 BAD_PATH, and the upload URL form decodes back to
the path. The manifest: a body is read to the same request (or refused with the same error)
however its bytes arrive: cut anywhere, gzip-compressed or not, with the plain fast path or
escaped strings; and what it reads is the manifest written, paths normalised, a path listed
twice with two digests refused.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import posixpath
import string
from typing import Any
from urllib.parse import unquote

from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from shared.errors import ApiError
from shared.http import Ctx
from shared.kaixupush import manifest, paths

SETTINGS = settings(max_examples=120, deadline=None)
FORBIDDEN = '<>:"|*#?'

# A segment as a site has them: letters of any script, digits, spaces, dots, dashes...; never
# a separator, a control character or a forbidden one; never "." or "..".
SEGMENT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\" + FORBIDDEN + "\x7f"
    ),
    min_size=1,
    max_size=16,
).filter(lambda s: s not in (".", ".."))
SEPARATOR = st.sampled_from(["/", "\\", "//", "/\\", "\\\\"])


@st.composite
def raw_paths(draw: st.DrawFn) -> tuple[str, str]:
    """(how a client may write a path, its canonical form)."""
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=6))
    lead = draw(st.sampled_from(["", "/", "\\", "//"]))
    written = lead + segments[0]
    for segment in segments[1:]:
        written += draw(SEPARATOR) + segment
    return written, "/" + "/".join(segments)


def outcome(raw: object) -> tuple[str, Any]:
    try:
        return "ok", paths.normalize(raw)
    except ApiError as error:
        return error.code, error.status


# ----------------------------------------------------------------------------- paths


@SETTINGS
@given(raw_paths())
def test_a_path_written_any_way_normalises_to_its_canonical_form(case: tuple[str, str]):
    written, canonical = case
    if len(canonical) > paths.MAX_LENGTH:
        assert outcome(written) == ("BAD_PATH", 400)
        return
    assert paths.normalize(written) == canonical
    assert paths.normalize(canonical) == canonical


@SETTINGS
@given(st.text(max_size=80) | st.text(alphabet="/\\.a b%<", max_size=30))
@example("../../etc/passwd")
@example("a/./b")
@example("a\\..\\..\\b")
@example("/")
@example("a/")
@example(".well-known/x")
def test_normalising_is_idempotent_refuses_only_with_bad_path_and_never_leaves_the_root(raw: str):
    result = outcome(raw)
    if result[0] != "ok":
        assert result == ("BAD_PATH", 400)
        return
    path = result[1]
    assert paths.normalize(path) == path  # idempotent
    assert path.startswith("/") and not path.endswith("/") and "\\" not in path and "//" not in path
    assert all(segment not in ("", ".", "..") for segment in path[1:].split("/"))
    assert not any(ch in FORBIDDEN or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path)
    # Joined under the site's folder, it stays there, whatever a file system does with it.
    assert posixpath.normpath("/srv/site" + path).startswith("/srv/site/")


@SETTINGS
@given(st.integers() | st.none() | st.binary() | st.lists(st.text()) | st.just(""))
def test_anything_but_a_string_is_refused_as_a_bad_path(raw: object):
    assert outcome(raw) == ("BAD_PATH", 400)


@SETTINGS
@given(raw_paths())
def test_the_upload_url_form_decodes_back_to_the_path(case: tuple[str, str]):
    _, canonical = case
    url = paths.url_path(canonical)
    assert set(url) <= set(string.ascii_letters + string.digits + "-._~%/")
    assert "/" + "/".join(unquote(segment) for segment in url.split("/")) == canonical
    assert len(url.split("/")) == len(canonical[1:].split("/"))  # no segment's "/" leaks out


# ----------------------------------------------------------------------------- the manifest

SHA1 = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)


@st.composite
def init_bodies(draw: st.DrawFn) -> tuple[bytes, Any]:
    """An init body as a client may write it, and what it must read to: the InitRequest, or
    the error code for a path listed twice with two digests."""
    entries = draw(st.lists(st.tuples(raw_paths(), SHA1), min_size=1, max_size=8))
    if draw(st.booleans()) and entries:  # the same file again, written another way
        (written, canonical), digest = draw(st.sampled_from(entries))
        again = canonical if written != canonical else "/" + canonical
        entries.append(((again, canonical), draw(st.sampled_from([digest, draw(SHA1)]))))
    files: dict[str, str] = {}
    twice = False
    for (_, canonical), digest in entries:
        twice = twice or files.setdefault(canonical, digest) != digest
    fields: dict[str, Any] = {"project_id": draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True))}
    if draw(st.booleans()):
        fields["branch"] = draw(st.sampled_from(["main", "dev/x", "release-1.2"]))
    if draw(st.booleans()):
        fields["title"] = (
            draw(st.text(alphabet=string.ascii_letters + " é", min_size=1, max_size=20)).strip() or "t"
        )
    if draw(st.booleans()):
        fields["draft"] = draw(st.booleans())
    if draw(st.booleans()):
        fields["bytes"] = draw(st.integers(0, 10**12))
    ascii_only = draw(st.booleans())  # escaped strings go token by token, plain ones the fast way
    space = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
    pairs = [
        json.dumps(written, ensure_ascii=ascii_only) + ":" + space + json.dumps(digest)
        for (written, _), digest in entries
    ]
    files_text = "{" + space + ("," + space).join(pairs) + space + "}"
    members = [
        json.dumps(k) + ":" + space + json.dumps(v, ensure_ascii=ascii_only) for k, v in fields.items()
    ]
    members.insert(draw(st.integers(0, len(members))), '"files":' + space + files_text)
    body = ("{" + space + ("," + space).join(members) + space + "}").encode()
    if twice:
        return body, ("BAD_MANIFEST", 400)
    if any(len(canonical) > paths.MAX_LENGTH for (_, canonical), _ in entries):
        return body, ("BAD_PATH", 400)
    expected = manifest.InitRequest(
        project_id=fields["project_id"],
        branch=fields.get("branch", "main"),
        title=fields.get("title", "KaixuPush deploy"),
        draft=fields.get("draft", False),
        files=files,
        bytes=fields.get("bytes", 0),
    )
    return body, expected


def read(chunks: list[bytes], gzipped: bool) -> Any:
    """What ``read_init`` makes of a body arriving in these pieces: the request, or the
    refusal's (code, status)."""
    headers = [(b"content-type", b"application/json")]
    if gzipped:
        headers.append((b"content-encoding", b"gzip"))
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def main() -> Any:
        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
        ctx = Ctx(Request(scope, receive), "kaixupush-init")
        try:
            return await manifest.read_init(ctx)
        except ApiError as error:
            return error.code, error.status

    return asyncio.run(main())


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(min(cut, len(data)) for cut in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


CUTS = st.lists(st.integers(min_value=0, max_value=4000), max_size=30)


@SETTINGS
@given(init_bodies(), CUTS, st.booleans())
def test_an_init_body_reads_to_its_manifest_however_its_bytes_arrive(
    case: tuple[bytes, Any], cuts: list[int], gzipped: bool
):
    body, expected = case
    sent = gzip.compress(body) if gzipped else body
    assert read([sent], gzipped) == expected
    assert read(split_at(sent, cuts), gzipped) == expected


@SETTINGS
@given(init_bodies(), CUTS, st.data())
def test_a_damaged_body_is_refused_the_same_way_however_its_bytes_arrive(
    case: tuple[bytes, Any], cuts: list[int], data: st.DataObject
):
    """Cut short, with bytes dropped or bytes put in: whatever the whole body reads to (a
    request or a refusal), it reads to the same when it arrives in pieces."""
    body, _ = case
    start = data.draw(st.integers(0, len(body)))
    end = data.draw(st.integers(start, min(len(body), start + 8)))
    inserted = data.draw(
        st.binary(max_size=4) | st.sampled_from([b'"', b"\\", b"}", b",", b"\\u00e9", b"-1e"])
    )
    damaged = data.draw(
        st.sampled_from([body[:start], body[:start] + body[end:], body[:start] + inserted + body[end:]])
    )
    whole = read([damaged], False)
    assert read(split_at(damaged, cuts), False) == whole
    assert read([bytes([b]) for b in damaged], False) == whole
