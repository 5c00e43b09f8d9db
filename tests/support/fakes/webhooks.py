"""A loopback webhook receiver for tests: named endpoints (``/<name>``) that record what they
get and can fail on purpose, and the signature check a real receiver makes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.fakes.server import LoopbackServer

Delivery = tuple[dict[str, str], bytes]  # (headers, body)


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: dict[str, list[Delivery]] = {}
        self.client_ports: dict[str, list[int]] = {}  # the sender's port: one per connection
        self.failures_left: dict[str, int] = {}
        app = Starlette(routes=[Route("/{name}", self._hook, methods=["POST"])])
        self._http = LoopbackServer(app, "webhook-receiver")
        self.base = self._http.start()

    async def _hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.failures_left.get(name):
            self.failures_left[name] -= 1
            return Response("boom", status_code=500)
        self.received.setdefault(name, []).append((dict(request.headers), await request.body()))
        self.client_ports.setdefault(name, []).append(request.client.port if request.client else 0)
        return Response(status_code=204)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def got(self, name: str) -> list[Delivery]:
        return self.received.setdefault(name, [])

    def payloads(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.got(name)]

    def types(self, name: str) -> list[str]:
        return [payload["type"] for payload in self.payloads(name)]

    def reset(self) -> None:
        self.received.clear()
        self.client_ports.clear()
        self.failures_left.clear()

    def stop(self) -> None:
        self._http.stop()


class Endpoint:
    """One endpoint of a receiver, for tests that need no other."""

    def __init__(self, receiver: WebhookReceiver, name: str) -> None:
        self.receiver, self.name = receiver, name
        self.url = receiver.url(name)

    @property
    def received(self) -> list[Delivery]:
        return self.receiver.got(self.name)

    @property
    def failures_left(self) -> int:
        return self.receiver.failures_left.get(self.name, 0)

    @failures_left.setter
    def failures_left(self, count: int) -> None:
        self.receiver.failures_left[self.name] = count

    def payloads(self) -> list[dict[str, Any]]:
        return self.receiver.payloads(self.name)


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the HMAC over "<t>.<body>", compare, and check that the
    timestamp is recent."""
    parts = dict(part.split("=", 1) for part in headers["x-kaixu-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts["v1"], expected) and abs(int(parts["t"]) - time.time()) < 60
