"""Shared fixtures and helpers for the KaixuPush tests.

A test module makes the fixtures its own by assigning them (pytest finds fixtures by name
in the module): ``push_env = kaixupush_support.push_env`` and likewise ``netlify``,
``netlify_server``, ``own_token``; the admin client is ``tests.support.admin.admin``.
``push_env`` arranges a customer, a deployer key, a project an admin registered pointing
at a site the fake Netlify knows, and points the gateway at the fake.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.support.database import IssuedKey
from tests.support.fakes.netlify_api import DEFAULT_TOKEN, FakeNetlify, serve_fake_netlify

SITE = "site-main"
ENCRYPTION_KEYS = "k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PROJECT = "web"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@pytest.fixture(scope="session")
def netlify_server() -> Iterator[FakeNetlify]:
    yield from serve_fake_netlify()


@pytest.fixture
def netlify(netlify_server: FakeNetlify, configure: Callable[..., Any]) -> FakeNetlify:
    """The fake, reset, with the gateway pointed at it and fast polling/backoff settings."""
    netlify_server.reset()
    netlify_server.add_site(SITE)
    configure(
        NETLIFY_API_BASE=netlify_server.api_base,
        NETLIFY_AUTH_TOKEN=DEFAULT_TOKEN,
        KAIXUPUSH_POLL_INTERVAL_S="0.02",
        KAIXUPUSH_JOB_BACKOFF_S="0.05",
        KAIXUPUSH_WORKER_SECRET="worker-secret",
        KAIXUPUSH_DEPLOYS_PER_MIN="20",
        KAIXUPUSH_STATUS_CACHE_S="0",  # every refresh asks the fake (tests of the cache set it)
        KAIXUPUSH_NETLIFY_CALLS_PER_MIN="0",  # no budget (the budget's own tests set one)
        KAIXUPUSH_CONCURRENT_PER_CUSTOMER="16",  # tests of other limits send many inits at once
    )
    return netlify_server


@dataclass
class PushEnv:
    client: httpx.Client
    key: IssuedKey
    db: psycopg.Connection
    netlify: FakeNetlify
    make_key: Callable[..., IssuedKey]

    def call(self, method: str, fn: str, key: IssuedKey | None = None, **kw: Any) -> httpx.Response:
        headers = {**(key or self.key).auth, **kw.pop("headers", {})}
        return self.client.request(method, fn, headers=headers, **kw)

    def init(
        self,
        files: dict[str, bytes],
        key: IssuedKey | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> httpx.Response:
        manifest = {path: sha1(data) for path, data in files.items()}
        body = {"project_id": PROJECT, "files": manifest, **fields}
        return self.call("POST", "kaixupush-init", key, json=body, headers=headers or {})

    def upload(self, push_id: str, path: str, data: bytes, **headers: str) -> httpx.Response:
        return self.call(
            "PUT",
            "kaixupush-upload",
            params={"push_id": push_id, "path": path},
            content=data,
            headers={"x-content-sha1": sha1(data), **headers},
        )

    def chunk(
        self, push_id: str, digest: str, part: int, parts: int, data: bytes, **headers: str
    ) -> httpx.Response:
        params = {"push_id": push_id, "sha1": digest, "part": part, "parts": parts}
        return self.call("PUT", "kaixupush-upload-chunk", params=params, content=data, headers=headers)

    def send_parts(self, push_id: str, data: bytes, part_bytes: int) -> int:
        """Every part of ``data``; the number of parts."""
        parts = -(-len(data) // part_bytes)
        for part in range(parts):
            piece = data[part * part_bytes : (part + 1) * part_bytes]
            response = self.chunk(push_id, sha1(data), part, parts, piece, **{"x-content-sha1": sha1(piece)})
            assert response.status_code == 200, response.text
        return parts

    def finish_parts(self, push_id: str, data: bytes, parts: int) -> httpx.Response:
        return self.finish_parts_of(push_id, sha1(data), parts)

    def finish_parts_of(self, push_id: str, digest: str, parts: int) -> httpx.Response:
        return self.call(
            "POST", "kaixupush-upload-complete", json={"push_id": push_id, "sha1": digest, "parts": parts}
        )

    def complete(self, push_id: str, wait: float = 5) -> httpx.Response:
        return self.call("POST", "kaixupush-complete", json={"push_id": push_id, "wait": wait})

    def worker(self) -> httpx.Response:
        return self.client.post("kaixupush-worker", headers={"x-kaixu-worker-secret": "worker-secret"})


@pytest.fixture
def push_env(
    client: httpx.Client, db: psycopg.Connection, netlify: FakeNetlify, make_key: Callable[..., IssuedKey]
) -> PushEnv:
    key = make_key(role="deployer")
    db.execute(
        "INSERT INTO push_projects (customer_id, project_id, name, netlify_site_id, registered_by) "
        "VALUES (%s, %s, %s, %s, 'admin')",
        (key.customer_id, PROJECT, "Website", SITE),
    )
    return PushEnv(client, key, db, netlify, make_key)


@pytest.fixture
def own_token(
    admin: httpx.Client, netlify: FakeNetlify, configure: Callable[..., Any]
) -> Callable[[int, str], None]:
    """``own_token(customer_id, token)`` gives the customer its own Netlify token (set by an
    admin, accepted by the fake); the test module must also take ``admin`` as a fixture."""
    configure(KAIXU_ENCRYPTION_KEYS=ENCRYPTION_KEYS)

    def give(customer_id: int, token: str) -> None:
        ok(admin.post("admin-netlify-token", json={"customer_id": customer_id, "token": token}))
        netlify.tokens.add(token)

    return give


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Incompressible test content, quick to make even for tens of megabytes."""
    return os.urandom(size) if seed == 0 else hashlib.shake_256(str(seed).encode()).digest(size)


class PeakRss:
    """The highest resident set size of this process (where the test server and the fakes
    run) while the block runs, sampled every few milliseconds: ``growth`` is that peak above
    the RSS at entry, in bytes."""

    def __init__(self, every_s: float = 0.002) -> None:
        self._process = psutil.Process()
        self._every_s = every_s
        self._stop = threading.Event()
        self.baseline = self.peak = 0

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._every_s)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline
