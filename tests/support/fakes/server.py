"""Serve an ASGI app on a free loopback port from a background thread: the test server and
every fake (providers, Stripe, Netlify) run this way, as real HTTP servers."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread belongs to pytest
        pass


class LoopbackServer:
    def __init__(self, app: Any, name: str, **uvicorn_options: Any) -> None:
        self.app = app
        self.name = name
        self.options = {"log_config": None, "access_log": False, "lifespan": "off", **uvicorn_options}
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = _Server(uvicorn.Config(self.app, **self.options))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self.url

    def wait_idle(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until no request is being served: work a test
        started (a call still settling after its client left) ends before the next test."""
        deadline = time.monotonic() + timeout
        while self._server is not None and self._server.server_state.tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
