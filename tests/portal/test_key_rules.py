"""The narrowing rules on their own: what an account's effective policy lets a key set."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import ApiError
from shared.portal import key_rules

OPEN = {
    "rpm_limit": 120,
    "rpd_limit": None,
    "max_devices_per_key": None,
    "max_concurrent": 32,
    "allowed_providers": None,
    "allowed_models": None,
}
NARROW = {
    **OPEN,
    "max_devices_per_key": 0,  # 0 seats on the account: no limit, as ADMIT reads it
    "allowed_providers": ["openai", "anthropic"],
    "allowed_models": {"openai": ["gpt-4o-mini"], "*": ["claude-3-5-haiku-latest"]},
}


def refused(changes: dict[str, Any], effective: dict[str, Any], require_install_id: bool = False) -> str:
    with pytest.raises(ApiError) as caught:
        key_rules.check_settings(changes, effective, require_install_id)
    assert caught.value.status == 403 and caught.value.code == "BEYOND_PLAN"
    return str(caught.value.extra["field"])


@pytest.mark.parametrize(
    "changes",
    [
        {"rpm_limit": 120, "rpd_limit": 10_000, "max_devices": 50},  # no account limit: any ≥ 1
        {"allowed_providers": ["*"], "allowed_models": {"*": ["*"]}},  # the account allows all
        {"rpm_limit": None, "allowed_models": None},  # null falls back to the account
        {"require_install_id": False},
    ],
)
def test_an_open_account_takes_any_narrowing(changes):
    key_rules.check_settings(changes, OPEN, False)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rpm_limit": 121}, "rpm_limit"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"max_concurrent": 33}, "max_concurrent"),
        ({"rpd_limit": 0}, "rpd_limit"),
    ],
)
def test_limits_may_not_pass_the_account_nor_be_lifted(changes, field):
    assert refused(changes, OPEN) == field


def test_unlimited_seats_on_the_account_allow_any_count():
    key_rules.check_settings({"max_devices": 1_000}, NARROW, False)


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"allowed_providers": ["openai"]}, True),
        ({"allowed_providers": ["gemini"]}, False),
        ({"allowed_providers": ["*"]}, False),
        ({"allowed_models": {"openai": ["gpt-4o-mini"]}}, True),
        ({"allowed_models": {"openai": ["gpt-4o"]}}, False),
        ({"allowed_models": {"anthropic": ["claude-3-5-haiku-latest"]}}, True),  # through the "*" entry
        ({"allowed_models": {"anthropic": ["claude-opus-4"]}}, False),
        ({"allowed_models": {"openai": ["*"]}}, False),
        ({"allowed_models": {"*": ["claude-3-5-haiku-latest"]}}, False),  # speaks for openai too
        ({"allowed_models": {"*": ["*"]}}, False),
    ],
)
def test_allowlists_stay_within_the_accounts(changes, ok):
    if ok:
        key_rules.check_settings(changes, NARROW, False)
    else:
        assert refused(changes, NARROW) in ("allowed_providers", "allowed_models")


def test_an_account_that_requires_install_ids_keeps_them_required():
    assert refused({"require_install_id": False}, OPEN, require_install_id=True) == "require_install_id"
    key_rules.check_settings({"require_install_id": True}, OPEN, True)


@pytest.mark.parametrize(
    ("own", "wanted", "ok"),
    [
        ("owner", "admin", True),
        ("owner", "owner", False),
        ("admin", "admin", True),
        ("admin", "deployer", True),
        ("admin", "owner", False),
    ],
)
def test_roles_up_to_ones_own_and_never_owner(own, wanted, ok):
    if ok:
        key_rules.check_role(wanted, own)
    else:
        with pytest.raises(ApiError) as caught:
            key_rules.check_role(wanted, own)
        assert caught.value.extra["field"] == "role"
