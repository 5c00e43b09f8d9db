"""SETTLE with group commit (``group_commit``): a busy process commits dozens of bills in one
WAL flush, and every caller is answered only once its own bill is durable. A batch the database
could not take is retried by its callers, each on its own (their retry loop in the pipeline).
"""

from __future__ import annotations

from shared import db
from shared.gateway import group_commit

_ARGUMENTS = {
    "reservation_id": "bigint",
    "customer_id": "bigint",
    "api_key_id": "bigint",
    "month": "text",
    "provider": "text",
    "model": "text",
    "install_id": "text",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cost_nanos": "bigint",
    "sell_nanos": "bigint",
    "price_version_id": "bigint",
    "sell_version_id": "bigint",
    "outcome": "text",
    "estimated": "boolean",
    "request_id": "text",
    "function": "text",
    "app": "text",
    "build": "text",
    "status": "int",
    "duration_ms": "real",
    "summary": "text",
    "user_agent": "text",
    "clamped_to": "bigint",
    "stopped_code": "text",
}
SETTLE = db.named_call("kx_settle", **_ARGUMENTS)

SETTLE_MANY = group_commit.batch_call("kx_settle", **_ARGUMENTS)
queue = group_commit.PerLoop(SETTLE, SETTLE_MANY)
