"""admin-invoices: exact totals, immutable versions, validation, audit, idempotent retries.

(The reconciliation of a month: test_reconciliation.py; numbers and states:
test_invoice_states.py; the printable invoice: test_invoice_html.py.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import money
from shared.admin import accounts
from tests.support.reports import (
    ADMIN_PASSWORD,
    PASSWORD_HEADERS,
    add_usage,
    assert_admin_only,
    assert_bad_field,
    audit_rows,
)

MONTH = "2026-02"


def sold(db, customer_id: int, key_id: int, nanos: int, **values) -> int:
    """A usage event sold at cost (``sell_nanos`` = ``cost_nanos``) unless ``values`` say otherwise."""
    return add_usage(db, customer_id, key_id, **{"cost_nanos": nanos, "sell_nanos": nanos, **values})


@pytest.fixture(autouse=True)
def _admin(configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def snapshot(client, customer_id: int, month: str = MONTH, **headers: str):
    return client.post(
        "admin-invoices",
        json={"customer_id": customer_id, "month": month},
        headers={**PASSWORD_HEADERS, **headers},
    )


def test_admin_invoices_requires_admin(client, make_key):
    key = make_key()
    assert_admin_only(client, "GET", "admin-invoices", 200)
    assert_admin_only(
        client, "POST", "admin-invoices", 201, json={"customer_id": key.customer_id, "month": MONTH}
    )


def test_totals_are_the_exact_nano_sum_rounded_once(client, db, make_key):
    a = make_key(customer={"monthly_cap_cents": 1500}, label='app, "one"')
    b = make_key(customer_id=a.customer_id, label="b")
    c = make_key(customer_id=a.customer_id, label="c")
    d = make_key(customer_id=a.customer_id, label="d")
    # Each of keys a, b, c sells 0.4999999 cents (a in two events); d sells 0.5000001 cents.
    # The provider cost is a third less: the margin is the operator's, in the same document.
    sold(db, a.customer_id, a.key_id, 2_499_999, cost_nanos=1_000_000, input_tokens=100, output_tokens=7)
    sold(db, a.customer_id, a.key_id, 2_500_000, cost_nanos=2_000_000, input_tokens=50, output_tokens=3)
    sold(db, a.customer_id, b.key_id, 4_999_999, provider="anthropic", model="claude-sonnet-4-5")
    sold(db, a.customer_id, c.key_id, 4_999_999, provider="gemini", model="gemini-2.5-flash")
    sold(db, a.customer_id, d.key_id, 5_000_001)
    sold(db, a.customer_id, d.key_id, 999_999_999, month="2026-01")  # another month
    other = make_key()
    sold(db, other.customer_id, other.key_id, 777_777_777)  # another customer
    db.execute(
        "INSERT INTO topups (customer_id, month, amount_cents, actor) VALUES (%s, %s, 250, 'admin'), "
        "(%s, %s, 100, 'admin'), (%s, '2026-01', 9999, 'admin')",
        (a.customer_id, MONTH, a.customer_id, MONTH, a.customer_id),
    )

    response = snapshot(client, a.customer_id)
    assert response.status_code == 201, response.text
    item = response.json()["item"]
    doc = item["snapshot"]
    exact = 2_499_999 + 2_500_000 + 4_999_999 * 2 + 5_000_001
    assert exact == 19_999_998
    cost = exact - 4_999_999 + 3_000_000
    assert doc["totals"]["usage_nanos"] == doc["totals"]["total_nanos"] == exact
    assert doc["totals"]["usage_cents"] == doc["totals"]["total_cents"] == money.cents(exact) == 2
    assert (doc["totals"]["cost_nanos"], doc["totals"]["margin_nanos"]) == (cost, exact - cost)
    by_key = {line["api_key_id"]: line for line in doc["by_key"]}
    assert [by_key[k.key_id]["sell_cents"] for k in (a, b, c, d)] == [0, 0, 0, 1]
    assert sum(line["sell_cents"] for line in doc["by_key"]) == 1  # rounding lines would lose a cent
    assert sum(line["sell_nanos"] for line in doc["by_key"]) == exact
    assert by_key[a.key_id] | {"label": None} == {
        "api_key_id": a.key_id,
        "last4": by_key[a.key_id]["last4"],
        "label": None,
        "calls": 2,
        "input_tokens": 150,
        "output_tokens": 10,
        "sell_nanos": 4_999_999,
        "sell_cents": 0,
        "cost_nanos": 3_000_000,
        "cost_cents": 0,
        "margin_nanos": 1_999_999,
        "margin_cents": 0,
    }
    assert by_key[a.key_id]["label"] == 'app, "one"' and len(by_key[a.key_id]["last4"]) == 4
    by_model = {(line["provider"], line["model"]): line for line in doc["usage"]}
    assert by_model[("openai", "gpt-4o-mini")]["sell_nanos"] == 2_499_999 + 2_500_000 + 5_000_001
    assert by_model[("openai", "gpt-4o-mini")]["sell_cents"] == 1
    assert by_model[("anthropic", "claude-sonnet-4-5")]["sell_cents"] == 0
    assert doc["totals"]["calls"] == 5
    assert doc["totals"]["tokens"] == doc["totals"]["input_tokens"] + doc["totals"]["output_tokens"]
    assert doc["topups"]["total_cents"] == 350 and len(doc["topups"]["items"]) == 2
    assert doc["cap_cents"] == 1500 + 350
    assert (doc["push"]["invoices"], doc["push"]["total_cents"]) == ([], 0)  # no push charges this month
    # 350 cents of top-ups cover the 2 cents of usage: nothing is due, the rest is credit.
    assert doc["totals"]["grand_total_nanos"] == exact - money.nanos(350)
    assert doc["totals"]["grand_total_cents"] == -348
    assert (doc["totals"]["due_cents"], doc["totals"]["credit_remaining_cents"]) == (0, 348)
    assert item["total_cents"] == 0  # the amount due
    assert (item["customer_id"], item["month"], item["version"], item["created_by"]) == (
        a.customer_id,
        MONTH,
        1,
        "admin",
    )
    assert (item["status"], item["number"], item["issued_at"]) == ("draft", None, None)


def test_snapshots_are_immutable_versions_listed_newest_first(client, db, make_key):
    key = make_key()
    sold(db, key.customer_id, key.key_id, 30_000_000)
    first = snapshot(client, key.customer_id).json()["item"]
    sold(db, key.customer_id, key.key_id, 20_000_000)
    second = snapshot(client, key.customer_id).json()["item"]
    assert (first["version"], second["version"]) == (1, 2)
    assert (first["total_cents"], second["total_cents"]) == (3, 5)

    listed = client.get(
        "admin-invoices", params={"customer_id": key.customer_id, "month": MONTH}, headers=PASSWORD_HEADERS
    ).json()
    assert [row["version"] for row in listed["items"]] == [2, 1]
    assert "snapshot" not in listed["items"][0] and listed["next_cursor"] is None
    assert [(row["status"], row["number"]) for row in listed["items"]] == [("draft", None)] * 2
    again = client.get("admin-invoices", params={"id": first["id"]}, headers=PASSWORD_HEADERS).json()["item"]
    assert again["snapshot"]["totals"]["total_cents"] == 3 and again["version"] == 1
    paged = client.get("admin-invoices", params={"limit": 1}, headers=PASSWORD_HEADERS).json()
    assert [row["version"] for row in paged["items"]] == [2]
    rest = client.get(
        "admin-invoices", params={"limit": 1, "cursor": paged["next_cursor"]}, headers=PASSWORD_HEADERS
    ).json()
    assert [row["version"] for row in rest["items"]] == [1]
    missing = client.get("admin-invoices", params={"id": 999_999}, headers=PASSWORD_HEADERS)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_concurrent_snapshots_get_distinct_versions(client, make_key):
    key = make_key()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: snapshot(client, key.customer_id), range(8)))
    assert [r.status_code for r in responses] == [201] * 8
    assert sorted(r.json()["item"]["version"] for r in responses) == list(range(1, 9))


def test_snapshot_is_audited_with_actor_and_target(client, db, make_key):
    key = make_key()
    item = snapshot(client, key.customer_id).json()["item"]
    (row,) = audit_rows(db, "invoice.snapshot")
    assert (row["actor"], row["target"]) == ("admin", f"customer:{key.customer_id}")
    assert row["details"] == {"month": MONTH, "version": 1, "invoice_id": item["id"], "total_cents": 0}


def test_idempotency_key_replays_instead_of_a_new_version(client, db, make_key):
    key = make_key()
    first = snapshot(client, key.customer_id, **{"idempotency-key": "inv-1"})
    retry = snapshot(client, key.customer_id, **{"idempotency-key": "inv-1"})
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["item"]["id"] == first.json()["item"]["id"]
    reused = snapshot(client, key.customer_id, month="2026-01", **{"idempotency-key": "inv-1"})
    assert reused.status_code == 409
    assert db.execute("SELECT count(*) AS n FROM invoice_snapshots").fetchone()["n"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"month": MONTH}, "customer_id"),
        ({"customer_id": "1", "month": MONTH}, "customer_id"),
        ({"customer_id": True, "month": MONTH}, "customer_id"),
        ({"customer_id": 0, "month": MONTH}, "customer_id"),
        ({"customer_id": 1}, "month"),
        ({"customer_id": 1, "month": "2026-13"}, "month"),
        ({"customer_id": 1, "month": 202602}, "month"),
        ({"customer_id": 1, "month": "2999-01"}, "month"),
        ({"customer_id": 1, "month": MONTH, "total_cents": 5}, "total_cents"),
    ],
)
def test_snapshot_refuses_bad_fields(client, body, field):
    assert_bad_field(client.post("admin-invoices", json=body, headers=PASSWORD_HEADERS), field)


def test_snapshot_bad_headers_queries_and_unknown_customer(client, make_key):
    key = make_key()
    bad_key = snapshot(client, key.customer_id, **{"idempotency-key": "k" * 300})
    assert_bad_field(bad_key, "Idempotency-Key")
    for params, field in (
        ({"customer_id": "x"}, "customer_id"),
        ({"month": "feb"}, "month"),
        ({"id": "-1"}, "id"),
        ({"status": "open"}, "status"),
        ({"status": "DRAFT"}, "status"),
        ({"format": "html"}, "format"),  # a list has no printable form
        ({"id": "1", "format": "pdf"}, "format"),
    ):
        assert_bad_field(client.get("admin-invoices", params=params, headers=PASSWORD_HEADERS), field)
    unknown = snapshot(client, 999_999)
    assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"


def test_preview_is_computed_but_not_stored(client, db, make_key):
    key = make_key()
    sold(db, key.customer_id, key.key_id, 15_000_000, month=accounts.current_month())
    response = client.get(
        "admin-invoices", params={"customer_id": key.customer_id, "preview": "1"}, headers=PASSWORD_HEADERS
    )
    assert response.status_code == 200
    assert response.json()["item"]["snapshot"]["totals"]["total_cents"] == 2
    assert db.execute("SELECT count(*) AS n FROM invoice_snapshots").fetchone()["n"] == 0


def _push_invoice(db, customer_id: int, total_nanos: int) -> None:
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys, "
        "bytes, breakdown) VALUES (%s, %s, 1, %s, %s, 3, 0, '{}')",
        (customer_id, MONTH, money.cents(total_nanos), total_nanos),
    )


def test_push_charges_join_the_invoice(client, db, make_key):
    key = make_key()
    sold(db, key.customer_id, key.key_id, 100_000_000)
    _push_invoice(db, key.customer_id, 350_000_000)
    item = snapshot(client, key.customer_id).json()["item"]
    push = item["snapshot"]["push"]
    assert push == {
        "available": True,
        "invoices": [
            {"month": MONTH, "total_cents": 35, "total_nanos": 350_000_000, "deploys": 3, "bytes": 0}
        ],
        "total_nanos": 350_000_000,
        "total_cents": 35,
    }
    totals = item["snapshot"]["totals"]
    assert (totals["total_cents"], totals["push_cents"], totals["grand_total_cents"]) == (10, 35, 45)
    assert (
        totals["grand_total_nanos"] == 450_000_000 == sum(line["nanos"] for line in item["snapshot"]["lines"])
    )
    assert [line["kind"] for line in item["snapshot"]["lines"]] == ["usage", "push"]
    assert item["snapshot"]["lines"][1] == {
        "kind": "push",
        "description": "KaixuPush: 3 deploys",
        "nanos": 350_000_000,
        "cents": 35,
    }
    assert item["total_cents"] == 45


def test_the_amount_owed_is_rounded_once_from_usage_and_push_nanos(client, db, make_key):
    key = make_key()
    sold(db, key.customer_id, key.key_id, 5_000_000)  # 0.5 cents
    _push_invoice(db, key.customer_id, 5_000_000)  # 0.5 cents
    item = snapshot(client, key.customer_id).json()["item"]
    totals = item["snapshot"]["totals"]
    assert (totals["total_cents"], totals["push_cents"]) == (1, 1)  # each rounds up on its own
    assert totals["grand_total_nanos"] == 10_000_000
    assert totals["grand_total_cents"] == 1 == item["total_cents"]  # not 1 + 1
