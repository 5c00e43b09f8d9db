"""Model names as the ecosystem writes them, and the models a key may call.

``anthropic/claude-sonnet-4-5`` names the provider; a bare ``gpt-4o-mini`` is resolved by the
model catalogue when exactly one provider lists it (a name or an alias). ``GET /v1/models`` lists
what the calling key may use: the catalogue filtered by the same allowlists ADMIT applies
(``sql/functions/admit.sql``: the key's list replaces the customer's, the customer's the
plan's; ``*`` allows all).
"""

from __future__ import annotations

from typing import Any

from shared import db, providers
from shared.billing.catalogue import ModelInfo, UnknownModel, catalogue
from shared.errors import ApiError, bad_request
from shared.gateway import keys

_ALLOWLISTS = """
SELECT coalesce(k.allowed_providers, c.allowed_providers, p.allowed_providers) AS providers,
       coalesce(k.allowed_models, c.allowed_models, p.allowed_models) AS models,
       k.revoked_at IS NOT NULL AS revoked, c.is_active, extract(epoch FROM k.created_at)::bigint AS created
FROM api_keys k JOIN customers c ON c.id = k.customer_id JOIN plans p ON p.id = c.plan_id
WHERE k.key_hash = %s
"""


def resolve(name: Any, field: str = "model") -> tuple[str, str]:
    """(provider, model) for a model name, or the 404 the client's SDK maps to NotFound."""
    if not isinstance(name, str) or not name.strip():
        raise bad_request(field, f"{field} must name a model, e.g. openai/gpt-4o-mini.")
    name = name.strip()
    provider, slash, model = name.partition("/")
    if slash and provider in providers.PROVIDERS:
        found = [provider] if catalogue.find(provider, model) is not None else []
    else:
        model, found = name, catalogue.providers_of(name)
    if len(found) > 1:
        choices = ", ".join(f"{p}/{model}" for p in found)
        raise bad_request(field, f"Model {name} is offered by several providers; name one: {choices}.")
    if not found:
        raise UnknownModel(404, "MODEL_NOT_FOUND", f"The model {name} does not exist or is not offered here.")
    return found[0], model


def info(provider: str, model: str) -> ModelInfo:
    """The catalogue entry of a model :func:`resolve` found."""
    found = catalogue.find(provider, model)
    if found is None:
        raise UnknownModel(404, "MODEL_NOT_FOUND", f"The model {provider}/{model} is not offered here.")
    return found


def _allows(allowed_providers: Any, allowed_models: Any, provider: str, model: str) -> bool:
    if allowed_providers is not None and not {provider, "*"} & set(allowed_providers):
        return False
    if allowed_models is None:
        return True
    listed = allowed_models.get(provider, allowed_models.get("*"))
    return listed is not None and ("*" in listed or model in listed)


async def for_key(secret: str) -> list[dict[str, Any]]:
    """The models the key may call, as ``provider/model`` with the key's creation time."""
    row = await db.fetch_one(_ALLOWLISTS, (keys.hash_key(secret),))
    if row is None:
        raise ApiError(401, "INVALID_KEY", "The key is not a valid Kaixu key.")
    if row["revoked"]:
        raise ApiError(401, "KEY_REVOKED", "This key has been revoked.")
    if not row["is_active"]:
        raise ApiError(403, "CUSTOMER_DISABLED", "This customer account is disabled.")
    await catalogue.ready()
    return [
        {"id": f"{m.provider}/{m.model}", "provider": m.provider, "created": row["created"]}
        for m in catalogue.models()
        if _allows(row["providers"], row["models"], m.provider, m.model)
        and providers.is_configured(m.provider)
    ]
