"""KaixuPush client: deploy a folder to Netlify through the gateway with a Kaixu key.

    KAIXU_KEY=kx_live_... python -m shared.kaixupush.client deploy ./dist --project my-site

It hashes every file (SHA-1), sends the manifest (gzip-compressed) to ``kaixupush-init``,
uploads only what Netlify says it lacks (whole files up to the gateway's part size, larger
ones in parts, a few at a time, with a progress bar on stderr), then calls
``kaixupush-complete`` and prints the site's URL. Running it again on an unchanged folder
uploads nothing. Hidden files and folders (``.git``, ``.env``...) are skipped, except
``.well-known``. A symbolic link is deployed as the file it points to only when that file is
inside the folder; a link to anything outside it (``secret -> ~/.aws/credentials``) stops
the deploy before anything is sent, naming the link (links to folders are not followed).
``KAIXU_BASE_URL`` (default ``http://127.0.0.1:8888``) names the gateway.

This module runs on the customer's machine, not in the gateway: it reads its own two
environment variables and imports nothing from the server side.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from shared import numbers

DEFAULT_BASE_URL = "http://127.0.0.1:8888"
_RETRY_STATUSES = (429, 502, 503, 504)
_MAX_TRIES = 6
_READ_BLOCK = 1 << 20
_PREPARING = ("creating", "new", "enqueued", "preparing")
_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"  # a retry arrived while the first request still runs


class PushError(Exception):
    """A failure to report to the user (the gateway's error sentence and code)."""


@dataclass(frozen=True)
class LocalFile:
    path: str  # "/dir/file.html", as the manifest names it
    source: Path
    size: int
    sha1: str


def _sha1_of(source: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with source.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _visible(relative: Path) -> bool:
    return all(not part.startswith(".") or part == ".well-known" for part in relative.parts)


def _escapes(source: Path, root: Path) -> Path | None:
    """Where ``source`` really is when that is outside ``root`` (a symbolic link out of the
    folder, or inside a linked folder), else None."""
    target = source.resolve()
    return None if target.is_relative_to(root) else target


def scan(folder: Path) -> list[LocalFile]:
    """Every file to deploy, with its size and SHA-1, in path order; PushError if a file is a
    link to outside the folder (it would publish whatever it points to)."""
    root = folder.resolve()
    found, outside = [], []
    for source in sorted(folder.rglob("*")):
        relative = source.relative_to(folder)
        if not source.is_file() or not _visible(relative):
            continue
        if (target := _escapes(source, root)) is not None:
            outside.append(f"{relative.as_posix()} -> {target}")
            continue
        real = source.resolve()  # read what was checked, even if the link changes later
        found.append(LocalFile("/" + relative.as_posix(), real, real.stat().st_size, _sha1_of(real)))
    if outside:
        shown = "; ".join(outside[:5]) + ("; ..." if len(outside) > 5 else "")
        raise PushError(
            f"{len(outside)} file(s) in {folder} are symbolic links to outside the folder and would "
            f"publish what they point to: {shown}. Remove them or copy the files into the folder."
        )
    return found


def _check_sizes(todo: list[LocalFile], limit: int | None) -> None:
    """Refuse, before sending anything, a file larger than the gateway takes."""
    too_big = [local for local in todo if limit is not None and local.size > limit]
    if too_big:
        first = too_big[0]
        raise PushError(
            f"{first.path} is {first.size} bytes; the gateway takes files up to {limit} bytes"
            + (f" ({len(too_big) - 1} more file(s) are too large)" if len(too_big) > 1 else "")
        )


class Progress:
    """A one-line progress bar on stderr (files and bytes sent)."""

    def __init__(self, files: int, total_bytes: int, out: TextIO) -> None:
        self.files, self.total, self.out = files, max(1, total_bytes), out
        self.done_files = self.sent = 0
        self._lock = threading.Lock()

    def add(self, sent: int = 0, files: int = 0) -> None:
        with self._lock:
            self.sent += sent
            self.done_files += files
            filled = int(30 * min(1.0, self.sent / self.total))
            self.out.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done_files}/{self.files} files "
                f"{self.sent / 1048576:.1f}/{self.total / 1048576:.1f} MiB"
            )
            self.out.flush()

    def finish(self) -> None:
        self.out.write("\n")
        self.out.flush()


