"""The function bundle: health, Lambda handlers, migrations, the wrapper's envelope and monitor."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from mangum import Mangum

import functions
from shared import config, migrate
from shared import db as shared_db
from shared.http import FunctionApp
from tests.support.database import wait_for, with_database


def _events_for(db, request_id: str) -> list[dict]:
    return db.execute("SELECT * FROM gateway_events WHERE request_id = %s", (request_id,)).fetchall()


def test_health_answers_with_build_schema_and_database(client):
    response = client.get("health")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "ok": True,
        "build": config.settings().build,
        "schema_version": max(m.version for m in migrate.discover()),
        "db": {"ok": True},
    }


def test_every_function_module_exposes_app_and_lambda_handler():
    names = [info.name for info in pkgutil.iter_modules(functions.__path__)]
    assert "health" in names
    for name in names:
        module = importlib.import_module(f"functions.{name}")
        assert isinstance(module.app, FunctionApp), name
        assert isinstance(module.handler, Mangum), name
        assert module.app.name == name.replace("_", "-")


def _api_gateway_v2_event(path: str, method: str = "GET", headers: dict | None = None) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.test", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "lambda-test",
            },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def _invoke_in_fresh_loop(handler: Mangum, event: dict) -> dict:
    """Run a Lambda invocation the way the runtime does: on a thread's own event loop."""
    result: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            result.update(handler(event, None))
        finally:
            loop.run_until_complete(shared_db.close())
            loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result


def test_health_through_the_lambda_handler_matches_http(client):
    from functions import health

    over_http = client.get("health")
    event = _api_gateway_v2_event("/.netlify/functions/health", headers={"x-kaixu-request-id": "lambda-1"})
    result = _invoke_in_fresh_loop(health.handler, event)
    assert result["statusCode"] == over_http.status_code == 200
    assert json.loads(result["body"]) == over_http.json()
    assert result["headers"]["x-kaixu-request-id"] == "lambda-1"


def test_health_is_503_without_secrets_when_the_database_is_down(configure):
    from functions import health

    configure(DATABASE_URL="postgresql://kaixu:s3cret@127.0.0.1:1/nowhere", DB_TIMEOUT_S="1")
    result = _invoke_in_fresh_loop(health.handler, _api_gateway_v2_event("/.netlify/functions/health"))
    assert result["statusCode"] == 503
    body = json.loads(result["body"])
    assert body["ok"] is False and body["db"] == {"ok": False}
    assert "s3cret" not in result["body"] and "nowhere" not in result["body"]


