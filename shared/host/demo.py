"""The dev server's demo: the demo model in the price book and a demo customer with a key, so
a new user's first call is admitted, streamed, metered and billed before they have any
provider key (``python -m shared.devserver``; ``--no-demo`` leaves all of it out).

Seeded through the same writes as the admin API (the price book's ``add_model``, the
accounts' customer and key inserts, each audited), in one transaction, and only what is
missing: a later start finds the model and the customer and adds nothing, so an operator's
repricing or a rotated key stays as it is, and no secret is shown twice.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson

from shared import db
from shared.admin import accounts
from shared.billing import price_book
from shared.billing.catalogue import catalogue

PROVIDER = "demo"
MODEL = "kaixu-demo-1"
EMAIL = "demo@example.com"  # "Demo customer": a reserved domain, never a real inbox
KEY_LABEL = "demo"
KEY_FILE = "demo_key"  # in the data folder, beside admin_password
ACTOR = "devserver"
MAX_INPUT_TOKENS = 8_192
MAX_OUTPUT_TOKENS = 1_024
# USD per million tokens: well above list prices on purpose, so that one short answer (about
# 60 words, 60 tokens) costs about a cent and the money figures visibly move.
PRICES = {"input": "20", "output": "200"}
_LOCK = "kx_demo_seed"


@dataclass(frozen=True)
class Seeded:
    """What a start found or made: ``secret`` is the demo key when this start made it."""

    model_added: bool
    customer_id: int
    secret: str | None


async def seed() -> Seeded:
    """Add the demo model and the demo customer with its key, where missing."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
        model_added = await _ensure_model(conn)
        customer_id, secret = await _ensure_customer(conn)
    catalogue.invalidate()  # as an admin's new model: callable from the next request
    return Seeded(model_added, customer_id, secret)


async def _ensure_model(conn: db.Connection) -> bool:
    cur = await conn.execute("SELECT 1 FROM models WHERE provider = %s AND name = %s", (PROVIDER, MODEL))
    if await cur.fetchone() is not None:
        return False  # retired or repriced by the operator: theirs to keep
    when = await price_book.effective_from(conn, {})
    prices = price_book.price_row(PRICES, None)
    limits = (MAX_INPUT_TOKENS, MAX_OUTPUT_TOKENS)
    await price_book.add_model(
        conn, PROVIDER, MODEL, "chat", limits, prices, aliases=[], when=when, actor=ACTOR
    )
    return True


async def _ensure_customer(conn: db.Connection) -> tuple[int, str | None]:
    cur = await conn.execute("SELECT id FROM customers WHERE lower(email) = lower(%s)", (EMAIL,))
    row = await cur.fetchone()
    if row is not None:
        return int(row["id"]), None
    customer, _master, _ = await accounts.insert_customer(conn, EMAIL, actor=ACTOR)
    _key, new = await accounts.insert_sub_key(conn, customer["id"], actor=ACTOR, label=KEY_LABEL)
    return int(customer["id"]), new.secret


def keep_key(data_dir: Path, secret: str) -> Path:
    """Keep the new demo key in the data folder (owner-only), as the admin password is kept."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def price_line() -> str:
    """The demo price as the README and the dev server say it."""
    return f"${Decimal(PRICES['input'])} / ${Decimal(PRICES['output'])} per million input / output tokens"


def curl_line(origin: str, authorization: str) -> str:
    """One shell line that streams a demo answer through gateway-stream."""
    body = {"provider": PROVIDER, "model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}
    return " ".join(
        [
            "curl -N",
            f"{origin}/.netlify/functions/gateway-stream",
            f'-H "authorization: Bearer {authorization}"',
            "-H 'content-type: application/json'",
            f"-d {shlex.quote(orjson.dumps(body).decode())}",
        ]
    )
