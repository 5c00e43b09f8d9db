"""A loopback fake of the AWS Lambda Runtime API, and built functions run against it by the
real runtime interface client (``awslambdaric``), the way Lambda's python3.11 runs them.

The Runtime API is what a Lambda execution environment's runtime polls: ``GET
/2018-06-01/runtime/invocation/next`` hands it the next event (with the headers the real API
sends; awslambdaric's native client crashes without ``Lambda-Runtime-Trace-Id``), and the
runtime POSTs the handler's result to ``.../invocation/<id>/response`` or its failure to
``.../error`` (``/runtime/init/error`` when the handler cannot even be imported).

The process sees nothing of the test's environment: its interpreter is a bare virtualenv
(standard library only), and its path holds the built function code, the built layer and
the runtime client, as ``/var/task``, ``/opt/python`` and ``/var/runtime`` do on Lambda.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
import uuid
import venv
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
RUNTIME_PACKAGES = ("awslambdaric", "simplejson", "snapshot-restore-py")


@dataclass
class Invocation:
    """What the function answered: ``kind`` is ``response`` or ``error``."""

    kind: str
    body: Any
    seconds: float

    @property
    def response(self) -> dict[str, Any]:
        assert self.kind == "response", f"the function failed: {self.body}"
        return self.body


class FakeRuntimeApi:
    """One execution environment's Runtime API. :meth:`invoke` hands an event to the runtime
    and waits for its answer, so calls to one environment are sequential, as on Lambda."""

    def __init__(self) -> None:
        self._pending: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self._answers: dict[str, tuple[str, Any]] = {}
        self._answered = threading.Condition()
        self.init_error: Any = None
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: Any, *, deadline_s: float = 30.0, wait_s: float = 60.0) -> Invocation:
        request_id = str(uuid.uuid4())
        deadline_ms = int((time.time() + deadline_s) * 1000)
        started = time.monotonic()
        self._pending.put((request_id, json.dumps(event).encode(), deadline_ms))
        with self._answered:
            answered = self._answered.wait_for(
                lambda: request_id in self._answers or self.init_error is not None, timeout=wait_s
            )
        if self.init_error is not None:
            raise AssertionError(f"the function failed to start: {self.init_error}")
        if not answered:
            raise AssertionError(f"no answer to invocation {request_id} within {wait_s} s")
        kind, body = self._answers.pop(request_id)
        return Invocation(kind, body, time.monotonic() - started)

    def _next(self) -> tuple[str, bytes, int] | None:
        """The next invocation, as a long poll that ends when the environment is closed."""
        while not self._closed.is_set():
            try:
                return self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def _answer(self, request_id: str | None, kind: str, body: Any) -> None:
        with self._answered:
            if request_id is None:
                self.init_error = body
            else:
                self._answers[request_id] = (kind, body)
            self._answered.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path != f"{API_PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                invocation = api._next()
                if invocation is None:  # the environment is being shut down
                    self.close_connection = True
                    return
                request_id, event, deadline_ms = invocation
                self.send_response(200)
                for name, value in (
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:f",
                    ),
                    ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"),
                    ("Lambda-Runtime-Client-Context", ""),
                    ("Lambda-Runtime-Cognito-Identity", ""),
                    ("Content-Length", str(len(event))),
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(event)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw) if raw else None
                parts = self.path.removeprefix(f"{API_PREFIX}/").split("/")
                if parts == ["init", "error"]:
                    api._answer(None, "init_error", body)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    api._answer(parts[1], parts[2], body)
                else:
                    self.send_error(404)
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


def bare_python(folder: Path) -> Path:
    """An interpreter with the standard library and nothing else, like Lambda's."""
    if not (folder / "bin" / "python").exists():
        venv.create(folder, with_pip=False, symlinks=True)
    return folder / "bin" / "python"


def runtime_client(folder: Path) -> Path:
    """What Lambda keeps in /var/runtime: awslambdaric and what it imports, copied from this
    environment's installed distributions."""
    if not folder.exists():
        for name in RUNTIME_PACKAGES:
            dist = metadata.distribution(name)
            for file in dist.files or ():
                source = Path(dist.locate_file(file))
                if source.is_file() and "__pycache__" not in file.parts and ".dist-info" not in str(file):
                    target = folder / file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
    return folder


@dataclass
class Deployment:
    """A built artifact and what running its functions needs on this machine."""

    code: Path
    layer: Path
    python: Path
    runtime: Path

    def python_path(self) -> str:
        return f"{self.code}:{self.layer / 'python'}:{self.runtime}"

    def environment(self, name: str, settings: dict[str, str]) -> dict[str, str]:
        """What Lambda sets for a function, plus the function's own settings."""
        return {
            "PATH": f"{self.python.parent}:/usr/bin:/bin",
            "PYTHONPATH": self.python_path(),
            "LAMBDA_TASK_ROOT": str(self.code),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TZ": ":UTC",
            **settings,
        }


class LambdaFunction:
    """One function's execution environment: ``python -m awslambdaric <handler>`` polling its
    own fake Runtime API, warm between invocations until :meth:`stop`."""

    def __init__(self, deployment: Deployment, handler: str, settings: dict[str, str], log: Path) -> None:
        self.handler = handler
        self.api = FakeRuntimeApi()
        environment = deployment.environment(handler, settings)
        environment["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        environment["_HANDLER"] = handler
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(deployment.python), "-m", "awslambdaric", handler],
            cwd=deployment.code,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log

    def invoke(self, event: Any, **options: Any) -> Invocation:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.handler} exited: {self.log_path.read_text()[-2000:]}")
        return self.api.invoke(event, **options)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.api.close()

    def __enter__(self) -> LambdaFunction:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
