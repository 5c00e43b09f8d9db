"""The price book, plans and sell prices, through HTTP: what a call costs the operator and what
it sells for, version by version."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb

from shared.billing import pricing
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, new_customer, ok
from tests.support.calls import body
from tests.support.database import wait_for

admin = admin_support.admin  # the fixture

ACME = {
    "provider": "openai",
    "model": "acme-large",
    "aliases": ["acme-large-2026-12-01"],
    "max_input_tokens": 100_000,
    "max_output_tokens": 4_000,
    "prices": {"input": "1.234", "output": "9.877"},
}


def _call(client: httpx.Client, key: str, model: str = "acme-large", **changes: Any) -> httpx.Response:
    return client.post(
        "gateway-chat",
        json=body("openai", model=model, **changes),
        headers={"authorization": f"Bearer {key}"},
    )


def _events(db) -> list[dict[str, Any]]:
    return db.execute(
        "SELECT model, input_tokens, output_tokens, cost_nanos, sell_nanos, price_version_id,"
        " sell_version_id FROM usage_events ORDER BY id"
    ).fetchall()


def _plan(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    return ok(admin.post("admin-plans", json={"monthly_cap_cents": 5000, **fields}), 201)["item"]


def test_the_book_is_seeded_from_the_list_prices(admin):
    items = ok(admin.get("admin-models", params={"provider": "openai"}))["items"]
    mini = next(item for item in items if item["model"] == "gpt-4o-mini")
    listed = pricing.lookup("openai", "gpt-4o-mini")
    assert mini["price"]["input"] == "0.15" and mini["price"]["output"] == "0.6"
    assert mini["price"]["nanos_per_token"]["input"] == listed.input == 150
    assert mini["aliases"] == ["gpt-4o-mini-2024-07-18"] and mini["retired_at"] is None
    assert mini["hidden_reasoning"] is False
    assert next(item for item in items if item["model"] == "o3")["hidden_reasoning"] is True
    long_context = next(
        item for item in ok(admin.get("admin-models"))["items"] if item["model"] == "gemini-2.5-pro"
    )
    assert long_context["price"]["long_context"]["threshold"] == 200_000


def test_a_price_change_bills_calls_before_and_after_at_their_own_versions(admin, client, db, upstreams):
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    key = new_customer(admin)["key"]
    upstreams.script("openai", input_tokens=1_000, output_tokens=100)
    assert _call(client, key).status_code == 200
    changed = ok(admin.patch("admin-models", params={"id": model["id"]}, json={"prices": {"output": "20"}}))
    assert _call(client, key, model="acme-large-2026-12-01").status_code == 200
    first, second = _events(db)
    assert first["cost_nanos"] == 1_000 * 1_234 + 100 * 9_877 == second["cost_nanos"] - 100 * (20_000 - 9_877)
    assert first["price_version_id"] == model["price"]["version_id"]
    assert second["price_version_id"] == changed["item"]["price"]["version_id"] != first["price_version_id"]
    assert changed["item"]["price"]["input"] == "1.234"  # what the change did not name is kept
    assert [v["output"] for v in changed["item"]["versions"]] == ["20", "9.877"]
    assert [row["details"]["model"] for row in audit_rows(db, "model.create")] == ["acme-large"]
    assert audit_rows(db, "model.update")[0]["details"]["price_version_id"] == second["price_version_id"]


def test_a_version_id_handed_out_again_is_billed_at_its_new_row(admin, client, db, upstreams):
    """The gateway reads each version once and keeps it; a database restored from a backup
    hands the same ids out again for other rows, and calls are billed at the rows they name."""
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    rule = {"customer_id": (customer := new_customer(admin))["id"], "markup_pct": "10"}
    sell_id = ok(admin.post("admin-sell-prices", json=rule), 201)["item"]["id"]
    upstreams.script("openai", input_tokens=1_000, output_tokens=100)
    assert _call(client, customer["key"]).status_code == 200
    version_id = model["price"]["version_id"]
    with db.transaction():  # what a restore and a change made after it leave under the same ids
        db.execute("UPDATE usage_events SET price_version_id = NULL, sell_version_id = NULL")
        db.execute(
            "UPDATE model_prices SET output_nanos = 20000, created_at = clock_timestamp() WHERE id = %s",
            (version_id,),
        )
        db.execute(
            "UPDATE sell_prices SET markup_bp = 5000, created_at = clock_timestamp() WHERE id = %s",
            (sell_id,),
        )
    assert _call(client, customer["key"]).status_code == 200
    first, second = _events(db)
    assert first["cost_nanos"] == 1_000 * 1_234 + 100 * 9_877
    assert first["sell_nanos"] == pricing.marked_up(first["cost_nanos"], 1_000)
    assert second["cost_nanos"] == 1_000 * 1_234 + 100 * 20_000
    assert second["sell_nanos"] == pricing.marked_up(second["cost_nanos"], 5_000)
    assert (second["price_version_id"], second["sell_version_id"]) == (version_id, sell_id)


def test_a_scheduled_price_waits_for_its_moment(admin, client, db, upstreams):
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    later = {"prices": {"input": "5"}, "effective_from": "2099-01-01T00:00:00Z"}
    item = ok(admin.patch("admin-models", params={"id": model["id"]}, json=later))["item"]
    assert item["price"]["input"] == "1.234" and [s["input"] for s in item["scheduled"]] == ["5"]
    upstreams.script("openai", input_tokens=10, output_tokens=0)
    assert _call(client, new_customer(admin)["key"]).status_code == 200
    assert _events(db)[0]["cost_nanos"] == 10 * 1_234


def test_a_retired_model_is_refused_and_can_come_back(admin, client, db, upstreams):
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    key = new_customer(admin)["key"]
    assert ok(admin.delete("admin-models", params={"id": model["id"]}))["item"]["retired_at"]
    refused = _call(client, key)
    assert refused.status_code == 409 and refused.json()["code"] == "UNPRICED_MODEL"
    assert "acme-large" not in {m["model"] for m in ok(admin.get("admin-models"))["items"]}
    ok(admin.patch("admin-models", params={"id": model["id"]}, json={"retired": False}))
    assert _call(client, key).status_code == 200
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prices": {"input": "0.0001", "output": "1"}}, "prices.input"),  # finer than a nano a token
        ({"prices": {"input": -1, "output": "1"}}, "prices.input"),
        ({"prices": {"input": "abc", "output": "1"}}, "prices.input"),
        ({"prices": {"input": True, "output": "1"}}, "prices.input"),
        ({"prices": {"input": "1"}}, "prices.output"),
        ({"prices": {"input": "1", "output": "1", "bogus": 1}}, "bogus"),
        ({"prices": {"input": "1", "output": "1", "request_usd": "0.0000000001"}}, "prices.request_usd"),
        ({"prices": []}, "prices"),
        ({"provider": "mistral"}, "provider"),
        ({"model": "has space"}, "model"),
        ({"model": ""}, "model"),
        ({"mode": "image"}, "mode"),
        ({"max_input_tokens": 0}, "max_input_tokens"),
        ({"max_output_tokens": "9"}, "max_output_tokens"),
        ({"hidden_reasoning": "yes"}, "hidden_reasoning"),
        ({"aliases": "x"}, "aliases"),
        ({"effective_from": "2001-01-01T00:00:00Z"}, "effective_from"),
        ({"effective_from": "tomorrow"}, "effective_from"),
        ({"effective_from": "2099-01-01T00:00:00"}, "effective_from"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_model_is_a_400_naming_the_field_and_writes_nothing(admin, db, change, field):
    response = admin.post("admin-models", json={**ACME, **change})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "INVALID_INPUT" and error["field"] == field and error["request_id"]
    assert db.execute("SELECT count(*) AS n FROM models WHERE name = 'acme-large'").fetchone()["n"] == 0


def test_model_conflicts_and_unknown_ids(admin, db):
    ok(admin.post("admin-models", json=ACME), 201)
    again = admin.post("admin-models", json={**ACME, "model": "acme-2", "aliases": ["gpt-4o-mini"]})
    assert again.status_code == 409 and again.json()["code"] == "MODEL_EXISTS"
    assert db.execute("SELECT count(*) AS n FROM models WHERE name = 'acme-2'").fetchone()["n"] == 0
    for response in (
        admin.get("admin-models", params={"id": 999_999}),
        admin.patch("admin-models", params={"id": 999_999}, json={"prices": {"input": "1"}}),
        admin.delete("admin-models", params={"id": 999_999}),
    ):
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert (
        db.execute("SELECT count(*) AS n FROM model_prices WHERE created_by <> 'seed'").fetchone()["n"] == 1
    )
    assert admin.patch("admin-models", params={"id": 1}, json={}).status_code == 400
    assert admin.patch("admin-models", params={"id": 1}, json={"retired": True}).status_code == 400


# -- markup ------------------------------------------------------------------------------------

AWKWARD_COSTS = [0, 1, 3, 5, 7, 999_999, 1_234_567, 7_654_321, 2**40 + 1]
MARKUPS_BP = [0, 1, 333, 3_100, 4_999, 5_000, 9_999, -5_000, -10_000, 1_000_000]


def test_markup_is_rounded_half_up_once_and_sql_agrees(db):
    assert pricing.marked_up(1, 5_000) == 2  # 1.5 nanos: half up
    assert pricing.marked_up(1, 4_999) == 1  # 1.4999
    assert pricing.marked_up(3, -5_000) == 2  # 1.5
    assert pricing.marked_up(7_654_321, 3_100) == 10_027_161  # 10,027,160.51
    assert pricing.marked_up(999_999, 3_100) == 1_309_999  # 1,309,998.69
    for cost in AWKWARD_COSTS:
        for bp in MARKUPS_BP:
            exact = cost * (10_000 + bp)
            expected = exact // 10_000 + (1 if exact % 10_000 >= 5_000 else 0)
            assert pricing.marked_up(cost, bp) == expected
            sql = db.execute(
                "SELECT kx_sell(%s, ROW(1, 1, NULL, NULL, now(), 'markup', %s, NULL, NULL, NULL, NULL, NULL,"
                " NULL, 'test', now())::sell_prices, 0, 0) AS sell",
                (cost, bp),
            ).fetchone()["sell"]
            assert sql == expected, (cost, bp)


def test_plan_markup_customer_override_and_a_fixed_model_price(admin, client, db, upstreams):
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    plan = _plan(admin, name="pro", markup_pct=31)
    on_plan = new_customer(admin, "plan@example.com", plan_id=plan["id"])
    own = new_customer(admin, "own@example.com", plan_id=plan["id"])
    rule = {"customer_id": own["id"], "markup_pct": "12.5"}
    ok(admin.post("admin-sell-prices", json=rule), 201)
    fixed = {"customer_id": own["id"], "model_id": model["id"], "fixed": {"input": "2", "output": "10"}}
    fixed_rule = ok(admin.post("admin-sell-prices", json=fixed), 201)["item"]
    upstreams.script("openai", input_tokens=1_001, output_tokens=77)
    assert _call(client, on_plan["key"]).status_code == 200
    assert _call(client, own["key"], model="gpt-4o-mini").status_code == 200
    assert _call(client, own["key"]).status_code == 200
    plan_call, own_markup, own_fixed = _events(db)
    cost = 1_001 * 1_234 + 77 * 9_877
    assert (plan_call["cost_nanos"], plan_call["sell_nanos"]) == (cost, pricing.marked_up(cost, 3_100))
    mini = 1_001 * 150 + 77 * 600
    assert (own_markup["cost_nanos"], own_markup["sell_nanos"]) == (mini, pricing.marked_up(mini, 1_250))
    assert (own_fixed["cost_nanos"], own_fixed["sell_nanos"]) == (cost, 1_001 * 2_000 + 77 * 10_000)
    assert own_fixed["sell_version_id"] == fixed_rule["id"]
    customer = ok(admin.get("admin-customers", params={"id": own["id"]}))["item"]
    assert customer["effective"]["markup_pct"] == {"value": "12.5", "source": "customer"}
    customer = ok(admin.get("admin-customers", params={"id": on_plan["id"]}))["item"]
    assert customer["effective"]["markup_pct"] == {"value": "31", "source": "plan"}
    spent = db.execute(
        "SELECT spent_nanos, cost_nanos FROM monthly_usage WHERE customer_id = %s", (own["id"],)
    )
    assert spent.fetchone() == {
        "spent_nanos": own_markup["sell_nanos"] + own_fixed["sell_nanos"],
        "cost_nanos": mini + cost,
    }


def test_an_override_ended_with_inherit_falls_back_to_the_plan(admin, client, db, upstreams):
    plan = _plan(admin, name="pro", markup_pct=20)
    customer = new_customer(admin, plan_id=plan["id"])
    ok(admin.post("admin-sell-prices", json={"customer_id": customer["id"], "markup_pct": 50}), 201)
    ok(admin.post("admin-sell-prices", json={"customer_id": customer["id"], "inherit": True}), 201)
    upstreams.script("openai", input_tokens=100, output_tokens=10)
    assert _call(client, customer["key"], model="gpt-4o-mini").status_code == 200
    event = _events(db)[0]
    assert event["sell_nanos"] == pricing.marked_up(100 * 150 + 10 * 600, 2_000)
    rules = ok(admin.get("admin-sell-prices", params={"customer_id": customer["id"]}))["items"]
    assert [r["kind"] for r in rules] == ["inherit", "markup"]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"markup_pct": "12.345"}, "markup_pct"),
        ({"markup_pct": -101}, "markup_pct"),
        ({"markup_pct": "lots"}, "markup_pct"),
        ({"markup_pct": 10, "inherit": True}, "markup_pct"),
        ({}, "markup_pct"),
        ({"fixed": {"input": "1", "output": "2"}}, "model_id"),
        ({"inherit": False}, "inherit"),
        ({"markup_pct": 10, "model_id": 999_999}, "model_id"),
        ({"markup_pct": 10, "plan_id": 1}, "plan_id"),
        ({"markup_pct": 10, "effective_from": "2000-01-01T00:00:00Z"}, "effective_from"),
    ],
)
def test_a_bad_sell_rule_is_a_400_and_writes_nothing(admin, db, rule, field):
    customer = new_customer(admin)
    response = admin.post("admin-sell-prices", json={"customer_id": customer["id"], **rule})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert db.execute("SELECT count(*) AS n FROM sell_prices").fetchone()["n"] == 0


def test_sell_rules_of_another_tenant_or_nobody_are_404(admin, db):
    for scope in ({"customer_id": 999_999}, {"plan_id": 999_999}):
        assert admin.post("admin-sell-prices", json={**scope, "markup_pct": 5}).status_code == 404
        assert admin.get("admin-sell-prices", params=scope).status_code == 404
    assert db.execute("SELECT count(*) AS n FROM sell_prices").fetchone()["n"] == 0


# -- plans -------------------------------------------------------------------------------------


def test_a_plan_change_reaches_customers_without_overrides_and_not_those_with(admin, client, db, upstreams):
    plan = _plan(admin, name="team", rpm_limit=500, allowed_providers=["openai"])
    follows = new_customer(admin, "follows@example.com", plan_id=plan["id"])
    keeps = new_customer(admin, "keeps@example.com", plan_id=plan["id"], monthly_cap_cents=700)
    view = ok(admin.get("admin-customers", params={"id": follows["id"]}))["item"]["effective"]
    assert view["monthly_cap_cents"] == {"value": 5000, "source": "plan"}
    assert view["rpd_limit"] == {"value": None, "source": "default"}
    ok(admin.patch("admin-plans", params={"id": plan["id"]}, json={"monthly_cap_cents": 9000}))
    upstreams.script("openai", input_tokens=10, output_tokens=5)
    assert _call(client, follows["key"], model="gpt-4o-mini").json()["month"]["cap_cents"] == 9000
    assert _call(client, keeps["key"], model="gpt-4o-mini").json()["month"]["cap_cents"] == 700
    kept = ok(admin.get("admin-customers", params={"id": keeps["id"]}))["item"]["effective"]
    assert kept["monthly_cap_cents"] == {"value": 700, "source": "customer"}
    # The plan's allowlist applies to its customers; clearing the customer's cap follows the plan.
    refused = client.post(
        "gateway-chat", json=body("anthropic"), headers={"authorization": f"Bearer {keeps['key']}"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "PROVIDER_NOT_ALLOWED"
    ok(admin.patch("admin-customers", params={"id": keeps["id"]}, json={"monthly_cap_cents": None}))
    assert _call(client, keeps["key"], model="gpt-4o-mini").json()["month"]["cap_cents"] == 9000
    assert audit_rows(db, "plan.update")[0]["details"] == {
        "before": {"monthly_cap_cents": 5000},
        "after": {"monthly_cap_cents": 9000},
    }


def test_a_prepaid_plan_calls_on_credit_only(admin, client, db, upstreams):
    plan = _plan(admin, name="prepaid", prepaid=True)
    customer = new_customer(admin, plan_id=plan["id"])
    refused = _call(client, customer["key"], model="gpt-4o-mini")
    assert refused.status_code == 402 and refused.json()["code"] == "NO_CREDIT"
    ok(admin.post("admin-topups", json={"customer_id": customer["id"], "amount_cents": 100}), 201)
    upstreams.script("openai", input_tokens=10, output_tokens=5)
    assert _call(client, customer["key"], model="gpt-4o-mini").status_code == 200
    ok(
        admin.patch(
            "admin-plans", params={"id": plan["id"]}, json={"prepaid": False, "included_credit_cents": 5}
        )
    )
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 1


def test_stripe_top_ups_follow_the_plan(admin, db, configure):
    configure(STRIPE_SECRET_KEY="sk_test_never_reached")  # refused before Stripe is asked
    plan = _plan(admin, name="invoice-only", stripe_topups=False)
    customer = new_customer(admin, plan_id=plan["id"])
    response = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 500})
    assert response.status_code == 409 and response.json()["code"] == "TOPUPS_NOT_ALLOWED"
    assert db.execute("SELECT count(*) AS n FROM topups").fetchone()["n"] == 0


def test_plans_list_default_delete_and_conflicts(admin, db):
    starter = ok(admin.get("admin-plans"))["items"][0]
    assert starter["name"] == "starter" and starter["is_default"] and starter["markup_pct"] == "0"
    pro = _plan(admin, name="Pro", markup_pct=31)
    assert _plan is not None and pro["markup_pct"] == "31" and pro["customers"] == 0
    duplicate = admin.post("admin-plans", json={"name": "pro", "monthly_cap_cents": 1})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "DUPLICATE_PLAN"
    ok(admin.patch("admin-plans", params={"id": pro["id"]}, json={"is_default": True}))
    assert new_customer(admin)["plan_id"] == pro["id"]
    assert admin.delete("admin-plans", params={"id": pro["id"]}).json()["code"] == "PLAN_IS_DEFAULT"
    ok(admin.patch("admin-plans", params={"id": starter["id"]}, json={"is_default": True}))
    assert admin.delete("admin-plans", params={"id": pro["id"]}).json()["code"] == "PLAN_IN_USE"
    spare = _plan(admin, name="spare")
    assert ok(admin.delete("admin-plans", params={"id": spare["id"]})) == {"deleted": spare["id"]}
    for response in (
        admin.get("admin-plans", params={"id": 999_999}),
        admin.patch("admin-plans", params={"id": 999_999}, json={"rpm_limit": 1}),
        admin.delete("admin-plans", params={"id": 999_999}),
    ):
        assert response.status_code == 404
    assert len(audit_rows(db, "plan.delete")) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"monthly_cap_cents": -1}, "monthly_cap_cents"),
        ({"monthly_cap_cents": None}, "monthly_cap_cents"),
        ({"rpm_limit": "5"}, "rpm_limit"),
        ({"allowed_providers": []}, "allowed_providers"),
        ({"allowed_models": {"openai": []}}, "allowed_models"),
        ({"included_credit_cents": 1.5}, "included_credit_cents"),
        ({"prepaid": "yes"}, "prepaid"),
        ({"markup_pct": "1.001"}, "markup_pct"),
        ({"is_default": False}, "is_default"),
        ({"effective_from": "2099-01-01T00:00:00Z"}, "effective_from"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_plan_is_a_400_and_writes_nothing(admin, db, fields, field):
    response = admin.post("admin-plans", json={"name": "new", "monthly_cap_cents": 100, **fields})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert db.execute("SELECT count(*) AS n FROM plans").fetchone()["n"] == 1


def test_a_customer_on_a_plan_that_does_not_exist_is_a_400(admin, db):
    response = admin.post("admin-customers", json={"email": "x@example.com", "plan_id": 999_999})
    assert response.status_code == 400 and response.json()["field"] == "plan_id"
    customer = new_customer(admin)
    response = admin.patch("admin-customers", params={"id": customer["id"]}, json={"plan_id": 999_999})
    assert response.status_code == 400 and response.json()["field"] == "plan_id"
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == 1


@pytest.mark.parametrize("cache_writes", [False, True])
def test_admits_worst_case_in_sql_is_the_python_bound_for_every_seeded_model(db, cache_writes):
    """ADMIT reserves ``kx_cost`` (SQL), of the price raised by ``kx_cache_writing`` when the
    prompt may write the cache; the gateway bills ``pricing.cost_nanos`` (Python): at the same
    tokens, the SQL bound is the Python bound, tiers included."""
    priced = "kx_cache_writing(mp)" if cache_writes else "mp"
    for price in pricing.list_prices():
        for prompt, output in ((1, 0), (1_000, 77), (200_000, 5), (200_001, 1_234), (999_999, 0)):
            sql = db.execute(
                f"SELECT kx_cost({priced}, %s, %s) AS nanos FROM model_prices mp"
                " JOIN models m ON m.id = mp.model_id WHERE m.provider = %s AND m.name = %s",
                (prompt, output, price.provider, price.model),
            ).fetchone()["nanos"]
            bound = pricing.worst_case_nanos(price, prompt, output, cache_writes=cache_writes)
            assert sql == bound, (price.model, prompt, output)


def test_a_fixed_sell_price_reserves_a_prompt_that_may_write_the_cache_at_its_dearest_rate(db):
    rates = {"input_nanos": 100, "output_nanos": 1_000, "cache_read_nanos": 10, "request_nanos": 7}
    for (five_minutes, an_hour), dearest in (((125, 200), 200), ((300, 250), 300), ((50, 80), 100)):
        writes = {"cache_write_5m_nanos": five_minutes, "cache_write_1h_nanos": an_hour}
        rule = {**rates, **writes, "kind": "fixed"}
        sells = db.execute(
            "SELECT kx_sell(0, s, 40, 3) AS plain, kx_sell(0, kx_cache_writing(s), 40, 3) AS writing"
            " FROM jsonb_populate_record(NULL::sell_prices, %s) s",
            (Jsonb(rule),),
        ).fetchone()
        assert sells == {"plain": 40 * 100 + 3 * 1_000 + 7, "writing": 40 * dearest + 3 * 1_000 + 7}
    markup = db.execute(  # a markup rule has no rates of its own: the cost decides
        "SELECT kx_sell(1000, kx_cache_writing(s), 40, 3) AS n"
        " FROM jsonb_populate_record(NULL::sell_prices, %s) s",
        (Jsonb({"kind": "markup", "markup_bp": 2500}),),
    ).fetchone()
    assert markup == {"n": 1250}


def test_a_model_marked_as_reasoning_unseen_leases_all_of_max_tokens(admin, client, db, upstreams):
    """Its streams reserve all of max_tokens at admission (no streamed byte bounds its output),
    from the next call after the operator marks it; unmarked, a stream leases one step."""
    model = ok(admin.post("admin-models", json=ACME), 201)["item"]
    assert model["hidden_reasoning"] is False
    key = new_customer(admin)["key"]
    upstreams.script("openai", chunk_delay_s=0.3)

    def leased() -> int:
        with client.stream(
            "POST",
            "gateway-stream",
            json=body("openai", model="acme-large", max_tokens=3_000),
            headers={"authorization": f"Bearer {key}"},
        ) as response:
            held = wait_for(lambda: db.execute("SELECT leased_tokens FROM reservations").fetchone())
            response.read()
        assert held is not None
        return int(held["leased_tokens"])

    assert leased() == 256
    marked = ok(admin.patch("admin-models", params={"id": model["id"]}, json={"hidden_reasoning": True}))
    assert marked["item"]["hidden_reasoning"] is True
    assert leased() == 3_000
    assert audit_rows(db, "model.update")[-1]["details"] == {"hidden_reasoning": True}
