"""admin-models: the price book the operator edits: models, their cost prices, retirement.

A price is never edited in place: a change adds a version effective from a moment (now, or
later; never earlier, so nothing already billed is repriced), and ADMIT bills each call at
the version in force when it was admitted. Prices travel as USD per million tokens, as the
providers list them, in decimal strings so that ``0.075`` stays exactly that; inside they are
whole nano-dollars per token, so a price must be a multiple of 0.001 USD per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from starlette.responses import Response

from shared import audit, db, fields, money, params
from shared.billing.catalogue import catalogue
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx, JSONResponse
from shared.provider_names import PROVIDER_NAMES

KINDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
PROVIDERS = PROVIDER_NAMES
MODES = ("chat", "embedding")
MAX_USD_PER_MTOK = Decimal(100_000)
MAX_REQUEST_USD = Decimal(100)
MAX_TOKENS = 100_000_000
_PER_MTOK = Decimal(money.NANOS_PER_TOKEN_PER_USD_PER_MTOK)
_PER_USD = Decimal(money.NANOS_PER_USD)
_NAME_CHARS = 200

_MODEL_COLUMNS = (
    "m.id, m.provider, m.name AS model, m.mode, m.max_input_tokens, m.max_output_tokens, m.hidden_reasoning, "
    "m.created_at, "
    "m.updated_at, m.retired_at, "
    "(SELECT array_agg(n.name ORDER BY n.name) FROM model_names n"
    " WHERE n.model_id = m.id AND n.name <> m.name) AS aliases"
)
_VERSIONS = (
    "SELECT * FROM model_prices WHERE model_id = ANY(%s) ORDER BY model_id, effective_from DESC, id DESC"
)
_INSERT_PRICE = """
INSERT INTO model_prices (model_id, effective_from, input_nanos, output_nanos, cache_read_nanos,
    cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, long_context_threshold, lc_input_nanos,
    lc_output_nanos, lc_cache_read_nanos, lc_cache_write_5m_nanos, lc_cache_write_1h_nanos, created_by)
VALUES (%(model_id)s, %(effective_from)s, %(input_nanos)s, %(output_nanos)s, %(cache_read_nanos)s,
    %(cache_write_5m_nanos)s, %(cache_write_1h_nanos)s, %(request_nanos)s, %(long_context_threshold)s,
    %(lc_input_nanos)s, %(lc_output_nanos)s, %(lc_cache_read_nanos)s, %(lc_cache_write_5m_nanos)s,
    %(lc_cache_write_1h_nanos)s, %(created_by)s)
