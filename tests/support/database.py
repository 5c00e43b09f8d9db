"""The test database: arranging rows the way the system would have left them, and waiting for
work done after a response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from shared import db as shared_db
from shared.billing.catalogue import catalogue
from shared.gateway import keys


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def load_catalogue() -> None:
    """Read the model catalogue into this process, as a server does before its first call, so
    a test can parse a compatible body (which names models) without one."""

    async def load() -> None:
        try:
            await catalogue.ready()
        finally:
            await shared_db.close()

    asyncio.run(load())


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> object:
    """Poll until ``predicate`` is truthy (for work done after a response, e.g. monitor rows)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@dataclass
class IssuedKey:
    customer_id: int
    key_id: int
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret}"}


def hold_stale_reservation(db: psycopg.Connection, key: IssuedKey) -> None:
    """A call admitted an hour ago whose process died before SETTLE: its 40-token prompt is
    worth 6,000 nanos at gpt-4o-mini's list price, and with all of its 8,323 output tokens
    reserved (600 each; a call not streamed, or a stream's lease grown that far) it holds
    5,000,000 - 200 = 4,999,800 nanos; the test sells at cost."""
    admitted = db.execute(
        "SELECT * FROM kx_admit(p_key_hash => %s, p_provider => 'openai', p_model => 'gpt-4o-mini',"
        " p_install_id => NULL, p_user_agent => NULL, p_prompt_tokens => 40, p_max_tokens => 8323,"
        " p_lease_tokens => 8323, p_clamp_min => 8323, p_embedding => false, p_default_rpm => 100,"
        " p_default_concurrency => 0, p_cache_writes => false)",
        (keys.hash_key(key.secret),),
    ).fetchone()
    assert admitted["status"] == 0
    db.execute("UPDATE reservations SET created_at = now() - interval '1 hour'")


def usage_rows(db: Any, key: IssuedKey) -> list[dict[str, Any]]:
    """What was billed to ``key``, oldest first."""
    return db.execute(
        "SELECT provider, model, input_tokens, output_tokens, cost_nanos, outcome FROM usage_events "
        "WHERE api_key_id = %s ORDER BY id",
        (key.key_id,),
    ).fetchall()
