"""Every field of every admin write: a bad value is a 400 naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import admin as admin_support
from tests.support.admin import new_customer, new_key, written_rows

admin = admin_support.admin  # the fixture

LONG = "x" * 400

# field -> bad values, for the policy fields that customers and keys share
CAP = [-1, 10**9 + 1, "100", 1.5, True]
LIMIT = [-1, 10**7 + 1, "10", 2.5, False]
BOOLEAN = ["true", 1, 0]
PROVIDERS = ["openai", [], ["openai", "azure"], [1], {"openai": True}]
MODELS = [[], {}, {"azure": ["x"]}, {"openai": "gpt-4o"}, {"openai": []}, {"openai": [""]}, {"openai": [5]},
          {"*": ["m" * 201]}, "gpt-4o"]  # fmt: skip


def _cases() -> list[tuple[str, str, str, list[Any]]]:
    """(method, target, field, bad values); target names what the request addresses."""
    cases: list[tuple[str, str, str, list[Any]]] = []

    def add(method: str, target: str, field: str, values: list[Any]) -> None:
        cases.append((method, target, field, values))

    add("POST", "new-customer", "email", [None, "not-an-email", 42, "a@b", LONG + "@example.com"])
    add("POST", "new-customer", "plan_id", [None, "", -1, 5.5, True, "starter", 999_999])
    add("POST", "new-customer", "monthly_cap_cents", CAP)
    add("POST", "new-customer", "rpm_limit", LIMIT)
    add("POST", "new-customer", "is_active", [False])  # a policy field, but not one of creation
    add("PATCH", "customer", "plan_id", [None, "", 999_999])
    add("PATCH", "customer", "monthly_cap_cents", CAP)
    add("PATCH", "customer", "is_active", [None, *BOOLEAN])
    add("PATCH", "customer", "max_devices_per_key", LIMIT)
    add("PATCH", "customer", "require_install_id", [None, *BOOLEAN])
    add("PATCH", "customer", "allowed_providers", PROVIDERS)
    add("PATCH", "customer", "allowed_models", MODELS)
    add("PATCH", "customer", "rpm_limit", LIMIT)
    add("PATCH", "customer", "rpd_limit", LIMIT)
    add("PATCH", "customer", "email", ["new@example.com"])  # not changeable here
    add("POST", "new-key", "customer_id", [None, "1", 0, True, 1.0])
    add("POST", "new-key", "label", ["", 5, "x" * 61])
    add("POST", "new-key", "role", [None, "root", 1])
    add("POST", "new-key", "monthly_cap_cents", CAP)
    add("POST", "new-key", "rpm_limit", LIMIT)
    add("POST", "new-key", "rpd_limit", LIMIT)
    add("POST", "new-key", "max_devices", LIMIT)
    add("POST", "new-key", "require_install_id", BOOLEAN)
    add("POST", "new-key", "allowed_providers", PROVIDERS)
    add("POST", "new-key", "allowed_models", MODELS)
    add("POST", "new-key", "kind", ["master"])
    add("PATCH", "key", "label", ["", 5])
    add("PATCH", "key", "role", [None, "superuser"])
    add("PATCH", "key", "monthly_cap_cents", CAP)
    add("PATCH", "key", "rpm_limit", LIMIT)
    add("PATCH", "key", "rpd_limit", LIMIT)
    add("PATCH", "key", "max_devices", LIMIT)
    add("PATCH", "key", "require_install_id", BOOLEAN)
    add("PATCH", "key", "allowed_providers", PROVIDERS)
    add("PATCH", "key", "allowed_models", MODELS)
    add("PATCH", "key", "customer_id", [2])  # a key never moves to another customer
    add("PATCH", "key", "key_hash", ["00"])
    add("POST", "device", "api_key_id", [None, "abc", 0, True])
    add("POST", "device", "install_id", [None, "", " ", "x" * 129, 5, "tab\there"])
    add("POST", "device", "revoked", [True])
    add("POST", "topup", "customer_id", [None, "1", 0, True])
    add("POST", "topup", "amount_cents", [None, 0, -5, "5", 1.5, 10**9 + 1, False])
    add("POST", "topup", "month", ["2026-13", "202601", 202601, "2026-1"])
    add("POST", "topup", "source", ["stripe"])
    add("POST", "checkout", "customer_id", [None, "1", 0])
    add("POST", "checkout", "amount_cents", [None, 0, "500", 10**9 + 1])
    add("POST", "checkout", "month", ["2026-13", "2020-01"])
    add("POST", "checkout", "success_url", ["https://evil.example.com"])
    return cases


def _request(
    target: str, field: str, value: Any, customer_id: int, key_id: int
) -> tuple[str, dict[str, Any]]:
    """The function and request options that send ``field: value`` on top of a valid body."""
    valid: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "new-customer": ("admin-customers", {}, {"email": "new@example.com"}),
        "customer": ("admin-customers", {"id": customer_id}, {}),
        "new-key": ("admin-keys", {}, {"customer_id": customer_id}),
        "key": ("admin-keys", {"id": key_id}, {}),
        "device": ("admin-devices", {"action": "revoke"}, {"api_key_id": key_id, "install_id": "d1"}),
        "topup": ("admin-topups", {}, {"customer_id": customer_id, "amount_cents": 100}),
        "checkout": ("admin-stripe-checkout", {}, {"customer_id": customer_id, "amount_cents": 100}),
    }
    function, params, body = valid[target]
    return function, {"params": params, "json": {**body, field: value}}


@pytest.fixture
def world(admin, configure, db) -> tuple[int, int]:
    # Stripe is configured but unreachable: validation must fail before any call to it.
    configure(STRIPE_SECRET_KEY="sk_test_unused", STRIPE_API_BASE="http://127.0.0.1:9")
    customer = new_customer(admin)
    key = new_key(admin, customer["id"])
    db.execute(
        "INSERT INTO key_devices (api_key_id, install_id, customer_id) VALUES (%s, 'd1', %s)",
        (key["id"], customer["id"]),
    )
    return customer["id"], key["id"]


@pytest.mark.parametrize(
    ("method", "target", "field", "values"), _cases(), ids=[f"{c[0]} {c[1]}.{c[2]}" for c in _cases()]
)
def test_a_bad_field_is_400_naming_it_and_writes_nothing(admin, db, world, method, target, field, values):
    before = written_rows(db)
    for value in values:
        function, options = _request(target, field, value, *world)
        response = admin.request(method, function, **options)
        assert response.status_code == 400, (value, response.text)
        body = response.json()
        assert body["code"] == "INVALID_INPUT" and body["field"] == field, (value, body)
        assert field in body["error"]
    assert written_rows(db) == before


BAD_QUERIES = [
    ("PATCH", "admin-customers", {}, "id"),
    ("PATCH", "admin-customers", {"id": "abc"}, "id"),
    ("PATCH", "admin-keys", {}, "id"),
    ("POST", "admin-keys", {"action": "rotate"}, "id"),
    ("POST", "admin-keys", {"id": 1, "action": "explode"}, "action"),
    ("DELETE", "admin-keys", {}, "id"),
    ("POST", "admin-devices", {}, "action"),
    ("POST", "admin-devices", {"action": "revoke", "id": "no-colon"}, "id"),
    ("POST", "admin-devices", {"action": "revoke", "id": "x:d1"}, "id"),
    ("GET", "admin-devices", {}, "customer_id"),
    ("GET", "admin-devices", {"api_key_id": ""}, "customer_id"),  # empty is absent, not a 500
]


def test_a_bad_query_parameter_is_400_naming_it(admin, world):
    for method, function, params, field in BAD_QUERIES:
        body = {"label": "x"} if method == "PATCH" else None
        response = admin.request(method, function, params=params, json=body)
        assert response.status_code == 400 and response.json()["field"] == field, (params, response.text)


def test_a_bad_idempotency_key_is_400_and_credits_nothing(admin, db, world):
    body = {"customer_id": world[0], "amount_cents": 100}
    for header in (b"", b"k" * 256, "naïve".encode()):
        response = admin.post("admin-topups", json=body, headers={"Idempotency-Key": header})
        assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key", header
    assert db.execute("SELECT count(*) AS n FROM topups").fetchone()["n"] == 0


def test_a_body_that_is_not_a_json_object_is_400(admin, world):
    for function in (
        "admin-customers",
        "admin-keys",
        "admin-topups",
        "admin-stripe-checkout",
        "admin-devices",
    ):
        for content in (b"not json", b"[1, 2]"):
            response = admin.post(
                function,
                params={"action": "revoke"} if function == "admin-devices" else None,
                content=content,
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 400 and response.json()["code"] == "INVALID_JSON", (
                function,
                content,
            )
        if function != "admin-devices":  # a device may be named in the query string instead
            response = admin.post(function, content=b"")
            assert response.status_code == 400 and response.json()["code"] == "INVALID_JSON", function
