"""A loopback fake of Netlify's file-digest deploy API, for tests.

A real HTTP server (uvicorn on 127.0.0.1 in a background thread) speaking the parts of
``https://api.netlify.com/api/v1`` KaixuPush uses:

- ``POST /sites/{site}/deploys?title=`` with ``{files: {"/path": sha1}, async, draft, branch}``:
  ``required`` lists the digests this site has not stored yet, across all its deploys (so a
  second deploy of the same files requires nothing). An ``async`` deploy answers
  ``preparing`` (without ``required``) for ``prepare_polls`` reads first.
- ``GET /sites/{site}/deploys/{id}`` and ``GET /deploys/{id}``.
- ``GET /sites/{site}/files``: the files of the site's published deploy (its latest ``ready``
  deploy that is not a draft), each ``{id, path, sha, mime_type, size}``; none before one.
- ``PUT /deploys/{id}/files/{path}`` (``application/octet-stream``): the path must be in the
  deploy and the SHA-1 of the received bytes must be the manifest's (else 422); the bytes
  are read as they arrive and kept (up to ``KEEP_BLOB_BYTES``; larger ones are only hashed,
  so the fake never holds a large file in the test process). State: ``uploading`` while
  digests are missing, then ``processing`` (for ``processing_polls`` reads), then ``ready``
  (or ``error`` with ``deploy_error`` set).
- Bearer tokens are checked (401 otherwise) and recorded per request.

Scripting (thread-safe)::

    fake.fail("upload", 429, times=3, retry_after="1")   # the next 3 uploads
    fake.fail("upload", 422, message="Invalid file")     # a permanent refusal
    fake.slow("create", 0.5)                              # a slow answer
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.fakes.server import LoopbackServer

DEFAULT_TOKEN = "nfp_fake_netlify_token_0123456789"
KEEP_BLOB_BYTES = 64 * 1024 * 1024  # larger uploads are hashed, counted and not kept
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Fault:
    route: str  # create | get | upload | files | any
    status: int  # 0: answer normally after the delay
    times: int
    retry_after: str | None = None
    delay_s: float = 0.0
    message: str = "scripted failure"
    path: str | None = None  # only requests whose path ends so (one file's upload)


@dataclass
class Deploy:
    id: str
    site_id: str
    files: dict[str, str]
    title: str | None
    branch: str | None
    draft: bool
    required: list[str]
    state: str
    prepare_left: int
    processing_left: int = 0
    uploaded: set[str] = field(default_factory=set)
    created_at: float = field(default_factory=time.time)


class FakeNetlify:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.url = ""
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/api/v1/sites/{site_id}/deploys", self._create, methods=["POST"]),
                Route("/api/v1/sites/{site_id}/deploys/{deploy_id}", self._get, methods=["GET"]),
                Route("/api/v1/sites/{site_id}/files", self._files, methods=["GET"]),
                Route("/api/v1/deploys/{deploy_id}", self._get, methods=["GET"]),
                Route("/api/v1/deploys/{deploy_id}/files/{path:path}", self._upload, methods=["PUT"]),
            ]
        )
        self._http = LoopbackServer(
            self.app, "fake-netlify", loop="asyncio", http="h11", timeout_graceful_shutdown=1
        )

    # ----- lifecycle

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v1"

    def start(self) -> FakeNetlify:
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    # ----- scripting and inspection

    def reset(self) -> None:
        with self._lock:
            self.tokens = {DEFAULT_TOKEN}
            self.sites: dict[str, set[str]] = {}
            self.deploys: dict[str, Deploy] = {}
            self.blobs: dict[str, bytes] = {}
            self.requests: list[dict[str, Any]] = []
            self.faults: list[Fault] = []
            self.prepare_polls = 1
            self.processing_polls = 0
            self.deploy_error: str | None = None

    def add_site(self, site_id: str, digests: set[str] | None = None) -> None:
        with self._lock:
            self.sites.setdefault(site_id, set()).update(digests or set())

    def fail(
        self,
        route: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        message: str = "scripted failure",
        delay_s: float = 0.0,
        path: str | None = None,
    ) -> None:
        with self._lock:
            self.faults.append(Fault(route, status, times, retry_after, delay_s, message, path))

    def slow(self, route: str, delay_s: float, *, times: int = 1) -> None:
        self.fail(route, 0, times=times, delay_s=delay_s)

    def uploads(self, status: int | None = 200) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r["route"] == "upload" and (status is None or r["status"] == status)
            ]

    def count(self, route: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                r["route"] == route and (status is None or r["status"] == status) for r in self.requests
            )

    # ----- the API

    def _record(self, request: Request, route: str, status: int, size: int = 0) -> None:
        self.requests.append(
            {
                "route": route,
                "method": request.method,
                "path": request.url.path,
                "status": status,
                "bytes": size,
                "token": request.headers.get("authorization", "").removeprefix("Bearer "),
                "retry_count": request.headers.get("x-nf-retry-count"),
                "at": time.monotonic(),
            }
        )

    def _error(
        self, request: Request, route: str, status: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        self._record(request, route, status)
        return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)

    @staticmethod
    def _applies(fault: Fault, request: Request, route: str) -> bool:
        at = fault.path is None or request.url.path.endswith(fault.path)
        return fault.route in (route, "any") and fault.times > 0 and at

    async def _gate(self, request: Request, route: str) -> JSONResponse | None:
        """Auth, then any scripted fault for this route."""
        with self._lock:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return self._error(request, route, 401, "Access Denied: bad token")
            fault = next((f for f in self.faults if self._applies(f, request, route)), None)
            if fault:
                fault.times -= 1
        if fault is None:
            return None
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if not fault.status:
            return None
        headers = {"retry-after": fault.retry_after} if fault.retry_after else None
        with self._lock:
            return self._error(request, route, fault.status, fault.message, headers)

    def _view(self, deploy: Deploy) -> dict[str, Any]:
        site = deploy.site_id
        preparing = deploy.state == "preparing"
        return {
            "id": deploy.id,
            "site_id": site,
            "state": deploy.state,
            "required": [] if preparing else list(deploy.required),
            "required_functions": [],
            "name": site,
            "url": f"http://{site}.netlify.app",
            "ssl_url": f"https://{site}.netlify.app",
            "deploy_url": f"http://{deploy.id}--{site}.netlify.app",
            "deploy_ssl_url": f"https://{deploy.id}--{site}.netlify.app",
            "admin_url": f"https://app.netlify.com/sites/{site}",
            "title": deploy.title,
            "branch": deploy.branch,
            "draft": deploy.draft,
            "context": "production",
            "created_at": deploy.created_at,
            "error_message": self.deploy_error if deploy.state == "error" else None,
        }

    async def _create(self, request: Request) -> JSONResponse:
        if refused := await self._gate(request, "create"):
            return refused
        body = await request.json()
        site_id = request.path_params["site_id"]
        with self._lock:
            if site_id not in self.sites:
                return self._error(request, "create", 404, "Not Found")
            files = body.get("files")
            if not isinstance(files, dict) or not all(
                isinstance(p, str) and p.startswith("/") and isinstance(s, str) and _SHA1.match(s)
                for p, s in files.items()
            ):
                return self._error(request, "create", 422, "files must map /paths to sha1 digests")
            required = sorted(set(files.values()) - self.sites[site_id])
            is_async = bool(body.get("async"))
            deploy = Deploy(
                id=uuid.uuid4().hex[:24],
                site_id=site_id,
                files=dict(files),
                title=request.query_params.get("title"),
                branch=body.get("branch"),
                draft=bool(body.get("draft")),
                required=required,
                state="preparing" if is_async and self.prepare_polls else "",
                prepare_left=self.prepare_polls if is_async else 0,
            )
            if not deploy.state:
                self._prepared(deploy)
            self.deploys[deploy.id] = deploy
            self._record(request, "create", 200)
            return JSONResponse(self._view(deploy))

    def _prepared(self, deploy: Deploy) -> None:
        missing = set(deploy.required) - self.sites[deploy.site_id]
        if missing:
            deploy.state = "uploading"
        else:
            deploy.state, deploy.processing_left = "processing", self.processing_polls

    def _advance(self, deploy: Deploy) -> None:
        """What time does to a deploy between two reads."""
        if deploy.state == "preparing":
            deploy.prepare_left -= 1
            if deploy.prepare_left <= 0:
                self._prepared(deploy)
        elif deploy.state == "processing":
            if deploy.processing_left > 0:
                deploy.processing_left -= 1
            else:
                deploy.state = "error" if self.deploy_error else "ready"

    async def _get(self, request: Request) -> JSONResponse:
        if refused := await self._gate(request, "get"):
            return refused
        with self._lock:
            deploy = self.deploys.get(request.path_params["deploy_id"])
            site = request.path_params.get("site_id")
            if deploy is None or (site is not None and deploy.site_id != site):
                return self._error(request, "get", 404, "Not Found")
            self._advance(deploy)
            self._record(request, "get", 200)
            return JSONResponse(self._view(deploy))

    async def _files(self, request: Request) -> JSONResponse:
        if refused := await self._gate(request, "files"):
            return refused
        site_id = request.path_params["site_id"]
        with self._lock:
            if site_id not in self.sites:
                return self._error(request, "files", 404, "Not Found")
            live = [d for d in self.deploys.values() if d.site_id == site_id and d.state == "ready"]
            published = [d for d in live if not d.draft][-1:]  # deploys are kept in creation order
            files = sorted(published[0].files.items()) if published else []
            self._record(request, "files", 200)
            return JSONResponse(
                [
                    {
                        "id": path,
                        "path": path,
                        "sha": digest,
                        "mime_type": "application/octet-stream",
                        "size": len(self.blobs.get(digest, b"")),
                    }
                    for path, digest in files
                ]
            )

    async def _upload(self, request: Request) -> JSONResponse:
        if refused := await self._gate(request, "upload"):
            return refused
        digest, received, kept = await self._read_streamed(request)
        with self._lock:
            deploy = self.deploys.get(request.path_params["deploy_id"])
            path = "/" + request.path_params["path"]
            if deploy is None:
                return self._error(request, "upload", 404, "Not Found")
            if request.headers.get("content-type") != "application/octet-stream":
                return self._error(request, "upload", 415, "send application/octet-stream")
            if path not in deploy.files:
                return self._error(request, "upload", 422, f"{path} is not part of this deploy")
            if request.headers.get("content-length") != str(received):
                return self._error(request, "upload", 411, "a Content-Length header is required")
            size = request.query_params.get("size")
            if size is not None and int(size) != received:
                return self._error(request, "upload", 422, "size does not match the body")
            if digest != deploy.files[path]:
                return self._error(request, "upload", 422, f"SHA1 mismatch for {path}: got {digest}")
            if kept is not None:
                self.blobs[digest] = kept
            self.sites[deploy.site_id].add(digest)
            deploy.uploaded.add(digest)
            if deploy.state == "uploading" and not set(deploy.required) - self.sites[deploy.site_id]:
                deploy.state, deploy.processing_left = "processing", self.processing_polls
            self._record(request, "upload", 200, received)
            return JSONResponse(
                {
                    "id": digest,
                    "path": path,
                    "sha": digest,
                    "mime_type": "application/octet-stream",
                    "size": received,
                }
            )

    async def _read_streamed(self, request: Request) -> tuple[str, int, bytes | None]:
        """(sha1, size, the bytes if at most KEEP_BLOB_BYTES) of a body read as it arrives, so
        the fake (which runs in the test process) never holds a large file in memory."""
        declared = request.headers.get("content-length", "")
        keep = declared.isdigit() and int(declared) <= KEEP_BLOB_BYTES
        digest, received, pieces = hashlib.sha1(), 0, []
        async for chunk in request.stream():
            digest.update(chunk)
            received += len(chunk)
            if keep and received <= KEEP_BLOB_BYTES:
                pieces.append(chunk)
        return (
            digest.hexdigest(),
            received,
            b"".join(pieces) if keep and received <= KEEP_BLOB_BYTES else None,
        )


def _quiet() -> None:
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def serve_fake_netlify() -> Iterator[FakeNetlify]:
    """Body of a session-scoped fixture: a started fake, stopped afterwards."""
    _quiet()
    fake = FakeNetlify().start()
    try:
        yield fake
    finally:
        fake.stop()