def _retryable(response: httpx.Response) -> bool:
    """429/502/503/504, or a retried init that found its first attempt still running."""
    if response.status_code in _RETRY_STATUSES:
        return True
    if response.status_code != 409:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == _IN_PROGRESS


class Gateway:
    """The KaixuPush endpoints, with retries on 429/5xx (and on an init still in progress)
    honouring Retry-After."""

    def __init__(self, base_url: str, key: str, timeout_s: float = 180.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/.netlify/functions/",
            headers={"authorization": f"Bearer {key}", "x-kaixu-app": "kaixupush-client"},
            timeout=timeout_s,
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, name: str, **request: Any) -> httpx.Response:
        for attempt in range(1, _MAX_TRIES + 1):
            try:
                response = self.http.request(method, name, **request)
            except httpx.TransportError as exc:
                if attempt == _MAX_TRIES:
                    raise PushError(f"{name}: the gateway could not be reached ({exc})") from None
                time.sleep(min(30, 2**attempt))
                continue
            if not _retryable(response) or attempt == _MAX_TRIES:
                break
            retry_after = numbers.whole(response.headers.get("retry-after", ""))
            time.sleep(min(60, retry_after) if retry_after is not None else min(30, 2**attempt))
        if response.status_code >= 400:
            try:
                body = response.json()
                message = f"{body.get('error')} ({body.get('code')})"
            except ValueError:
                message = response.text[:200]
            raise PushError(f"{name} answered {response.status_code}: {message}")
        return response


