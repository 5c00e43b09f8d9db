"""admin-monitor: filtered list, live tail through one shared poller, audited pruning."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from shared.admin import monitor_tail
from shared.errors import REFUSALS
from tests.support.calls import body
from tests.support.database import wait_for
from tests.support.reports import (
    ADMIN_PASSWORD,
    PASSWORD_HEADERS,
    assert_admin_only,
    assert_bad_field,
    audit_rows,
)
from tests.support.tail import TailReader


@pytest.fixture(autouse=True)
def _admin(configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def add_event(db: psycopg.Connection, summary: str, **values: object) -> int:
    row = {"level": "info", "function_name": "gateway-chat", "kind": "http", "summary": summary, **values}
    sql = (
        f"INSERT INTO gateway_events ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))}) RETURNING id"
    )
    return db.execute(sql, list(row.values())).fetchone()["id"]


def listed(client, **params) -> dict:
    response = client.get("admin-monitor", params=params, headers=PASSWORD_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def summaries(client, **params) -> list[str]:
    return [item["summary"] for item in listed(client, kind="test", **params)["items"]]


def test_admin_monitor_requires_admin(client):
    assert_admin_only(client, "GET", "admin-monitor", 200)
    assert_admin_only(client, "POST", "admin-monitor?action=prune", 200, json={"days": 30})


def test_list_filters_newest_first_with_cursor_pages(client, db):
    add_event(db, "a", kind="test", level="warn", status=404, app="shop", request_id="req-a")
    add_event(db, "b", kind="test", level="error", status=502, function_name="gateway-stream", app="shop")
    add_event(db, "c", kind="test", status=200, app="blog", provider="openai", model="gpt-4o-mini")
    add_event(db, "old", kind="test", status=200, created_at="2020-01-01T00:00:00Z")
    assert summaries(client) == ["old", "c", "b", "a"]
    assert summaries(client, level="warn") == ["a"]
    assert summaries(client, function="gateway-stream") == ["b"]
    assert summaries(client, app="shop") == ["b", "a"]
    assert summaries(client, status="404") == ["a"]
    assert summaries(client, status="5xx") == ["b"]
    assert summaries(client, request_id="req-a") == ["a"]
    assert summaries(client, since="2025-01-01T00:00:00Z") == ["c", "b", "a"]
    assert summaries(client, since="2025-01-01T00:00:00") == ["c", "b", "a"]  # naive means UTC
    item = listed(client, kind="test", app="blog")["items"][0]
    assert {
        "id", "created_at", "level", "function_name", "app", "build", "status", "provider", "model",
        "duration_ms", "request_id", "summary", "kind",
    } <= set(item)  # fmt: skip
    assert (item["provider"], item["model"]) == ("openai", "gpt-4o-mini")
    first = listed(client, kind="test", limit=3)
    assert [i["summary"] for i in first["items"]] == ["old", "c", "b"] and first["next_cursor"]
    rest = listed(client, kind="test", limit=3, cursor=first["next_cursor"])
    assert [i["summary"] for i in rest["items"]] == ["a"] and rest["next_cursor"] is None
    one = client.get("admin-monitor", params={"id": item["id"]}, headers=PASSWORD_HEADERS).json()["item"]
    assert one["summary"] == "c" and "extra" in one


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "debug"}, "level"),
        ({"status": "20"}, "status"),
        ({"status": "6xx"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "nope"}, "cursor"),
        ({"id": "x"}, "id"),
        ({"tail": "1", "after_id": "-1"}, "after_id"),
        ({"code": "X" * 201}, "code"),
        ({"view": "chart"}, "view"),
        ({"view": "rates", "minutes": "0"}, "minutes"),
        ({"view": "rates", "minutes": "1441"}, "minutes"),
        ({"view": "rates", "minutes": "an hour"}, "minutes"),
    ],
)
def test_list_refuses_bad_parameters(client, params, field):
    assert_bad_field(client.get("admin-monitor", params=params, headers=PASSWORD_HEADERS), field)


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("", {"days": 3}, "action"),
        ("purge", {"days": 3}, "action"),
        ("prune", {}, "days"),
        ("prune", {"days": 0}, "days"),
        ("prune", {"days": 3651}, "days"),
        ("prune", {"days": "30"}, "days"),
        ("prune", {"days": 2.5}, "days"),
        ("prune", {"days": 30, "dry_run": True}, "dry_run"),
    ],
)
def test_prune_refuses_bad_input(client, action, body, field):
    response = client.post(f"admin-monitor?action={action}", json=body, headers=PASSWORD_HEADERS)
    assert_bad_field(response, field)


def test_prune_deletes_only_older_rows_and_is_audited(client, db):
    add_event(db, "ancient", kind="test", created_at="2020-01-01T00:00:00Z")
    add_event(db, "week-old", kind="test")
    db.execute("UPDATE gateway_events SET created_at = now() - interval '7 days' WHERE summary = 'week-old'")
    add_event(db, "fresh", kind="test")
    response = client.post("admin-monitor?action=prune", json={"days": 30}, headers=PASSWORD_HEADERS)
    assert response.status_code == 200
    assert response.json() == {"item": {"deleted": 1, "days": 30}}
    assert summaries(client) == ["fresh", "week-old"]
    (row,) = audit_rows(db, "monitor.prune")
    assert (row["actor"], row["target"], row["details"]) == (
        "admin",
        "gateway_events",
        {"days": 30, "deleted": 1},
    )


def monitor_row(db: psycopg.Connection, request_id: str) -> dict | None:
    """The monitor row of one request, once the wrapper has written it (after the response)."""
    found = wait_for(
        lambda: db.execute("SELECT * FROM gateway_events WHERE request_id = %s", (request_id,)).fetchone()
    )
    return found or None


def test_refusals_and_errors_record_their_code_and_sentence(client, db, make_key, upstreams):
    capped = make_key(customer={"monthly_cap_cents": 0})
    refused = client.post("gateway-chat", json=body(), headers=capped.auth)
    assert refused.status_code == 402
    row = monitor_row(db, refused.json()["request_id"])
    assert row is not None
    assert (row["level"], row["status"], row["code"]) == ("warn", 402, "CAP_REACHED")
    assert row["summary"] == REFUSALS["CAP_REACHED"].format(scope="customer")

    garbage = {"authorization": "Bearer kx_live_" + "A" * 43}
    invalid = client.post("gateway-chat", json=body(), headers=garbage)
    row = monitor_row(db, invalid.json()["request_id"])
    assert row is not None and (row["level"], row["code"], row["summary"]) == (
        "warn",
        "INVALID_KEY",
        REFUSALS["INVALID_KEY"],
    )

    # Any function's error answer, not only the gateway's: a 400 names its code and sentence.
    bad = client.get("admin-monitor", params={"level": "debug"}, headers=PASSWORD_HEADERS)
    row = monitor_row(db, bad.json()["request_id"])
    assert row is not None
    assert (row["function_name"], row["level"], row["status"], row["code"]) == (
        "admin-monitor",
        "warn",
        400,
        "INVALID_INPUT",
    )
    assert row["summary"] == bad.json()["error"]

    fine = client.get("admin-monitor", headers=PASSWORD_HEADERS)
    row = monitor_row(db, fine.headers["x-kaixu-request-id"])
    assert row is not None and (row["level"], row["code"], row["summary"]) == ("info", None, None)

    # The list shows the code and filters by it; level=warn finds the refusals.
    refusals = listed(client, function="gateway-chat", level="warn")["items"]
    assert {item["code"] for item in refusals} == {"CAP_REACHED", "INVALID_KEY"}
    (cap,) = listed(client, code="CAP_REACHED")["items"]
    assert cap["summary"] == REFUSALS["CAP_REACHED"].format(scope="customer")


def test_rates_count_the_last_hour_per_function(client, db):
    for status in (200, 200, 200, 404, 502):
        add_event(db, f"chat {status}", status=status)
    add_event(db, "stream ok", function_name="gateway-stream", status=200)
    add_event(db, "too old", status=500, created_at="2020-01-01T00:00:00Z")
    add_event(db, "recent but older than 30 minutes", status=500)
    db.execute(
        "UPDATE gateway_events SET created_at = now() - interval '45 minutes' "
        "WHERE summary = 'recent but older than 30 minutes'"
    )
    add_event(db, "client report without a status", kind="client_error")

    def rates(**params) -> dict:
        return listed(client, view="rates", **params)

    hour = rates()
    assert hour["minutes"] == 60
    by_function = {item["function_name"]: item for item in hour["items"]}
    assert by_function["gateway-chat"] == {
        "function_name": "gateway-chat",
        "requests": 6,
        "status_4xx": 1,
        "status_5xx": 2,
        "error_rate": 0.5,
    }
    assert by_function["gateway-stream"]["error_rate"] == 0.0
    assert hour["items"][0]["function_name"] == "gateway-chat"  # most server errors first
    half = {item["function_name"]: item for item in rates(minutes=30)["items"]}
    assert (half["gateway-chat"]["requests"], half["gateway-chat"]["status_5xx"]) == (5, 1)


def test_prune_answers_with_the_count_it_deleted(client, db):
    for n in range(3):
        add_event(db, f"old {n}", kind="test", created_at="2020-01-01T00:00:00Z")
    first = client.post("admin-monitor?action=prune", json={"days": 1}, headers=PASSWORD_HEADERS)
    assert first.json() == {"item": {"deleted": 3, "days": 1}}
    again = client.post("admin-monitor?action=prune", json={"days": 1}, headers=PASSWORD_HEADERS)
    assert again.json() == {"item": {"deleted": 0, "days": 1}}


@pytest.fixture
def tails(server: str, configure) -> Iterator:
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, STREAM_PING_S="0.2")
    opened: list[TailReader] = []

    def open_tail(after_id: int | None = None) -> TailReader:
        reader = TailReader(server, after_id)
        opened.append(reader)
        assert wait_for(lambda: reader.frames, timeout=5), "no hello frame"
        return reader

    yield open_tail
    for reader in opened:
        reader.close()
    # Tables restart their ids after each test: the next test needs a fresh poller.
    assert wait_for(lambda: the_hub() is None, timeout=5), "a tail outlived its client"


def the_hub() -> monitor_tail.Hub:
    (hub,) = [hub for hub in monitor_tail._hubs.values() if hub.tails or hub.running] or [None]
    return hub


def test_tail_says_hello_then_streams_new_rows(client, db, tails):
    before = add_event(db, "before", kind="test")
    reader = tails()
    assert reader.status == 200 and reader.headers["content-type"].startswith("text/event-stream")
    assert reader.frames[0] == ("hello", {"after_id": before})
    add_event(db, "live-1", kind="test", app="shop")
    add_event(db, "live-2", kind="test")
    assert wait_for(lambda: reader.rows() == ["live-1", "live-2"], timeout=5), reader.frames
    row = next(data for event, data in reader.frames if event == "row" and data["summary"] == "live-1")
    assert row["app"] == "shop" and row["created_at"].endswith("Z") and row["function_name"] == "gateway-chat"


def test_tail_catches_up_from_after_id(db, tails):
    first = add_event(db, "seen", kind="test")
    add_event(db, "missed-1", kind="test")
    add_event(db, "missed-2", kind="test")
    reader = tails(after_id=first)
    assert reader.frames[0] == ("hello", {"after_id": first})
    add_event(db, "new", kind="test")
    assert wait_for(lambda: reader.rows() == ["missed-1", "missed-2", "new"], timeout=5), reader.frames


def test_tails_share_one_poller_which_stops_when_they_close(db, tails):
    readers = [tails() for _ in range(4)]
    hub = the_hub()
    assert hub is not None and len(hub.tails) == 4 and hub.running
    polls_before, started = hub.polls, time.monotonic()
    add_event(db, "fan-out", kind="test")
    for reader in readers:
        assert wait_for(lambda reader=reader: reader.rows() == ["fan-out"], timeout=5)
    time.sleep(1.0)
    rate = (hub.polls - polls_before) / (time.monotonic() - started)
    assert rate < 4, f"{rate:.1f} polls/s for 4 tails: not one shared poller"
    for reader in readers:
        reader.close()
    assert wait_for(lambda: not hub.tails and not hub.running, timeout=5), (len(hub.tails), hub.running)


def test_tail_pings_while_quiet(tails):
    reader = tails()
    assert wait_for(lambda: sum(event == "ping" for event, _ in reader.frames) >= 2, timeout=5)


def test_tail_delivers_a_row_that_commits_after_a_later_one(database_url, db, tails):
    reader = tails()
    with psycopg.connect(database_url) as slow:  # a transaction that takes an id, commits late
        slow.execute(
            "INSERT INTO gateway_events (level, function_name, kind, summary) "
            "VALUES ('info', 'x', 'test', 'late')"
        )
        add_event(db, "early", kind="test")
        assert wait_for(lambda: reader.rows() == ["early"], timeout=5)
        slow.commit()
    assert wait_for(lambda: reader.rows() == ["early", "late"], timeout=5), reader.frames
