"""One request cannot exhaust the gateway's memory: file bodies stream to Netlify, manifests
are checked while they are parsed, files have a size limit, and a customer runs a bounded
number of inits and upload-completes at once (across processes: the guard is in PostgreSQL).

RSS is this process's: the test server and the fakes run in it (see ``PeakRss``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.kaixupush import manifest, netlify_api
from tests.support import kaixupush as kaixupush_support
from tests.support.fakes.server import LoopbackServer
from tests.support.kaixupush import PROJECT, SITE, PeakRss, PushEnv, ok, random_bytes, sha1

netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

MIB = 1024 * 1024
SHA = "a" * 40


# ----------------------------------------------------------------------------- the transport


class _SlowReader:
    """A real HTTP server that reads request bodies slowly and says how much it has read."""

    def __init__(self) -> None:
        self.received = 0
        self.app = Starlette(routes=[Route("/upload", self._upload, methods=["PUT"])])
        self.http = LoopbackServer(self.app, "slow-reader", http="h11")

    async def _upload(self, request: Request) -> JSONResponse:
        digest = hashlib.sha1()
        async for chunk in request.stream():
            digest.update(chunk)
            self.received += len(chunk)
            await asyncio.sleep(0.0005)
        return JSONResponse({"bytes": self.received, "sha1": digest.hexdigest()})


@pytest.fixture
def slow_reader() -> Any:
    server = _SlowReader()
    server.url = server.http.start()
    yield server
    server.http.stop()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_the_netlify_transport_streams_a_body_with_back_pressure(slow_reader: Any, framing: str) -> None:
    """A streamed body goes to the socket as it is produced, never faster than the server
    reads it: at no time does the sender run far ahead of what the server has read."""
    total, piece = 64 * MIB, random_bytes(MIB, seed=41)
    lead = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal lead
        for produced in range(0, total, MIB):
            lead = max(lead, produced - slow_reader.received)
            yield piece

    async def send() -> tuple[int, bytes]:
        headers = {"content-length": str(total)} if framing == "content-length" else {}
        response = await netlify_api.send("PUT", f"{slow_reader.url}/upload", headers, body(), 60)
        try:
            return response.status, await response.aread()
        finally:
            await response.aclose()

    status, answer = asyncio.run(send())
    expected = hashlib.sha1(piece * 64).hexdigest()
    assert status == 200 and json.loads(answer) == {"bytes": total, "sha1": expected}
    assert lead < 16 * MIB, f"the sender ran {lead / MIB:.0f} MiB ahead of the server"


# ----------------------------------------------------------------------------- big files, end to end


def _piece(index: int) -> bytes:
    return hashlib.shake_256(b"part-%d" % index).digest(MIB)


def test_a_file_of_many_parts_reaches_netlify_without_being_held_in_memory(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES=str(MIB))
    parts = 128
    digest = hashlib.sha1()
    for index in range(parts):
        digest.update(_piece(index))
    sha = digest.hexdigest()
    body = {"project_id": PROJECT, "files": {"/big.bin": sha}}
    push_id = ok(push_env.call("POST", "kaixupush-init", json=body), 201)["push_id"]
    for index in range(parts):
        ok(push_env.chunk(push_id, sha, index, parts, _piece(index)))
    with PeakRss() as rss:
        done = ok(push_env.finish_parts_of(push_id, sha, parts))
    assert done["status"] == "done" and done["bytes"] == parts * MIB
    assert push_env.netlify.uploads()[-1]["bytes"] == parts * MIB and sha in push_env.netlify.sites[SITE]
    assert rss.growth < 32 * MIB, f"RSS grew by {rss.growth / MIB:.0f} MiB sending a {parts} MiB file"


# ----------------------------------------------------------------------------- hostile requests


def _gzip_init(push_env: PushEnv, raw: bytes) -> httpx.Response:
    return push_env.call(
        "POST",
        "kaixupush-init",
        content=gzip.compress(raw),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )


def _bombs(limit: int) -> dict[str, tuple[bytes, int, str]]:
    """Bodies that inflate to just under ``limit`` bytes of JSON shaped to cost memory."""
    many = (limit - 64) // 3
    entries = (limit - 64) // 60
    files = ",".join(f'"/f{i:07d}.html":"{SHA}"' for i in range(entries))
    return {
        "a list of empty objects": (b"[" + b"{}," * many + b"{}]", 400, "INVALID_JSON"),
        "files as a list": (b'{"project_id":"web","files":[' + b"{}," * many + b"{}]}", 400, "BAD_MANIFEST"),
        "a title of nested lists": (b'{"title":' + b"[" * (limit - 64) + b"}", 400, "INVALID_INPUT"),
        "too many files": (f'{{"project_id":"web","files":{{{files}}}}}'.encode(), 413, "MANIFEST_TOO_LARGE"),
    }


def test_hostile_manifests_and_uploads_are_refused_within_a_memory_bound(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES=str(MIB))
    bombs = _bombs(8 * MIB)
    ok(push_env.call("GET", "kaixupush-projects"))  # warm up the connection and the key cache
    push_id = ok(push_env.init({"/a.bin": b"a"}), 201)["push_id"]
    results: list[tuple[str, httpx.Response]] = []

    def send(name: str, raw: bytes) -> None:
        results.append((name, _gzip_init(push_env, raw)))

    with PeakRss() as rss:
        threads = [threading.Thread(target=send, args=(name, raw)) for name, (raw, _, _) in bombs.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        huge = push_env.chunk(push_id, sha1(b"a"), 0, 10_000, random_bytes(MIB, seed=42))
    for name, response in results:
        _, status, code = bombs[name]
        assert (response.status_code, response.json()["code"]) == (status, code), (name, response.text)
    assert huge.status_code == 413 and huge.json()["code"] == "FILE_TOO_LARGE"
    assert push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"] == 1
    assert push_env.db.execute("SELECT count(*) AS n FROM push_parts").fetchone()["n"] == 0
    assert rss.growth < 32 * MIB, f"RSS grew by {rss.growth / MIB:.0f} MiB refusing hostile requests"


def test_a_manifest_is_refused_as_soon_as_its_shape_is_wrong(push_env: PushEnv) -> None:
    """The body is checked while it is inflated: a wrong start is refused before the rest of
    the body (here a truncated gzip stream) is even read."""
    raw = gzip.compress(b'{"files": [' + b"{}," * 1_000_000 + b"{}]}")
    refused = push_env.call(
        "POST",
        "kaixupush-init",
        content=raw[: len(raw) // 2],
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert refused.status_code == 400 and refused.json()["code"] == "BAD_MANIFEST", refused.text
    assert refused.json()["field"] == "files"


def test_the_inflated_manifest_is_bounded_by_what_20000_files_need(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_MANIFEST_MAX_BYTES=str(1 << 30))  # a setting cannot lift the bound
    bound = manifest.MANIFEST_BOUND
    assert bound == manifest.MAX_FILES * (1024 + 40 + 16) + 4096
    padded = b'{"project_id":"web","files":{"/a.html":"' + SHA.encode() + b'"}' + b" " * bound + b"}"
    refused = _gzip_init(push_env, padded)
    assert refused.status_code == 413 and refused.json()["code"] == "BODY_TOO_LARGE", refused.text
    assert refused.json()["limit_bytes"] == bound
    assert push_env.netlify.count("create") == 0
    biggest = {f"/{i:05d}/" + "p" * 1017: sha1(str(i).encode()) for i in range(20)}
    assert all(len(path) == 1024 for path in biggest)  # the longest paths the rules allow
    text = json.dumps({"project_id": PROJECT, "files": biggest}).encode()
    assert len(text) < bound * 20 / manifest.MAX_FILES
    ok(_gzip_init(push_env, text), 201)


# ----------------------------------------------------------------------------- file size


def test_a_file_larger_than_the_limit_is_refused_before_its_bytes(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_MAX_FILE_BYTES="4500")
    data = random_bytes(5500, seed=43)
    init = ok(push_env.init({"/big.bin": data, "/ok.bin": data[:4500]}), 201)
    assert init["max_file_bytes"] == 4500
    refused = push_env.chunk(init["push_id"], sha1(data), 0, 6, data[:1000])
    assert refused.status_code == 413 and refused.json()["code"] == "FILE_TOO_LARGE"
    assert refused.json()["max_file_bytes"] == 4500
    assert push_env.db.execute("SELECT count(*) AS n FROM push_jobs").fetchone()["n"] == 0
    parts = push_env.send_parts(init["push_id"], data[:4500], 1000)  # 4500 bytes: 5 parts, allowed
    assert ok(push_env.finish_parts(init["push_id"], data[:4500], parts))["status"] == "done"
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_MAX_FILE_BYTES="500")  # below one part
    small = ok(push_env.init({"/s.bin": data[:600]}), 201)
    too_big = push_env.upload(small["push_id"], "/s.bin", data[:600])
    assert too_big.status_code == 413 and too_big.json()["code"] == "FILE_TOO_LARGE"


# ----------------------------------------------------------------------------- concurrency guard


def test_concurrent_inits_per_customer_are_limited(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_CONCURRENT_PER_CUSTOMER="2")
    push_env.netlify.slow("create", 0.5, times=10)
    start = threading.Barrier(4)
    results: list[httpx.Response] = []

    def init() -> None:
        start.wait()
        results.append(push_env.init({"/a.html": b"a"}))

    threads = [threading.Thread(target=init) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 201, 429, 429], [r.text for r in results]
    for busy in (r for r in results if r.status_code == 429):
        assert busy.json()["code"] == "PUSH_BUSY" and busy.json()["limit"] == 2
        assert int(busy.headers["retry-after"]) >= 1
    assert push_env.db.execute("SELECT count(*) AS n FROM push_busy").fetchone()["n"] == 0  # all released
    ok(push_env.init({"/a.html": b"a"}), 201)


def test_the_guard_counts_other_processes_and_forgets_dead_ones(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_CONCURRENT_PER_CUSTOMER="2", KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(1500, seed=44)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    for _ in range(2):  # two requests of this customer running in other processes
        push_env.db.execute(
            "INSERT INTO push_busy (customer_id, expires_at) VALUES (%s, now() + interval '1 minute')",
            (push_env.key.customer_id,),
        )
    busy = push_env.finish_parts(push_id, data, parts)
    assert busy.status_code == 429 and busy.json()["code"] == "PUSH_BUSY", busy.text
    assert push_env.init({"/b.html": b"b"}).json()["code"] == "PUSH_BUSY"
    other = push_env.make_key(role="deployer")  # another customer is not held up
    assert push_env.init({"/b.html": b"b"}, key=other).json()["code"] == "PROJECT_NOT_FOUND"
    push_env.db.execute("UPDATE push_busy SET expires_at = now() - interval '1 second'")  # they died
    assert ok(push_env.finish_parts(push_id, data, parts))["status"] == "done"