def test_after_the_database_drops_every_connection_one_call_fails_and_the_next_works(client, db):
    others = (
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    with ThreadPoolExecutor(8) as pool:  # concurrent calls: the server pools several connections
        for _ in range(5):
            assert set(pool.map(lambda _: client.get("health").status_code, range(16))) == {200}
    assert db.execute("SELECT count(*) AS n" + others).fetchone()["n"] >= 2
    db.execute("SELECT pg_terminate_backend(pid)" + others)
    first = client.get("health")
    assert first.status_code == 503 and first.json()["db"] == {"ok": False}
    assert client.get("health").status_code == 200  # the dead siblings were dropped with the first


def test_migrations_twice_are_a_no_op(database_url):
    assert migrate.migrate(database_url) == []


def test_two_concurrent_migration_runs_both_succeed(database_url):
    name = f"kaixu_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    try:
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url}
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "shared.migrate"],
                env=env,
                cwd=config.PROJECT_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=60) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        # Each file is applied by exactly one of the two runs (they may take turns).
        names = [name for out, _ in outputs for name in out.partition(": ")[2].split(", ") if name.strip()]
        every = [m.name for m in migrate.discover() + migrate.discover_functions()]
        assert sorted(name.strip() for name in names) == sorted(every)
        with psycopg.connect(url) as conn:
            versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            assert [v for (v,) in versions] == [m.version for m in migrate.discover()]
            copies = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'customers'").fetchone()[
                0
            ]
            assert copies == 1
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_invalid_json_is_400_with_the_envelope(client):
    response = client.post(
        "client-error-report", content=b"{not json", headers={"x-kaixu-request-id": "bad-json-1"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_JSON"
    assert body["request_id"] == "bad-json-1" == response.headers["x-kaixu-request-id"]
    assert body["error"]


def test_wrong_method_is_405(client):
    response = client.delete("health")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["allow"]


def test_oversized_body_is_413_even_without_content_length(client):
    huge = b'{"error": "' + b"x" * (300 * 1024) + b'"}'
    response = client.post("client-error-report", content=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "BODY_TOO_LARGE"

    def chunks():
        yield huge[:1000]
        yield huge[1000:]

    streamed = client.post("client-error-report", content=chunks())
    assert streamed.status_code == 413


def test_unknown_function_is_a_json_404(client):
    response = client.get("no-such-function")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_cors_is_closed_unless_the_origin_is_listed(client, configure):
    configure(ALLOWED_ORIGINS="https://admin.example.com, https://app.example.com")
    listed = client.get("health", headers={"origin": "https://app.example.com"})
    assert listed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-kaixu-max-tokens" in listed.headers["access-control-expose-headers"]  # a clamped call's
    unknown = client.get("health", headers={"origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in unknown.headers
    preflight = client.options(
        "health",
        headers={"origin": "https://admin.example.com", "access-control-request-method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    blocked = client.options("health", headers={"origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in blocked.headers


def test_every_response_has_a_request_id(client):
    responses = [
        client.get("health"),
        client.post("health"),
        client.get("nowhere-at-all"),
        client.post("client-error-report", content=b"[]"),
        client.options("health"),
    ]
    for response in responses[:2] + responses[3:]:
        assert response.headers["x-kaixu-request-id"]
    hostile = client.get("health", headers={"x-kaixu-request-id": "<script>alert(1)</script>"})
    assert hostile.headers["x-kaixu-request-id"] != "<script>alert(1)</script>"


def test_each_request_writes_exactly_one_monitor_row(client, db, configure):
    configure(ADMIN_PASSWORD="a monitor test password")
    tags = {"x-kaixu-app": "billing-app", "x-kaixu-build": "2026.11.30"}
    admin = {**tags, "x-admin-password": "a monitor test password"}
    ok = client.get("admin-models", headers={**admin, "x-kaixu-request-id": "mon-ok"})
    refused = client.put("admin-models", headers={**admin, "x-kaixu-request-id": "mon-405"})
    assert (ok.status_code, refused.status_code) == (200, 405)
    for request_id, status, level in (("mon-ok", 200, "info"), ("mon-405", 405, "warn")):
        rows = wait_for(lambda rid=request_id: _events_for(db, rid))
        assert len(rows) == 1, rows
        row = rows[0]
        assert (row["function_name"], row["status"], row["level"]) == ("admin-models", status, level)
        assert (row["app"], row["build"]) == ("billing-app", "2026.11.30")
        assert row["duration_ms"] is not None


def test_client_error_report_is_stored_as_one_error_row(client, db):
    report = {
        "client": {"url": "https://app.example.com/page", "user_agent": "Firefox"},
        "error": {"name": "TypeError", "message": "x is undefined", "stack": "at main.js:1"},
        "context": {"step": "checkout"},
    }
    response = client.post(
        "client-error-report",
        json=report,
        headers={"x-kaixu-app": "shop", "x-kaixu-build": "42", "x-kaixu-request-id": "cer-1"},
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "request_id": "cer-1"}
    rows = _events_for(db, "cer-1")
    assert len(rows) == 1
    row = rows[0]
    assert (row["level"], row["kind"], row["app"], row["build"]) == ("error", "client_error", "shop", "42")
    assert row["summary"] == "x is undefined"
    assert row["extra"]["error"]["name"] == "TypeError"
    assert row["extra"]["context"] == {"step": "checkout"}


def test_client_error_report_token_and_rate_limit(client, configure):
    configure(CLIENT_ERROR_TOKEN="tok-123", CLIENT_ERROR_PER_MIN="3")
    assert client.post("client-error-report", json={}).status_code == 403
    wrong = client.post("client-error-report", json={}, headers={"x-kaixu-error-token": "nope"})
    assert wrong.status_code == 403
    headers = {"x-kaixu-error-token": "tok-123", "x-forwarded-for": "198.51.100.7"}
    statuses = [client.post("client-error-report", json={}, headers=headers).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.post("client-error-report", json={}, headers=headers)
    assert int(limited.headers["retry-after"]) >= 1
    other_client = {**headers, "x-forwarded-for": "198.51.100.8"}
    assert client.post("client-error-report", json={}, headers=other_client).status_code == 200


def test_a_changed_function_file_is_applied_again_and_only_then(database_url, tmp_path):
    """sql/functions is re-applied when a file changes (one current definition of each
    function), and left alone otherwise."""
    name = f"kaixu_functions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    sql = tmp_path / "sql"
    (sql / "functions").mkdir(parents=True)
    (sql / "001_t.sql").write_text("CREATE TABLE t (x int);")
    probe = sql / "functions" / "probe.sql"
    probe.write_text("CREATE OR REPLACE FUNCTION kx_probe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")
    try:
        assert migrate.migrate(url, sql) == ["001_t.sql", "functions/probe.sql"]
        assert migrate.migrate(url, sql) == []
        probe.write_text("CREATE OR REPLACE FUNCTION kx_probe() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;")
        assert migrate.migrate(url, sql) == ["functions/probe.sql"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT kx_probe()").fetchone() == (2,)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
