"""The built artifact under the real AWS Lambda runtime client (awslambdaric), fed the events
AWS sends: every function of the template answers, gateway calls in a warm process are billed
once each, the schedule runs maintenance without a secret, migrations run as a custom
resource, and a call near its deadline is cut and settled before the function is stopped."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import Response

from shared.deploy import template
from shared.host import demo
from shared.kaixupush import client as kaixupush_client
from shared.portal import session as portal_session
from tests.support.browser import ADMIN_PASSWORD
from tests.support.calls import body
from tests.support.database import hold_stale_reservation, with_database
from tests.support.deploy import (
    ADMIN_TOKEN_SECRET,
    custom_resource_event,
    function_settings,
    http_event,
    json_event,
    response_of,
    scheduled_event,
)
from tests.support.devserver import seed_demo
from tests.support.fakes.lambda_runtime import LambdaFunction
from tests.support.fakes.server import LoopbackServer

ADMIN = {"x-admin-password": ADMIN_PASSWORD}
CLIENT_SOURCE = Path(kaixupush_client.__file__).read_text()


def _handlers() -> dict[str, str]:
    """Every function of the committed template that serves a route: name → handler."""
    doc = yaml.safe_load(template.TEMPLATE_PATH.read_text())
    found = {}
    for resource in doc["Resources"].values():
        props = resource.get("Properties", {})
        route = props.get("Events", {}).get("Api", {}).get("Properties", {}).get("Path")
        if resource["Type"] == "AWS::Serverless::Function" and route:
            found[route.rsplit("/", 1)[-1]] = props["Handler"]
    return found


@pytest.fixture
def start(deployment, database_url, upstreams, tmp_path):
    """Start a function's execution environment; all are stopped after the test."""
    started: list[LambdaFunction] = []

    def run(handler: str, **settings: str) -> LambdaFunction:
        log = tmp_path / f"{handler.replace('/', '.')}-{len(started)}.log"
        function = LambdaFunction(
            deployment, handler, function_settings(database_url, upstreams, **settings), log
        )
        started.append(function)
        return function

    yield run
    for function in started:
        function.stop()


def _path(name: str) -> str:
    return f"/.netlify/functions/{name}"


