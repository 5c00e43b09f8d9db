"""What a new database starts with: the providers' list prices and a default plan.

The price book is seeded from ``prices.json`` only when it is empty, so an operator's edits
are never overwritten by a new release's file; later list-price changes are the operator's to
make (admin-models), each as a new version. A database without plans gets ``starter``, the
plan new customers join.
"""

from __future__ import annotations

import psycopg

from shared.billing import pricing

_LOCK_ID = 0x4B58_5345  # "KXSE": one seeding at a time
DEFAULT_PLAN = ("starter", 2000)  # name, monthly cap in cents (sql/010_price_book_plans.sql)

_MODEL = (
    "INSERT INTO models (provider, name, mode, max_input_tokens, max_output_tokens, hidden_reasoning) "
    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
)
_NAME = "INSERT INTO model_names (provider, name, model_id) VALUES (%s, %s, %s)"
_PRICE = """
INSERT INTO model_prices (model_id, effective_from, input_nanos, output_nanos, cache_read_nanos,
    cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, long_context_threshold, lc_input_nanos,
    lc_output_nanos, lc_cache_read_nanos, lc_cache_write_5m_nanos, lc_cache_write_1h_nanos, created_by)
VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'seed')
"""


def _price_row(model_id: int, price: pricing.ModelPrice) -> tuple[object, ...]:
    tier = price.long_context
    lc = (
        (tier.input, tier.output, tier.cache_read, tier.cache_write_5m, tier.cache_write_1h)
        if tier
        else (None,) * 5
    )
    base = (price.input, price.output, price.cache_read, price.cache_write_5m, price.cache_write_1h)
    threshold = price.long_context_threshold if tier else None
    return (model_id, *base, price.request, threshold, *lc)


def seed(conn: psycopg.Connection) -> None:
    """Seed what is missing, in one transaction (concurrent migrators serialise)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        if conn.execute("SELECT 1 FROM plans LIMIT 1").fetchone() is None:
            conn.execute(
                "INSERT INTO plans (name, monthly_cap_cents, is_default) VALUES (%s, %s, true)", DEFAULT_PLAN
            )
        if conn.execute("SELECT 1 FROM models LIMIT 1").fetchone() is not None:
            return
        for price in pricing.list_prices():
            limits = (price.mode, price.max_input_tokens, price.max_output_tokens, price.hidden_reasoning)
            row = conn.execute(_MODEL, (price.provider, price.model, *limits)).fetchone()
            assert row is not None
            model_id = row[0]
            names = [(price.provider, name, model_id) for name in (price.model, *price.aliases)]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO model_names (provider, name, model_id) VALUES (%s, %s, %s)", names
                )
            conn.execute(_PRICE, _price_row(model_id, price))