class Deployer:
    def __init__(
        self, gateway: Gateway, *, jobs: int = 4, out: TextIO = sys.stderr, poll_s: float = 2.0
    ) -> None:
        self.gateway, self.jobs, self.out, self.poll_s = gateway, jobs, out, poll_s

    def deploy(
        self,
        folder: Path,
        project: str,
        *,
        branch: str = "main",
        title: str | None = None,
        draft: bool = False,
    ) -> dict[str, Any]:
        files = scan(folder)
        if not files:
            raise PushError(f"{folder} has no files to deploy")
        manifest = {
            "project_id": project,
            "branch": branch,
            "title": title or f"Deploy of {folder.name}",
            "draft": draft,
            "bytes": sum(f.size for f in files),
            "files": {f.path: f.sha1 for f in files},
        }
        init = self.gateway.call(  # one key per run: a retried init never makes a second deploy
            "POST",
            "kaixupush-init",
            content=gzip.compress(json.dumps(manifest).encode()),
            headers={
                "content-type": "application/json",
                "content-encoding": "gzip",
                "idempotency-key": f"kaixupush-{uuid.uuid4()}",
            },
        ).json()
        by_digest: dict[str, LocalFile] = {}
        for local in files:
            by_digest.setdefault(local.sha1, local)
        todo = [by_digest[sha1] for sha1 in self._required(init)]
        _check_sizes(todo, init.get("max_file_bytes"))
        progress = Progress(len(todo), sum(f.size for f in todo), self.out)
        upload = self._uploader(init["push_id"], int(init["part_bytes"]), progress)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(upload, todo))
        progress.finish()
        done = self._complete(init["push_id"])
        return {
            **done,
            "uploaded_files": len(todo),
            "uploaded_bytes": sum(f.size for f in todo),
            "file_count": len(files),
        }

    def _required(self, init: dict[str, Any], timeout_s: float = 600) -> list[str]:
        """The digests Netlify asked for (waiting while it still prepares the deploy)."""
        state, deadline = init["state"], time.monotonic() + timeout_s
        if state not in _PREPARING:
            return list(init["required"])
        while state in _PREPARING:
            if time.monotonic() > deadline:
                raise PushError("Netlify did not prepare the deploy in time")
            time.sleep(self.poll_s)
            status = self.gateway.call("GET", "kaixupush-status", params={"push_id": init["push_id"]})
            state = status.json()["item"]["state"]
        files = self.gateway.call("GET", "kaixupush-file-status", params={"push_id": init["push_id"]})
        return [item["sha1"] for item in files.json()["items"]]

    def _uploader(self, push_id: str, part_bytes: int, progress: Progress) -> Callable[[LocalFile], None]:
        def upload(local: LocalFile) -> None:
            if local.size <= part_bytes:
                self.gateway.call(
                    "PUT",
                    "kaixupush-upload",
                    params={"push_id": push_id, "path": local.path},
                    content=local.source.read_bytes(),
                    headers={"x-content-sha1": local.sha1},
                )
                progress.add(local.size, 1)
            else:
                self._upload_parts(push_id, local, part_bytes, progress)
                progress.add(0, 1)

        return upload

    def _upload_parts(self, push_id: str, local: LocalFile, part_bytes: int, progress: Progress) -> None:
        parts = math.ceil(local.size / part_bytes)
        with local.source.open("rb") as handle:
            for part in range(parts):
                data = handle.read(part_bytes)
                self.gateway.call(
                    "PUT",
                    "kaixupush-upload-chunk",
                    params={
                        "push_id": push_id,
                        "sha1": local.sha1,
                        "path": local.path,
                        "part": part,
                        "parts": parts,
                    },
                    content=data,
                    headers={"x-content-sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()},
                )
                progress.add(len(data))
        answer = self.gateway.call(
            "POST", "kaixupush-upload-complete", json={"push_id": push_id, "sha1": local.sha1, "parts": parts}
        )
        if answer.status_code == 202:
            self._wait_for_job(push_id, local)

    def _wait_for_job(self, push_id: str, local: LocalFile, timeout_s: float = 900) -> None:
        """The gateway will retry the file's delivery itself; watch until it is done."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(self.poll_s)
            item = self.gateway.call(
                "GET", "kaixupush-file-status", params={"push_id": push_id, "sha1": local.sha1}
            ).json()["item"]
            if item["uploaded"]:
                return
            if item["job"] and item["job"]["status"] in ("failed", "expired"):
                raise PushError(f"{local.path} could not be delivered: {item['job']['last_error']}")
        raise PushError(f"{local.path} was not delivered within {timeout_s:.0f} s")

    def _complete(self, push_id: str, timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        answer = self.gateway.call("POST", "kaixupush-complete", json={"push_id": push_id, "wait": 60})
        body = answer.json()
        while answer.status_code == 202 and time.monotonic() < deadline:
            time.sleep(self.poll_s)
            answer = self.gateway.call("GET", "kaixupush-status", params={"push_id": push_id})
            body = answer.json()["item"]
            if body["state"] == "ready":
                break
        if body["state"] != "ready":
            raise PushError(f"the deploy is {body['state']}: {body.get('error') or 'not ready in time'}")
        return dict(body)


def main(argv: list[str] | None = None, out: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.kaixupush.client", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    deploy = commands.add_parser("deploy", help="deploy a folder")
    deploy.add_argument("folder", type=Path)
    deploy.add_argument("--project", required=True, help="the project id registered for your key")
    deploy.add_argument("--branch", default="main")
    deploy.add_argument("--title")
    deploy.add_argument("--draft", action="store_true", help="a draft deploy (not published)")
    deploy.add_argument("--jobs", type=int, default=4, help="files uploaded at once")
    args = parser.parse_args(argv)
    key = os.environ.get("KAIXU_KEY", "")
    if not key:
        print("Set KAIXU_KEY to your Kaixu key.", file=out)
        return 2
    gateway = Gateway(os.environ.get("KAIXU_BASE_URL", DEFAULT_BASE_URL), key)
    try:
        result = Deployer(gateway, jobs=max(1, args.jobs), out=out).deploy(
            args.folder, args.project, branch=args.branch, title=args.title, draft=args.draft
        )
    except PushError as exc:
        print(f"deploy failed: {exc}", file=out)
        return 1
    finally:
        gateway.close()
    print(f"uploaded {result['uploaded_files']} of {result['file_count']} files", file=out)
    print(result["url"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