# What each function is asked, and the status it must answer: every one reaches its code,
# the database and the JSON envelope through Mangum, none answers 5xx.
def _requests(
    customer_id: int, secret: str, owner: str, session: str
) -> dict[str, tuple[dict[str, Any], int]]:
    def admin(name: str, query: str = "") -> dict[str, Any]:
        return http_event("GET", _path(name), query=query, headers=ADMIN)

    def signed_in(name: str) -> dict[str, Any]:
        return http_event("GET", _path(name), headers={"authorization": f"Bearer {session}"})

    def with_key(method: str, name: str, payload: Any = None) -> dict[str, Any]:
        auth = {"authorization": f"Bearer {secret}"}
        if payload is None:
            return http_event(method, _path(name), headers=auth)
        return json_event(method, _path(name), payload, headers=auth)

    customer = f"customer_id={customer_id}"
    checkout = {"customer_id": customer_id, "amount_cents": 500}
    compat = {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
    }  # the SDKs' formats
    return {
        "health": (http_event("GET", _path("health")), 200),
        "openapi": (http_event("GET", _path("openapi")), 200),
        "admin-login": (json_event("POST", _path("admin-login"), {"password": ADMIN_PASSWORD}), 200),
        "admin-customers": (admin("admin-customers"), 200),
        "admin-keys": (admin("admin-keys", customer), 200),
        "admin-devices": (admin("admin-devices", customer), 200),
        "admin-usage": (admin("admin-usage", customer), 200),
        "admin-topups": (admin("admin-topups", customer), 200),
        "admin-invoices": (admin("admin-invoices", customer), 200),
        "admin-export": (admin("admin-export", "type=customers"), 200),
        "admin-monitor": (admin("admin-monitor"), 200),
        "admin-audit": (admin("admin-audit"), 200),
        "admin-models": (admin("admin-models"), 200),
        "admin-plans": (admin("admin-plans"), 200),
        "admin-sell-prices": (admin("admin-sell-prices", customer), 200),
        "admin-overview": (admin("admin-overview"), 200),
        "admin-netlify-token": (admin("admin-netlify-token", customer), 200),
        "admin-stripe-checkout": (
            json_event("POST", _path("admin-stripe-checkout"), checkout, headers=ADMIN),
            501,
        ),
        "admin-kaixupush-projects": (admin("admin-kaixupush-projects"), 200),
        "admin-kaixupush-deploys": (admin("admin-kaixupush-deploys"), 200),
        "admin-kaixupush-jobs": (admin("admin-kaixupush-jobs"), 200),
        "admin-kaixupush-invoices": (admin("admin-kaixupush-invoices"), 200),
        "client-error-report": (
            json_event("POST", _path("client-error-report"), {"message": "TypeError"}),
            200,
        ),
        "gateway-chat": (with_key("POST", "gateway-chat", body()), 200),
        "gateway-stream": (with_key("POST", "gateway-stream", body()), 200),
        "openai": (with_key("POST", "openai/v1/chat/completions", compat), 200),
        "anthropic": (
            json_event(
                "POST",
                _path("anthropic/v1/messages"),
                {**compat, "max_tokens": 5},
                headers={"x-api-key": secret},
            ),
            200,
        ),
        "stripe-webhook": (json_event("POST", _path("stripe-webhook"), {"type": "ping"}), 501),
        "maintenance": (http_event("POST", _path("maintenance")), 503),
        "kaixupush-worker": (http_event("POST", _path("kaixupush-worker")), 503),
        "kaixupush-projects": (with_key("GET", "kaixupush-projects"), 200),
        "kaixupush-init": (with_key("POST", "kaixupush-init", {}), 400),
        "kaixupush-upload": (with_key("PUT", "kaixupush-upload"), 400),
        "kaixupush-upload-chunk": (with_key("PUT", "kaixupush-upload-chunk"), 400),
        "kaixupush-upload-complete": (with_key("POST", "kaixupush-upload-complete", {}), 400),
        "kaixupush-file-status": (with_key("GET", "kaixupush-file-status"), 400),
        "kaixupush-complete": (with_key("POST", "kaixupush-complete", {}), 400),
        "kaixupush-status": (with_key("GET", "kaixupush-status"), 400),
        "kaixupush-billing": (with_key("GET", "kaixupush-billing"), 200),
        "kaixupush-client": (http_event("GET", "/kaixupush.py"), 200),  # the API origin's own path
        "customer-login": (json_event("POST", _path("customer-login"), {"key": owner}), 200),
        "customer-summary": (signed_in("customer-summary"), 200),
        "customer-usage": (signed_in("customer-usage"), 200),
        "customer-invoices": (signed_in("customer-invoices"), 200),
        "customer-devices": (signed_in("customer-devices"), 200),
        "customer-keys": (signed_in("customer-keys"), 200),
        "customer-kaixupush": (signed_in("customer-kaixupush"), 200),
        "customer-webhook": (signed_in("customer-webhook"), 200),
        "customer-topup": (
            json_event(
                "POST",
                _path("customer-topup"),
                {"amount_cents": 500},
                headers={"authorization": f"Bearer {session}"},
            ),
            501,
        ),
    }


def test_every_function_of_the_template_answers_under_the_lambda_runtime(start, make_key, db, configure):
    key = make_key(customer={"monthly_cap_cents": 1000}, role="deployer")
    owner = make_key(customer_id=key.customer_id, role="owner")
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, ADMIN_TOKEN_SECRET=ADMIN_TOKEN_SECRET)
    session, _ = portal_session.issue_token(owner.customer_id, owner.key_id)  # as the deployment signs it
    requests = _requests(key.customer_id, key.secret, owner.secret, session)
    handlers = _handlers()
    assert set(requests) == set(handlers), "a function of the template has no request here"

    def invoke(name: str) -> tuple[str, int, dict[str, str], Any]:
        function = start(handlers[name])
        event, _ = requests[name]
        status, headers, answer = response_of(function.invoke(event).response)
        return name, status, headers, answer

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(invoke, sorted(handlers)))
    for name, status, headers, answer in results:
        expected = requests[name][1]
        assert status == expected, (name, status, answer)
        assert headers.get("x-kaixu-request-id"), name
        if status >= 400:
            assert isinstance(answer, dict) and answer["code"] and answer["request_id"], (name, answer)
    by_name = {name: answer for name, _, _, answer in results}
    assert by_name["health"]["build"] == "lambda-test" and by_name["health"]["db"] == {"ok": True}
    assert "event: done" in by_name["gateway-stream"]  # buffered by Mangum, but whole
    assert by_name["maintenance"]["code"] == "NOT_CONFIGURED"  # over HTTP it still needs its secret
    assert by_name["kaixupush-client"] == CLIENT_SOURCE  # the deploy client, as the package has it


