"""How to start the gateway as a process of its own, the way production runs it."""

from __future__ import annotations

import sys


def server_command(port: int, workers: int = 1, *, proxy_headers: bool = True) -> list[str]:
    """uvicorn on one loopback port with quiet logs: how the benchmark, the soak and the fault
    tests start the gateway (``proxy_headers=False``: forwarding headers are the app's to judge)."""
    command = [sys.executable, "-m", "uvicorn", "shared.host.asgi:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return command if proxy_headers else [*command, "--no-proxy-headers"]