RETURNING *
"""


# -- money in and out --------------------------------------------------------------------------


def usd_per_mtok(nanos_per_token: int | None) -> str | None:
    """Whole nanos per token as the decimal USD-per-million-tokens string the API shows."""
    if nanos_per_token is None:
        return None
    return _plain(Decimal(nanos_per_token) / _PER_MTOK)


def usd(nanos: int) -> str:
    """Nanos as a decimal USD string (``"0.000000001"``), exact."""
    return _plain(Decimal(nanos) / _PER_USD)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _decimal(name: str, value: Any, maximum: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(name, f'{name} must be a number of USD, like 2.5 or "0.075".')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad_request(name, f'{name} must be a number of USD, like 2.5 or "0.075".') from None
    if not amount.is_finite() or amount < 0 or amount > maximum:
        raise bad_request(name, f"{name} must be between 0 and {maximum} USD.")
    return amount


def rate_nanos(name: str, value: Any) -> int:
    """USD per million tokens -> whole nanos per token, or a 400 naming the field."""
    exact = _decimal(name, value, MAX_USD_PER_MTOK) * _PER_MTOK
    if exact != exact.to_integral_value():
        raise bad_request(
            name, f"{name} must be a multiple of 0.001 USD per million tokens (one nano-dollar a token)."
        )
    return int(exact)


def request_nanos(name: str, value: Any) -> int:
    exact = _decimal(name, value, MAX_REQUEST_USD) * _PER_USD
    if exact != exact.to_integral_value():
        raise bad_request(name, f"{name} must be a whole number of nano-dollars (at most 9 decimals).")
    return int(exact)


def rates_view(row: Mapping[str, Any], prefix: str = "") -> dict[str, str | None]:
    return {kind: usd_per_mtok(row[f"{prefix}{kind}_nanos"]) for kind in KINDS}


def _price_view(row: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "version_id": row["id"],
        "effective_from": row["effective_from"],
        **rates_view(row),
        "request_usd": usd(row["request_nanos"]),
        "long_context": None,
        "nanos_per_token": {kind: row[f"{kind}_nanos"] for kind in KINDS},
        "created_by": row["created_by"],
        "created_at": row["created_at"],
    }
    if row["long_context_threshold"] is not None:
        view["long_context"] = {"threshold": row["long_context_threshold"], **rates_view(row, "lc_")}
    return view


# -- reading ----------------------------------------------------------------------------------


async def _versions(conn: db.Connection, model_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    cur = await conn.execute(_VERSIONS, (model_ids,))
    versions: dict[int, list[dict[str, Any]]] = {model_id: [] for model_id in model_ids}
    for row in await cur.fetchall():
        versions[row["model_id"]].append(row)
    return versions


def configured(provider: str) -> bool:
    """Whether this gateway can call ``provider`` now: its key is set (the demo provider: on the
    dev server). The adapters, and their HTTP client, load on first use, not at a cold start."""
    from shared import providers

    return providers.is_configured(provider)


def _model_view(model: dict[str, Any], versions: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The model with the price in force now and any scheduled after it, and whether a call to
    it would reach its provider here (``configured``)."""
    in_force = next((v for v in versions if v["effective_from"] <= now), None)
    return {
        **model,
        "configured": configured(model["provider"]),
        "aliases": model["aliases"] or [],
        "price": _price_view(in_force) if in_force else None,
        "scheduled": [_price_view(v) for v in reversed(versions) if v["effective_from"] > now],
    }