def test_warm_gateway_chat_bills_each_call_exactly_once(start, make_key, db):
    key = make_key(customer={"monthly_cap_cents": 1000})
    function = start("functions/gateway_chat.handler")
    costs = []
    for _ in range(5):
        event = json_event(
            "POST", _path("gateway-chat"), body(), headers={"authorization": f"Bearer {key.secret}"}
        )
        status, _, answer = response_of(function.invoke(event).response)
        assert status == 200, answer
        costs.append(answer["usage"]["cost_cents"])
    assert function.process.poll() is None  # one warm process served every call
    events = db.execute(
        "SELECT count(*) AS n, sum(cost_nanos) AS nanos FROM usage_events WHERE api_key_id = %s",
        (key.key_id,),
    ).fetchone()
    month = db.execute(
        "SELECT spent_nanos FROM monthly_usage WHERE customer_id = %s", (key.customer_id,)
    ).fetchone()
    assert events["n"] == 5 and month["spent_nanos"] == events["nanos"] > 0
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


def test_the_demo_provider_never_answers_under_the_lambda_runtime(start, db):
    """The dev server's demo model priced in the database and every setting asking for it:
    on Lambda a call to it is still refused like a provider without a key, and billed nothing."""
    seeded = seed_demo()
    function = start("functions/gateway_chat.handler", KAIXU_DEMO="1", KAIXU_ENV="development")
    body = {"provider": "demo", "model": demo.MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    event = json_event(
        "POST", _path("gateway-chat"), body, headers={"authorization": f"Bearer {seeded.secret}"}
    )
    status, _, answer = response_of(function.invoke(event).response)
    assert (status, answer["code"]) == (503, "PROVIDER_NOT_CONFIGURED"), answer
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 0


def test_http_api_details_survive_mangum(start, make_key):
    """A base64 body, cookies, a query string and the $default stage, as API Gateway sends them."""
    login = start("functions/admin_login.handler")
    event = json_event("POST", _path("admin-login"), {"password": ADMIN_PASSWORD}, cookies=["a=1", "b=2"])
    status, _, answer = response_of(login.invoke(event).response)
    assert status == 200 and answer["token"]
    token = answer["token"]
    key = make_key()
    keys = start("functions/admin_keys.handler")
    listed = http_event(
        "GET",
        _path("admin-keys"),
        query=f"customer_id={key.customer_id}&limit=1",
        headers={"authorization": f"Bearer {token}"},
    )
    status, _, answer = response_of(keys.invoke(listed).response)
    assert status == 200 and [item["id"] for item in answer["items"]] == [key.key_id]


def test_a_live_tail_is_refused_where_responses_are_buffered(start):
    monitor = start("functions/admin_monitor.handler")
    event = http_event("GET", _path("admin-monitor"), query="tail=1", headers=ADMIN)
    status, _, answer = response_of(monitor.invoke(event).response)
    assert status == 400 and answer["code"] == "STREAMING_UNAVAILABLE" and "StreamUrl" in answer["error"]


def test_a_function_url_event_is_served(start):
    health = start("functions/health.handler")
    status, headers, answer = response_of(
        health.invoke(http_event("GET", _path("health"), function_url=True)).response
    )
    assert status == 200 and answer["ok"] is True and headers["x-kaixu-request-id"]


def test_the_schedule_runs_maintenance_without_its_secret(start, make_key, db):
    hold_stale_reservation(db, make_key())  # a call whose process died
    maintenance = start("functions/maintenance.handler")
    run = maintenance.invoke(scheduled_event()).response
    assert run["status"] == 200 and run["body"]["item"]["released_reservations"] == 1
    assert db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"] == 0
    # The schedule's mark cannot be forged over HTTP: a body that looks like the event is not one.
    forged = json_event("POST", _path("maintenance"), scheduled_event())
    status, _, answer = response_of(maintenance.invoke(forged).response)
    assert status == 503 and answer["code"] == "NOT_CONFIGURED"
    runs = db.execute(  # the released call's own record (status 499) names a provider
        "SELECT status FROM gateway_events WHERE function_name = 'maintenance' AND provider IS NULL"
        " ORDER BY id"
    ).fetchall()
    assert [row["status"] for row in runs] == [200, 503]


def test_a_failed_scheduled_run_is_a_failed_invocation(start):
    worker = start("functions/kaixupush_worker.handler", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    failed = worker.invoke(scheduled_event())
    assert failed.kind == "error" and "ScheduledRunFailed" in json.dumps(failed.body)


def test_a_call_near_its_deadline_is_cut_and_settled_before_it(start, make_key, db, upstreams):
    upstreams.script("openai", delay_s=8)
    key = make_key(customer={"monthly_cap_cents": 1000})
    chat = start("functions/gateway_chat.handler")
    chat.invoke(http_event("GET", _path("gateway-chat")))  # warm: the cold start is not the test
    event = json_event(
        "POST", _path("gateway-chat"), body(), headers={"authorization": f"Bearer {key.secret}"}
    )
    answered = chat.invoke(event, deadline_s=4.0)
    status, _, answer = response_of(answered.response)
    assert answered.seconds < 4.0, "answered after the function would have been stopped"
    assert answered.seconds > 1.5  # it waited for the provider while it could
    assert status == 504 and answer["code"] == "UPSTREAM_TIMEOUT" and "time limit" in answer["error"]
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    settled = db.execute("SELECT outcome, cost_nanos FROM usage_events WHERE api_key_id = %s", (key.key_id,))
    assert settled.fetchall() == [{"outcome": "upstream_error", "cost_nanos": 0}]
    monitor = db.execute(
        "SELECT status FROM gateway_events WHERE function_name = 'gateway-chat' AND status = 504"
    )
    assert len(monitor.fetchall()) == 1


class _CloudFormation:
    """The pre-signed URL CloudFormation waits on for a custom resource's answer."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        self.answers.append({"method": request.method, "body": json.loads(await request.body())})
        await Response(status_code=200)(scope, receive, send)


@pytest.fixture
def cloudformation():
    receiver = _CloudFormation()
    server = LoopbackServer(receiver, "fake-cloudformation")
    url = server.start()
    yield receiver, f"{url}/cloudformation-custom-resource-response?X-Amz-Signature=abc"
    server.stop()


@pytest.fixture
def empty_database(database_url):
    name = f"kaixu_release_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(database_url, name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_run_once_per_release_as_a_custom_resource(start, cloudformation, empty_database):
    receiver, response_url = cloudformation
    release = start("shared/deploy/release.handler", DATABASE_URL=empty_database)
    checksum = template.migrations_checksum()
    release.invoke(custom_resource_event("Create", response_url, checksum), deadline_s=120)
    answer = receiver.answers[-1]
    assert answer["method"] == "PUT" and answer["body"]["Status"] == "SUCCESS", answer
    assert answer["body"]["LogicalResourceId"] == "Migrations" and answer["body"]["PhysicalResourceId"]
    with psycopg.connect(empty_database) as conn:
        versions = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert versions == int(answer["body"]["Data"]["SchemaVersion"]) > 0
    release.invoke(custom_resource_event("Update", response_url, checksum), deadline_s=120)
    assert receiver.answers[-1]["body"]["Data"]["Applied"] == "none"
    release.invoke(custom_resource_event("Delete", response_url, checksum), deadline_s=120)
    assert receiver.answers[-1]["body"]["Status"] == "SUCCESS"
    with psycopg.connect(empty_database) as conn:  # deleting the stack leaves the data alone
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == versions


def test_a_failed_migration_fails_the_deploy_with_a_reason(start, cloudformation):
    receiver, response_url = cloudformation
    release = start("shared/deploy/release.handler", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    release.invoke(custom_resource_event("Update", response_url, "x"), deadline_s=60)
    answer = receiver.answers[-1]["body"]
    assert answer["Status"] == "FAILED" and "OperationalError" in answer["Reason"]
