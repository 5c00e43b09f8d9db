"""The streaming function as the Lambda Web Adapter runs it: the artifact's own ``run.sh``
(the function's handler), on a bare interpreter with only the built code and layer. The
adapter itself is a compiled extension that cannot run here; what it does is relay HTTP to
this server and hand it the invocation's context in the ``x-amzn-lambda-context`` header."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.browser import ADMIN_PASSWORD
from tests.support.calls import body
from tests.support.deploy import function_settings
from tests.support.fakes.lambda_runtime import Deployment
from tests.support.fakes.server import free_port


@contextmanager
def web_adapter_app(deployment: Deployment, settings: dict[str, str]) -> Iterator[str]:
    """Run the streaming function's handler script and wait, as the adapter's TCP readiness
    check does, until it listens."""
    port = free_port()
    environment = deployment.environment("stream", {**settings, "AWS_LWA_PORT": str(port)})
    process = subprocess.Popen(
        [str(deployment.code / "run.sh")], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"run.sh exited: {process.stdout.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("run.sh never listened") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/.netlify/functions/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def app(deployment, database_url, upstreams):
    with web_adapter_app(deployment, function_settings(database_url, upstreams)) as base:
        yield base


def _frames(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[len("data: ") :])


def test_gateway_stream_frames_arrive_while_the_provider_is_still_sending(app, upstreams, make_key, db):
    words = [f"word{i} " for i in range(6)]
    upstreams.script("openai", deltas=words, chunk_delay_s=0.3, output_tokens=6)
    key = make_key()
    seen = []
    with httpx.stream("POST", app + "gateway-stream", json=body(), headers=key.auth, timeout=30) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        for event, data in _frames(response):
            if event == "delta" and not seen:
                # The first words are here, and the fake has not sent its last byte yet.
                assert upstreams.streams_closed == 0
            seen.append((event, data))
    events = [event for event, _ in seen]
    assert events[0] == "meta" and events[-1] == "done" and events.count("delta") == len(words)
    assert "".join(data["text"] for event, data in seen if event == "delta") == "".join(words)
    billed = db.execute(
        "SELECT outcome, output_tokens FROM usage_events WHERE api_key_id = %s", (key.key_id,)
    )
    assert billed.fetchall() == [{"outcome": "ok", "output_tokens": 6}]


def test_a_stream_near_its_deadline_ends_settled_and_billed_for_what_was_sent(app, upstreams, make_key, db):
    upstreams.script("openai", deltas=[f"w{i} " for i in range(40)], chunk_delay_s=0.25)
    key = make_key()
    context = {
        "request_id": "inv-1",
        "deadline": int((time.time() + 4.0) * 1000),
        "invoked_function_arn": "arn",
    }
    headers = {**key.auth, "x-amzn-lambda-context": json.dumps(context)}
    started = time.monotonic()
    with httpx.stream("POST", app + "gateway-stream", json=body(), headers=headers, timeout=30) as response:
        seen = list(_frames(response))
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, "the stream outlived its function"
    assert seen[-1][0] == "error" and seen[-1][1]["code"] == "UPSTREAM_TIMEOUT"
    deltas = [data for event, data in seen if event == "delta"]
    assert 3 <= len(deltas) < 40
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1)  # the provider was cut off
    event = db.execute(
        "SELECT outcome, estimated, output_tokens, cost_nanos FROM usage_events WHERE api_key_id = %s",
        (key.key_id,),
    ).fetchone()
    assert event["outcome"] == "stream_error" and event["estimated"] is True
    assert event["output_tokens"] > 0 and event["cost_nanos"] > 0
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0


def test_the_monitor_tail_streams_here(app):
    with httpx.stream(
        "GET",
        app + "admin-monitor",
        params={"tail": 1},
        headers={"x-admin-password": ADMIN_PASSWORD},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        first = next(_frames(response))
    assert first[0] == "hello"