async def _models(conn: db.Connection, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    cur = await conn.execute(f"SELECT {_MODEL_COLUMNS}, now() AS now FROM models m {where}", args)
    rows = await cur.fetchall()
    versions = await _versions(conn, [row["id"] for row in rows])
    return [_model_view(row, versions[row["id"]], row.pop("now")) for row in rows]


async def _one(conn: db.Connection, model_id: int, *, with_history: bool = True) -> dict[str, Any]:
    items = await _models(conn, "WHERE m.id = %s", (model_id,))
    item = found(items[0] if items else None, f"Model {model_id}")
    if with_history:
        item["versions"] = [_price_view(v) for v in (await _versions(conn, [model_id]))[model_id]]
    return item


async def get(ctx: Ctx) -> dict[str, Any]:
    """GET: the book (``?provider=``, ``?include_retired=1``); ``?id=``: one model with every
    price version, newest first."""
    model_id = params.int_param(ctx, "id")
    async with db.connection() as conn:
        if model_id is not None:
            return {"item": await _one(conn, model_id)}
        provider = ctx.query.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise bad_request("provider", f"provider must be one of {', '.join(PROVIDERS)}.")
        retired = ctx.query.get("include_retired") in ("1", "true")
        where = (
            "WHERE (%s::text IS NULL OR m.provider = %s) AND (%s OR m.retired_at IS NULL) "
            "ORDER BY m.provider, m.name"
        )
        return {"items": await _models(conn, where, (provider, provider, retired))}


# -- writing ----------------------------------------------------------------------------------


def _model_name(name: str, value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > _NAME_CHARS or not text.isprintable() or any(ch.isspace() for ch in text):
        raise bad_request(name, f"{name} must be 1 to {_NAME_CHARS} printable characters without spaces.")
    return text


def _aliases(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        raise bad_request("aliases", "aliases must be a list of at most 50 model names.")
    return list(dict.fromkeys(_model_name("aliases", item) for item in value))


def _limit(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    return fields.int_field(
        body, name, minimum=1 if name == "max_input_tokens" else 0, maximum=MAX_TOKENS, required=required
    )


def _tier(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("prices.long_context", "prices.long_context must be an object or null.")
    fields.reject_unknown(value, ("threshold", *KINDS))
    threshold = fields.int_field(value, "threshold", maximum=MAX_TOKENS)
    rates = _kinds_nanos(value, "prices.long_context.")
    return {"long_context_threshold": threshold, **{f"lc_{kind}_nanos": rates[kind] for kind in KINDS}}


def _kinds_nanos(value: dict[str, Any], where: str) -> dict[str, int]:
    """Per-token rates; input and output are required, a cache kind left out costs the input rate
    (OpenAI and Gemini have no cache writes)."""
    for kind in ("input", "output"):
        if value.get(kind) is None:
            raise bad_request(f"{where}{kind}", f"{where}{kind} is required (USD per million tokens).")
    rates = {kind: rate_nanos(f"{where}{kind}", value[kind]) for kind in KINDS if value.get(kind) is not None}
    return {kind: rates.get(kind, rates["input"]) for kind in KINDS}


def price_row(prices: Any, base: Mapping[str, Any] | None, where: str = "prices.") -> dict[str, Any]:
    """The columns of a new price version: ``prices`` over ``base`` (the version in force), so
    an update may name only what changes."""
    if not isinstance(prices, dict):
        raise bad_request("prices", 'prices must be an object like {"input": "2.5", "output": "10"}.')
    fields.reject_unknown(prices, (*KINDS, "request_usd", "long_context"))
    merged: dict[str, Any] = {}
    if base is not None:
        merged.update({kind: usd_per_mtok(base[f"{kind}_nanos"]) for kind in KINDS})
    merged.update({kind: prices[kind] for kind in KINDS if kind in prices})
    row: dict[str, Any] = {f"{kind}_nanos": nanos for kind, nanos in _kinds_nanos(merged, where).items()}
    request = prices.get("request_usd", None if base is None else usd(base["request_nanos"]))
    row["request_nanos"] = 0 if request is None else request_nanos(f"{where}request_usd", request)
    tier = prices.get("long_context", "unchanged")
    if tier == "unchanged" and base is not None and base["long_context_threshold"] is not None:
        row.update(
            {name: base[name] for name in base if name.startswith("lc_") or name == "long_context_threshold"}
        )
    elif tier not in ("unchanged", None):
        row.update(_tier(tier))
    else:
        row.update({"long_context_threshold": None, **{f"lc_{kind}_nanos": None for kind in KINDS}})
    return row


async def effective_from(conn: db.Connection, body: dict[str, Any]) -> datetime:
    """When a change takes effect: now, or a later moment; never earlier (a minute of clock
    difference is forgiven and taken as now)."""
    value = body.get("effective_from")
    cur = await conn.execute("SELECT now() AS now")
    now: datetime = (await db.one(cur))["now"]
    if value is None:
        return now
    if not isinstance(value, str):
        raise bad_request(
            "effective_from", "effective_from must be an ISO-8601 time like 2026-12-01T00:00:00Z."
        )
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            "effective_from", "effective_from must be an ISO-8601 time like 2026-12-01T00:00:00Z."
        ) from None
    if moment.tzinfo is None:
        raise bad_request("effective_from", "effective_from must say its time zone (Z for UTC).")
    if (now - moment).total_seconds() > 60:
        raise bad_request(
            "effective_from", "effective_from may not be in the past: prices never change retroactively."
        )
    return max(moment, now)


async def _add_version(
    conn: db.Connection, model_id: int, row: dict[str, Any], when: datetime, actor: str
) -> dict[str, Any]:
    cur = await conn.execute(
        _INSERT_PRICE, {**row, "model_id": model_id, "effective_from": when, "created_by": actor}
    )
    return await db.one(cur)


async def _add_names(conn: db.Connection, provider: str, model_id: int, names: list[str]) -> None:
    try:
        async with conn.transaction():
            for name in names:
                await conn.execute(
                    "INSERT INTO model_names (provider, name, model_id) VALUES (%s, %s, %s)",
                    (provider, name, model_id),
                )
    except psycopg.errors.UniqueViolation:
        raise ApiError(
            409, "MODEL_EXISTS", f"{provider} already has a model or alias named {name}."
        ) from None


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(name, f"{name} must be true or false.")
    return value


async def create(ctx: Ctx) -> Response:
    """POST {provider, model, aliases?, mode?, max_input_tokens, max_output_tokens,
    hidden_reasoning?, prices, effective_from?}: a new model and its first price version (201).
    ``hidden_reasoning``: the model thinks before it writes without being asked, and bills that
    thinking as output without streaming it, so its calls reserve all of max_tokens."""
    body = await ctx.json_object()
    fields.reject_unknown(
        body,
        (
            "provider",
            "model",
            "aliases",
            "mode",
            "max_input_tokens",
            "max_output_tokens",
            "hidden_reasoning",
            "prices",
            "effective_from",
        ),
    )
    provider = body.get("provider")
    if provider not in PROVIDERS:
        raise bad_request("provider", f"provider must be one of {', '.join(PROVIDERS)}.")
    name = _model_name("model", body.get("model"))
    aliases = [alias for alias in _aliases(body.get("aliases", [])) if alias != name]
    mode = body.get("mode", "chat")
    if mode not in MODES:
        raise bad_request("mode", "mode must be chat or embedding.")
    limits = (
        _limit(body, "max_input_tokens", required=True),
        _limit(body, "max_output_tokens", required=True),
    )
    hidden_reasoning = _flag(body, "hidden_reasoning")
    prices = price_row(body.get("prices"), None)
    async with db.connection() as conn, conn.transaction():
        when = await effective_from(conn, body)
        model_id = await add_model(
            conn,
            provider,
            name,
            mode,
            limits,
            prices,
            aliases=aliases,
            when=when,
            actor=str(ctx.actor),
            hidden_reasoning=bool(hidden_reasoning),
        )
        item = await _one(conn, model_id)
    catalogue.invalidate()
    return JSONResponse({"item": item}, status_code=201)


async def add_model(
    conn: db.Connection,
    provider: str,
    name: str,
    mode: str,
    limits: tuple[int | None, int | None],
    prices: dict[str, Any],
    *,
    aliases: list[str],
    when: datetime,
    actor: str,
    hidden_reasoning: bool = False,
) -> int:
    """Insert a checked model, its names and its first price version (``price_row``), audited,
    in the caller's transaction: the admin API's create and the dev server's demo model."""
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO models (provider, name, mode, max_input_tokens, max_output_tokens, "
                "hidden_reasoning) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (provider, name, mode, *limits, hidden_reasoning),
            )
            model_id: int = (await db.one(cur))["id"]
    except psycopg.errors.UniqueViolation:
        raise ApiError(409, "MODEL_EXISTS", f"{provider} already has a model named {name}.") from None
    await _add_names(conn, provider, model_id, [name, *aliases])
    version = await _add_version(conn, model_id, prices, when, actor)
    details = {"provider": provider, "model": name, "price_version_id": version["id"]}
    await audit.record(conn, actor, "model.create", f"model:{model_id}", details)
    return model_id


async def update(ctx: Ctx) -> dict[str, Any]:
    """PATCH ?id= {aliases?, max_input_tokens?, max_output_tokens?, hidden_reasoning?, prices?,
    effective_from?, retired: false?}: new limits, names or reasoning flag at once; new prices
    as a version from ``effective_from``; ``retired: false`` offers a retired model again."""
    model_id = params.int_param(ctx, "id", required=True)
    body = await ctx.json_object()
    fields.reject_unknown(
        body,
        (
            "aliases",
            "max_input_tokens",
            "max_output_tokens",
            "hidden_reasoning",
            "prices",
            "effective_from",
            "retired",
        ),
    )
    if not set(body) - {"effective_from"}:
        raise bad_request("body", "Send at least one field to change.")
    if "retired" in body and body["retired"] is not False:
        raise bad_request("retired", "retired may only be false here; DELETE retires a model.")
    if "effective_from" in body and "prices" not in body:
        raise bad_request("effective_from", "effective_from dates a price change: send prices with it.")
    limits: dict[str, int | None] = {
        name: _limit(body, name, required=True)
        for name in ("max_input_tokens", "max_output_tokens")
        if name in body
    }
    hidden_reasoning = _flag(body, "hidden_reasoning")
    actor = str(ctx.actor)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT * FROM models WHERE id = %s FOR UPDATE", (model_id,))
        model = found(await cur.fetchone(), f"Model {model_id}")
        changes: dict[str, Any] = {}
        if limits or "retired" in body:
            await conn.execute(
                "UPDATE models SET max_input_tokens = coalesce(%s, max_input_tokens), "
                "max_output_tokens = coalesce(%s, max_output_tokens), "
                "retired_at = CASE WHEN %s THEN NULL ELSE retired_at END, updated_at = now() WHERE id = %s",
                (
                    limits.get("max_input_tokens"),
                    limits.get("max_output_tokens"),
                    "retired" in body,
                    model_id,
                ),
            )
            changes.update(limits)
            if "retired" in body:
                changes["retired"] = False
        if hidden_reasoning is not None:
            await conn.execute(
                "UPDATE models SET hidden_reasoning = %s, updated_at = now() WHERE id = %s",
                (hidden_reasoning, model_id),
            )
            changes["hidden_reasoning"] = hidden_reasoning
        if "aliases" in body:
            aliases = [a for a in _aliases(body["aliases"]) if a != model["name"]]
            await conn.execute(
                "DELETE FROM model_names WHERE model_id = %s AND name <> %s", (model_id, model["name"])
            )
            await _add_names(conn, model["provider"], model_id, aliases)
            changes["aliases"] = aliases
        if "prices" in body:
            when = await effective_from(conn, body)
            base = await _in_force(conn, model_id)
            version = await _add_version(conn, model_id, price_row(body["prices"], base), when, actor)
            changes["price_version_id"] = version["id"]
            changes["effective_from"] = when.isoformat()
        await audit.record(conn, actor, "model.update", f"model:{model_id}", changes)
        item = await _one(conn, model_id)
    catalogue.invalidate()
    return {"item": item}


async def _in_force(conn: db.Connection, model_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT * FROM model_prices WHERE model_id = %s AND effective_from <= now() "
        "ORDER BY effective_from DESC, id DESC LIMIT 1",
        (model_id,),
    )
    row: dict[str, Any] | None = await cur.fetchone()
    return row


async def retire(ctx: Ctx) -> dict[str, Any]:
    """DELETE ?id=: the model is no longer offered (calls get 409 UNPRICED_MODEL); its prices
    and the usage billed at them stay. Retiring a retired model changes nothing."""
    model_id = params.int_param(ctx, "id", required=True)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE models SET retired_at = coalesce(retired_at, now()), updated_at = now() WHERE id = %s "
            "RETURNING retired_at",
            (model_id,),
        )
        found(await cur.fetchone(), f"Model {model_id}")
        await audit.record(conn, str(ctx.actor), "model.retire", f"model:{model_id}", {})
        item = await _one(conn, model_id)
    catalogue.invalidate()
    return {"item": item}
