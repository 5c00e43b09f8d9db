"""Invoice numbers and states: draft → issued (a gapless number) → paid, issued or paid → void;
every transition audited in its own transaction, every refusal writing nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support import admin as admin_support
from tests.support.admin import audit_rows, ok, written_rows
from tests.support.reports import add_usage, assert_bad_field

admin = admin_support.admin  # the fixture

MONTH = "2026-02"


def _draft(admin, customer_id: int, month: str = MONTH) -> dict[str, Any]:
    return ok(admin.post("admin-invoices", json={"customer_id": customer_id, "month": month}), 201)["item"]


def _patch(admin, invoice_id: Any, body: Any):
    return admin.patch("admin-invoices", params={"id": invoice_id}, json=body)


def _move(admin, invoice_id: int, status: str) -> dict[str, Any]:
    return ok(_patch(admin, invoice_id, {"status": status}))["item"]


def _everything(db) -> dict[str, Any]:
    """Every row a transition may write: the invoices, the counter, the carried credit, audit."""
    rows = written_rows(db)
    rows["invoice_snapshots"] = db.execute("SELECT * FROM invoice_snapshots ORDER BY id").fetchall()
    rows["invoice_counter"] = db.execute("SELECT * FROM invoice_counter").fetchall()
    return rows


def _counter(db) -> int | None:
    row = db.execute("SELECT last_number FROM invoice_counter").fetchone()
    return row["last_number"] if row else None


def test_issue_pay_and_void_each_write_their_state_and_an_audit_entry(admin, db, make_key):
    key = make_key()
    add_usage(db, key.customer_id, key.key_id, cost_nanos=10_000_000, sell_nanos=12_345_678)
    draft = _draft(admin, key.customer_id)
    assert (draft["status"], draft["number"], draft["total_cents"]) == ("draft", None, 1)

    issued = _move(admin, draft["id"], "issued")
    assert (issued["status"], issued["number"], issued["paid_at"], issued["voided_at"]) == (
        "issued",
        1,
        None,
        None,
    )
    assert issued["issued_at"] is not None and issued["snapshot"] == draft["snapshot"]  # frozen as taken
    paid = _move(admin, draft["id"], "paid")
    assert (paid["status"], paid["number"], paid["issued_at"]) == ("paid", 1, issued["issued_at"])
    assert paid["paid_at"] is not None
    void = _move(admin, draft["id"], "void")
    assert (void["status"], void["number"], void["paid_at"]) == (
        "void",
        1,
        paid["paid_at"],
    )  # keeps its number
    assert void["voided_at"] is not None
    assert ok(admin.get("admin-invoices", params={"id": draft["id"]}))["item"] == void

    expected = {"customer_id": key.customer_id, "month": MONTH, "version": 1, "number": 1, "due_cents": 1,
                "carried_out_nanos": 0, "carried_out_cents": 0}  # fmt: skip
    for action, before, after in (
        ("invoice.issue", "draft", "issued"),
        ("invoice.pay", "issued", "paid"),
        ("invoice.void", "paid", "void"),
    ):
        (row,) = audit_rows(db, action)
        assert (row["actor"], row["target"]) == ("admin", f"invoice:{draft['id']}")
        assert row["details"] == {**expected, "from": before, "to": after}
    # An issued invoice that was never paid can be voided too.
    other = _draft(admin, make_key().customer_id)
    _move(admin, other["id"], "issued")
    assert _move(admin, other["id"], "void")["number"] == 2


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ((), "paid"),  # a draft must be issued first
        ((), "void"),  # a draft has no number: nothing to void
        (("issued",), "issued"),
        (("issued", "paid"), "issued"),
        (("issued", "paid"), "paid"),
        (("issued", "void"), "issued"),
        (("issued", "void"), "paid"),
        (("issued", "void"), "void"),
    ],
)
def test_other_transitions_are_refused_and_write_nothing(admin, db, make_key, path, wanted):
    draft = _draft(admin, make_key().customer_id)
    for status in path:
        _move(admin, draft["id"], status)
    before = _everything(db)
    response = _patch(admin, draft["id"], {"status": wanted})
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "INVALID_TRANSITION" and f"can become {wanted}" in body["error"]
    assert body["invoice_status"] == (path[-1] if path else "draft")
    assert _everything(db) == before


def test_an_unknown_invoice_is_404_and_nothing_is_written(admin, db, make_key):
    draft = _draft(admin, make_key().customer_id)
    before = _everything(db)
    for invoice_id in (draft["id"] + 1, 999_999_999):
        for status in ("issued", "paid", "void"):
            response = _patch(admin, invoice_id, {"status": status})
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "NOT_FOUND"
    assert _everything(db) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"status": None}, "status"),
        ({"status": 1}, "status"),
        ({"status": ["issued"]}, "status"),
        ({"status": "draft"}, "status"),  # never back to a draft
        ({"status": "ISSUED"}, "status"),
        ({"status": "issued", "number": 7}, "number"),  # the number is never chosen
        ({"Status": "issued"}, "Status"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(admin, db, make_key, body, field):
    draft = _draft(admin, make_key().customer_id)
    before = _everything(db)
    assert_bad_field(_patch(admin, draft["id"], body), field)
    assert _everything(db) == before


def test_bad_ids_and_non_object_bodies_are_400(admin, db, make_key):
    draft = _draft(admin, make_key().customer_id)
    before = _everything(db)
    for invoice_id, field in (("", "id"), ("abc", "id"), ("0", "id"), ("-3", "id")):
        assert_bad_field(_patch(admin, invoice_id, {"status": "issued"}), field)
    for raw in (b'["issued"]', b'"issued"', b"{not json"):
        response = admin.patch(
            "admin-invoices",
            params={"id": draft["id"]},
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
    assert _everything(db) == before


def test_changing_a_state_needs_the_admin(client, admin, make_key):
    draft = _draft(admin, make_key().customer_id)
    for headers in ({}, {"x-admin-password": "wrong"}, {"authorization": "Bearer kxa1.forged.signature"}):
        response = client.patch(
            "admin-invoices", params={"id": draft["id"]}, json={"status": "issued"}, headers=headers
        )
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    assert ok(admin.get("admin-invoices", params={"id": draft["id"]}))["item"]["status"] == "draft"


def test_a_second_live_invoice_for_a_month_is_refused_and_burns_no_number(admin, db, make_key):
    key = make_key()
    first, second = _draft(admin, key.customer_id), _draft(admin, key.customer_id)
    assert _move(admin, first["id"], "issued")["number"] == 1
    before = _everything(db)
    refused = _patch(admin, second["id"], {"status": "issued"})
    assert refused.status_code == 409 and refused.json()["code"] == "ALREADY_ISSUED", refused.text
    assert MONTH in refused.json()["error"]
    assert _everything(db) == before and _counter(db) == 1
    assert _move(admin, _draft(admin, make_key().customer_id)["id"], "issued")["number"] == 2  # no gap
    # Void the live one: the month may be issued again, with the next number.
    _move(admin, first["id"], "void")
    assert _move(admin, second["id"], "issued")["number"] == 3
    listed = ok(admin.get("admin-invoices", params={"customer_id": key.customer_id, "status": "issued"}))
    assert [(row["id"], row["number"]) for row in listed["items"]] == [(second["id"], 3)]
    voided = ok(admin.get("admin-invoices", params={"status": "void"}))["items"]
    assert [(row["id"], row["number"], row["status"]) for row in voided] == [(first["id"], 1, "void")]


def test_numbers_stay_gapless_when_many_invoices_are_issued_at_once(admin, db, make_key):
    # Three customers already have a live February invoice and a second draft of it: issuing
    # those fails (409) in the middle of the rush, and must burn no number.
    doubles = []
    for _ in range(3):
        customer_id = make_key().customer_id
        _move(admin, _draft(admin, customer_id)["id"], "issued")
        doubles.append(_draft(admin, customer_id)["id"])
    fresh = [_draft(admin, make_key().customer_id)["id"] for _ in range(20)]
    assert _counter(db) == 3
    rush = fresh[:10] + doubles + fresh[10:]

    with ThreadPoolExecutor(len(rush)) as pool:
        responses = list(pool.map(lambda invoice_id: _patch(admin, invoice_id, {"status": "issued"}), rush))

    by_id = dict(zip(rush, responses, strict=True))
    assert [by_id[i].json()["code"] for i in doubles] == ["ALREADY_ISSUED"] * 3
    assert all(by_id[i].status_code == 200 for i in fresh), [by_id[i].text for i in fresh]
    numbers = sorted(by_id[i].json()["item"]["number"] for i in fresh)
    assert numbers == list(range(4, 24))  # exactly the next 20, no duplicates, no holes
    assert _counter(db) == 23
    stored = db.execute("SELECT number FROM invoice_snapshots WHERE number IS NOT NULL ORDER BY number")
    assert [row["number"] for row in stored.fetchall()] == list(range(1, 24))
    assert len(audit_rows(db, "invoice.issue")) == 23
