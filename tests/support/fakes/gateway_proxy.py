"""A loopback proxy in front of the test server that can spoil one answer of a function, for
the tests of a client's retries (the KaixuPush client speaks plain HTTP from the standard
library, so its faults are staged on the wire, as a flaky network or proxy would make them).

    proxy.answer_first("kaixupush-init", 502, {"error": "bad gateway"}, forward=True)

makes the first ``kaixupush-init`` reach the gateway and its answer be lost (the client sees
the 502); with ``forward=False`` the gateway never sees it. Every request is recorded
(function name and headers); everything else passes through unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.support.fakes.server import LoopbackServer

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_DECODED = {*_HOP_BY_HOP, "content-encoding"}  # httpx hands the answer's body over decoded


@dataclass
class _Spoiled:
    status: int
    body: dict[str, Any]
    forward: bool


class GatewayProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._spoiled: dict[str, _Spoiled] = {}
        self._lock = threading.Lock()
        self._http = LoopbackServer(self, "gateway-proxy", loop="asyncio", http="h11")
        self.url = ""

    def answer_first(self, function: str, status: int, body: dict[str, Any], *, forward: bool) -> None:
        with self._lock:
            self._spoiled[function] = _Spoiled(status, body, forward)

    def calls(self, function: str) -> list[dict[str, str]]:
        """The headers of every request to ``function``, in order."""
        with self._lock:
            return [headers for name, headers in self.requests if name == function]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        function = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            self.requests.append((function, dict(request.headers)))
            spoiled = self._spoiled.pop(function, None)
        if spoiled is None or spoiled.forward:
            async with httpx.AsyncClient(timeout=60) as http:
                answer = await http.request(
                    request.method,
                    self.upstream + request.url.path,
                    params=request.query_params,
                    content=body,
                    headers={k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP},
                )
            passed: Response = Response(
                answer.content,
                answer.status_code,
                headers={k: v for k, v in answer.headers.items() if k not in _DECODED},
            )
        if spoiled is not None:
            passed = JSONResponse(spoiled.body, spoiled.status, headers={"retry-after": "0"})
        await passed(scope, receive, send)

    def start(self) -> GatewayProxy:
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()


def serve_gateway_proxy(upstream: str) -> Iterator[GatewayProxy]:
    """Body of a fixture: a started proxy to ``upstream``, stopped afterwards."""
    proxy = GatewayProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
