"""Running a function on AWS Lambda: the entry point for its events, and its deadline.

HTTP events (HTTP API payload 2.0 and Function URLs) reach the function's ASGI app through
Mangum. An EventBridge schedule invokes ``maintenance`` and ``kaixupush-worker`` with its own
event, which Mangum does not know: :class:`ScheduledEvent` turns it into a POST to the
function, marked as coming from the schedule. That mark replaces the secret header, because
nobody else can produce it: only principals allowed to invoke the Lambda directly (the
schedule's rule, and the account's own administrators) can hand it a raw event, while API
Gateway and Function URLs always wrap a client's request in an HTTP event of their own.

A Lambda invocation is stopped when its time is up, mid-call or not. :func:`remaining_s`
tells how long the invocation has left, so the gateway can cut an upstream call in time to
settle it (see ``Call.deadline`` in ``shared.gateway``).
"""

from __future__ import annotations

import time
from typing import Any, cast

import orjson
from mangum import Mangum
from mangum.types import ASGI, LambdaConfig, LambdaContext, LambdaEvent, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Scope

# Under the Lambda Web Adapter (the streaming function) the invocation's context arrives as
# this request header, a JSON object whose "deadline" is in epoch milliseconds.
WEB_ADAPTER_CONTEXT_HEADER = "x-amzn-lambda-context"


class ScheduledRunFailed(Exception):
    """A scheduled run answered with an error: raised so that Lambda counts a failed
    invocation (its Errors metric and alarm) and EventBridge retries it."""


def is_scheduled(event: Any) -> bool:
    """An EventBridge scheduled event (``rate(...)`` or ``cron(...)`` rule)."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def from_schedule(scope: Scope) -> bool:
    """Whether this request is a scheduled run rather than an HTTP call."""
    return is_scheduled(scope.get("aws.event"))


class ScheduledEvent:
    """A Mangum handler for EventBridge scheduled events: a bodiless POST to the function."""

    def __init__(self, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> None:
        self.event = event
        self.context = context
        self.config = config
        self.body = b""

    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        return is_scheduled(event)

    @property
    def scope(self) -> Scope:
        return {
            "type": "http",
            "method": "POST",
            "http_version": "1.1",
            "headers": [[b"user-agent", b"Amazon EventBridge"]],
            "path": "/",
            "raw_path": None,
            "root_path": "",
            "scheme": "https",
            "query_string": b"",
            "server": None,
            "client": None,
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "aws.event": self.event,
            "aws.context": self.context,
        }

    def __call__(self, response: Response) -> dict[str, Any]:
        body = orjson.loads(response["body"]) if response["body"] else None
        if response["status"] >= 400:
            raise ScheduledRunFailed(f"{response['status']}: {body}")
        return {"status": response["status"], "body": body}


def buffers_responses(scope: Scope) -> bool:
    """Whether the response will reach the client only once complete: under Mangum (a Lambda
    behind API Gateway) it is collected whole, so an endless stream never arrives."""
    return "aws.event" in scope


def handler(app: ASGIApp, *, scheduled: bool = False) -> Mangum:
    """The Lambda entry point of one function's app; ``scheduled`` also accepts the schedule."""
    # Starlette's ASGIApp and Mangum's ASGI protocol describe the same callable differently.
    return Mangum(cast(ASGI, app), lifespan="off", custom_handlers=[ScheduledEvent] if scheduled else None)


def remaining_s(scope: Scope, headers: Headers) -> float | None:
    """Seconds left before the host stops this invocation, or None when nothing will.

    Under Mangum the Lambda context is in the scope; under the Lambda Web Adapter it is in a
    header. A caller can send that header to any host, but it can only shorten its own call
    (the gateway takes the earlier of this and its own timeouts), so it is read wherever."""
    context = scope.get("aws.context")
    if context is not None:
        return float(context.get_remaining_time_in_millis()) / 1000
    raw = headers.get(WEB_ADAPTER_CONTEXT_HEADER)
    if not raw:
        return None
    try:
        deadline_ms = orjson.loads(raw).get("deadline")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(deadline_ms, int) or isinstance(deadline_ms, bool):
        return None
    return deadline_ms / 1000 - time.time()
