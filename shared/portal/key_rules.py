"""What a customer may set on its own keys: never more than its account allows.

The gateway resolves a key's setting as "the key's value, else the customer's, else the
plan's" (ADMIT's ``coalesce``), so a key's own value *replaces* the account's: an
allowlist of ``["*"]`` or an RPM of 0 (no limit) on a key would widen what the operator
sold. The operator may do that; a customer may only narrow. These checks are pure: they
take the account's effective policy (``shared.admin.customers.effective``) and the changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import ApiError
from shared.gateway import key_auth, keys

WILDCARD = "*"
# key setting -> the account setting it replaces
_LIMITS = {
    "rpm_limit": "rpm_limit",
    "rpd_limit": "rpd_limit",
    "max_devices": "max_devices_per_key",
    "max_concurrent": "max_concurrent",
}


def _too_wide(field: str, message: str) -> ApiError:
    return ApiError(403, "BEYOND_PLAN", message, field=field)


def check_role(wanted: str, own_role: str) -> None:
    """A session may hand out roles up to its own, and never the master key's."""
    if wanted == keys.MASTER_ROLE or not key_auth.role_at_least(own_role, wanted):
        raise _too_wide("role", f"role may be at most {_highest_grantable(own_role)} for a key you create.")


def _highest_grantable(own_role: str) -> str:
    grantable = [r for r in keys.ROLES if r != keys.MASTER_ROLE and key_auth.role_at_least(own_role, r)]
    return grantable[-1]


def check_may_act_on(key: Mapping[str, Any], own_role: str) -> None:
    """Keys above the session's own role are out of its reach (an admin key cannot rotate the
    master key)."""
    if not key_auth.role_at_least(own_role, key["role"]):
        raise ApiError(403, "FORBIDDEN", f"Key {key['id']} has the {key['role']} role, above yours.")


def _check_limit(field: str, value: int, allowed: Any) -> None:
    if value < 1:
        raise _too_wide(field, f"{field} must be at least 1 (0 would lift the limit your plan sets).")
    if allowed and value > allowed:
        raise _too_wide(field, f"{field} may be at most {allowed}, your account's limit.")


def _check_providers(value: list[str], allowed: list[str] | None) -> None:
    if allowed is None or WILDCARD in allowed:
        return
    extra = [provider for provider in value if provider not in allowed]
    if extra:
        raise _too_wide("allowed_providers", f"Your account does not include {extra[0]}.")


def _listed(allowed: Mapping[str, list[str]], provider: str) -> list[str]:
    return allowed.get(provider) or allowed.get(WILDCARD) or []


def _check_models(value: Mapping[str, list[str]], allowed: Mapping[str, list[str]] | None) -> None:
    if allowed is None:
        return
    for provider, models in value.items():
        if provider == WILDCARD and WILDCARD not in allowed:
            raise _too_wide("allowed_models", 'A "*" provider entry would allow more than your account.')
        # A key's "*" entry speaks for every provider, so it must fit each of the account's.
        for target in allowed if provider == WILDCARD else (provider,):
            listed = _listed(allowed, target)
            extra = [model for model in models if WILDCARD not in listed and model not in listed]
            if extra:
                raise _too_wide("allowed_models", f"Your account does not include {target} {extra[0]}.")


def check_settings(
    changes: Mapping[str, Any], effective: Mapping[str, Any], require_install_id: bool
) -> None:
    """Refuse (403 BEYOND_PLAN, naming the field) any setting that would let the key do more
    than the account: ``effective`` maps each inherited setting to its value in force."""
    for field, account_field in _LIMITS.items():
        if changes.get(field) is not None:
            _check_limit(field, changes[field], effective[account_field])
    if changes.get("allowed_providers") is not None:
        _check_providers(changes["allowed_providers"], effective["allowed_providers"])
    if changes.get("allowed_models") is not None:
        _check_models(changes["allowed_models"], effective["allowed_models"])
    if changes.get("require_install_id") is False and require_install_id:
        raise _too_wide("require_install_id", "Your account requires an install id on every call.")
