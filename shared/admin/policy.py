"""Policy fields: what a customer, or one of its keys, may do, validated and applied once.

Customer PATCH, key creation and key PATCH share these checks, so a malformed allowlist is a
400 naming the field everywhere (never a silent "allow all", reference weak point 19), and
every change lands in the audit log with its before and after values. ``null`` clears a
nullable field: on a key that means "inherit the customer's value"; on a customer, "the
plan's value"; on a plan, "no limit" or "no allowlist". Empty allowlists are refused because
their meaning (nothing allowed, or everything?) is exactly the ambiguity the original system
got wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from psycopg import sql
from psycopg.types.json import Jsonb

from shared import audit, db, fields
from shared.errors import bad_request
from shared.gateway.keys import ROLES
from shared.provider_names import PROVIDER_NAMES

PROVIDERS = PROVIDER_NAMES
WILDCARD = "*"
MAX_CAP_CENTS = 10**9
MAX_LIMIT = 10**7
MAX_MODEL_NAME = 200

Check = Callable[[str, Any], Any]


class Field(NamedTuple):
    """How to check one field's non-null value, and whether ``null`` is allowed."""

    check: Check
    nullable: bool


def _whole(maximum: int) -> Check:
    def check(name: str, value: Any) -> int:
        return fields.int_field({name: value}, name, minimum=0, maximum=maximum)

    return check


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_request(name, f"{name} must be true or false.")
    return value


def _text(max_length: int) -> Check:
    """Free text (spaces allowed), trimmed, printable, not empty."""

    def check(name: str, value: Any) -> str:
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > max_length or not text.isprintable():
            raise bad_request(name, f"{name} must be 1 to {max_length} printable characters.")
        return text

    return check


def _role(name: str, value: Any) -> str:
    if value not in ROLES:
        raise bad_request(name, f"{name} must be one of {', '.join(ROLES)}.")
    return str(value)


def _providers(name: str, value: Any) -> list[str]:
    allowed = (*PROVIDERS, WILDCARD)
    if not isinstance(value, list) or not value or any(item not in allowed for item in value):
        raise bad_request(
            name,
            f"{name} must be a non-empty list drawn from {', '.join(allowed)} "
            "(or null to allow every provider).",
        )
    return list(dict.fromkeys(value))


def _model_names(name: str, provider: str, models: Any) -> list[str]:
    if (
        not isinstance(models, list)
        or not models
        or any(not isinstance(m, str) or not m.strip() or len(m.strip()) > MAX_MODEL_NAME for m in models)
    ):
        raise bad_request(
            name,
            f'{name}["{provider}"] must be a non-empty list of model names (or ["*"] for every model).',
        )
    return list(dict.fromkeys(m.strip() for m in models))


def _models(name: str, value: Any) -> dict[str, list[str]]:
    allowed = (*PROVIDERS, WILDCARD)
    if not isinstance(value, dict) or not value:
        raise bad_request(
            name,
            f'{name} must be an object like {{"openai": ["gpt-4o-mini"], "*": ["*"]}} '
            "(or null to allow every model).",
        )
    unknown = [provider for provider in value if provider not in allowed]
    if unknown:
        raise bad_request(name, f"{name} has key {unknown[0]!r}; keys must be one of {', '.join(allowed)}.")
    return {provider: _model_names(name, provider, models) for provider, models in value.items()}


_CAP = Field(_whole(MAX_CAP_CENTS), nullable=False)
_LIMIT = Field(_whole(MAX_LIMIT), nullable=True)
_PROVIDER_LIST = Field(_providers, nullable=True)
_MODEL_MAP = Field(_models, nullable=True)

_PLAN_ID = Field(_whole(2**62), nullable=False)

# The settings a plan gives its customers; NULL on a customer means "the plan's value" (the
# cap has no such meaning on a plan: every plan has one).
INHERITED = (
    "monthly_cap_cents",
    "rpm_limit",
    "rpd_limit",
    "max_devices_per_key",
    "max_concurrent",
    "allowed_providers",
    "allowed_models",
)

CUSTOMER_POLICY: Mapping[str, Field] = {
    "plan_id": _PLAN_ID,
    "monthly_cap_cents": Field(_CAP.check, nullable=True),
    "is_active": Field(_boolean, nullable=False),
    "max_devices_per_key": _LIMIT,
    "require_install_id": Field(_boolean, nullable=False),
    "allowed_providers": _PROVIDER_LIST,
    "allowed_models": _MODEL_MAP,
    "rpm_limit": _LIMIT,
    "rpd_limit": _LIMIT,
    "max_concurrent": _LIMIT,
}

PLAN_SETTINGS: Mapping[str, Field] = {
    "name": Field(_text(40), nullable=False),
    "monthly_cap_cents": _CAP,
    "rpm_limit": _LIMIT,
    "rpd_limit": _LIMIT,
    "max_devices_per_key": _LIMIT,
    "max_concurrent": _LIMIT,
    "allowed_providers": _PROVIDER_LIST,
    "allowed_models": _MODEL_MAP,
    "included_credit_cents": Field(_whole(MAX_CAP_CENTS), nullable=False),
    "stripe_topups": Field(_boolean, nullable=False),
    "prepaid": Field(_boolean, nullable=False),
}

# Key overrides: null means "use the customer's value".
KEY_SETTINGS: Mapping[str, Field] = {
    "label": Field(_text(60), nullable=True),
    "role": Field(_role, nullable=False),
    "monthly_cap_cents": Field(_CAP.check, nullable=True),
    "rpm_limit": _LIMIT,
    "rpd_limit": _LIMIT,
    "max_devices": _LIMIT,
    "max_concurrent": _LIMIT,
    "require_install_id": Field(_boolean, nullable=True),
    "allowed_providers": _PROVIDER_LIST,
    "allowed_models": _MODEL_MAP,
}


def clean(body: Mapping[str, Any], spec: Mapping[str, Field]) -> dict[str, Any]:
    """The body's fields, each checked against ``spec``; any unknown field is a 400."""
    fields.reject_unknown(dict(body), spec)
    cleaned: dict[str, Any] = {}
    for name, value in body.items():
        field = spec[name]
        if value is None:
            if not field.nullable:
                raise bad_request(name, f"{name} cannot be null.")
            cleaned[name] = None
        else:
            cleaned[name] = field.check(name, value)
    return cleaned


def db_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values ready for psycopg: the model allowlist is jsonb, the rest adapts as is."""
    return {
        name: Jsonb(value) if name == "allowed_models" and value is not None else value
        for name, value in values.items()
    }


_TABLES = ("customers", "api_keys", "plans")


async def apply(
    conn: db.Connection,
    table: str,
    before: dict[str, Any],
    changes: Mapping[str, Any],
    *,
    actor: str,
    action: str,
    target: str,
) -> dict[str, Any]:
    """Write ``changes`` to the row ``before`` (already locked by the caller) and audit the
    fields that really changed with their old and new values. Returns the row after."""
    if table not in _TABLES:
        raise ValueError(f"policy changes do not apply to {table}")
    changed = {name: value for name, value in changes.items() if before[name] != value}
    if not changed:
        return before
    assignments: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in changed
    ]
    if "updated_at" in before:
        assignments.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE {} SET {} WHERE id = {} RETURNING *").format(
        sql.Identifier(table), sql.SQL(", ").join(assignments), sql.Placeholder("_id")
    )
    cur = await conn.execute(query, {**db_values(changed), "_id": before["id"]})
    after = await db.one(cur)
    details = {"before": {n: before[n] for n in changed}, "after": {n: after[n] for n in changed}}
    await audit.record(conn, actor, action, target, details)
    return after
