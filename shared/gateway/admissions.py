"""ADMIT with group commit (``group_commit``): at concurrency the admissions that arrive while
one is out leave together, one round trip and one transaction for dozens of calls.

A batch runs in customer and key order, so each call names the customer and key its key hash
belongs to (a key never changes customer); ADMIT itself still checks the key on every call.
"""

from __future__ import annotations

from typing import Any

from shared import db
from shared.gateway import group_commit

_ARGUMENTS = {
    "key_hash": "bytea",
    "provider": "text",
    "model": "text",
    "install_id": "text",
    "user_agent": "text",
    "prompt_tokens": "bigint",
    "max_tokens": "bigint",
    "lease_tokens": "bigint",
    "clamp_min": "bigint",
    "embedding": "boolean",
    "default_rpm": "int",
    "default_concurrency": "int",
    "cache_writes": "boolean",
}
ADMIT = db.named_call("kx_admit", **_ARGUMENTS)
ADMIT_MANY = group_commit.batch_call("kx_admit", **_ARGUMENTS)
queue = group_commit.PerLoop(ADMIT, ADMIT_MANY)


async def admit(params: dict[str, Any]) -> dict[str, Any]:
    """ADMIT's row for one call, whose ``params`` also name its key's ``customer_id`` and
    ``api_key_id`` (the batch's order)."""
    row = await queue().submit(params)
    if row is None:
        raise LookupError("ADMIT returned no row")
    return row
