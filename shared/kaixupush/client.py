"""KaixuPush: deploy a folder to Netlify through your Kaixu gateway, with your Kaixu key.

One file that needs Python 3.9+ and nothing but its standard library. Your gateway publishes it:

    curl -fsSLO https://GATEWAY/kaixupush.py
    KAIXU_KEY=kx_live_... KAIXU_BASE_URL=https://GATEWAY python kaixupush.py deploy ./dist --project my-site

It hashes every file (SHA-1), sends the manifest (gzip-compressed) to ``kaixupush-init``,
uploads only what Netlify says it lacks (whole files up to the gateway's part size, larger
ones in parts, a few at a time), then calls ``kaixupush-complete`` and prints the site's URL
on stdout. Running it again on an unchanged folder uploads nothing. ``--dry-run`` compares
the folder with the published site and deploys nothing; ``--json`` prints one JSON result.
On a terminal it draws a progress bar on stderr; elsewhere (a CI log) it writes one line per
phase and a summary of the upload every few seconds.

Hidden files and folders (``.git``, ``.env``...) are skipped, except ``.well-known``. A
symbolic link is deployed as the file it points to only when that file is inside the folder;
a link to anything outside it (``secret -> ~/.aws/credentials``) stops the deploy before
anything is sent, naming the link (links to folders are not followed).

What may pass is retried with a backoff, honouring Retry-After: the network, 429 and 502-504
answers (``--retries``, ``KAIXUPUSH_RETRIES``). What retrying cannot fix (a refused key, a
Netlify token Netlify refuses, a cap) stops at once, and the exit code says whose refusal it
was (see ``--help``). Each answer of ``kaixupush-init`` names the client the gateway publishes
and the oldest it expects: an older client warns on stderr.

This module runs on the customer's machine, not in the gateway: it imports nothing but the
standard library (from a checkout of the gateway, ``python -m shared.kaixupush.client`` is
the same program).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.client
import json
import math
import os
import platform
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from urllib.parse import SplitResult, unquote, urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

# 1.1.0: a large file Netlify refuses ends with exit 4 (a refusal of Netlify's), not 5.
__version__ = "1.1.0"

PROG = "kaixupush.py"
DEFAULT_BASE_URL = "http://127.0.0.1:8888"
DEFAULT_RETRIES = 5
SUMMARY_EVERY_S = 5.0  # a line about the upload this often when there is no progress bar

EXIT_OK = 0
EXIT_LOCAL = 2  # usage, or a problem here: no key, no folder, a link out of the folder
EXIT_GATEWAY = 3  # the gateway refused (4xx): the key, its role, the project, a cap, a limit
EXIT_NETLIFY = 4  # Netlify refused: the token the gateway holds, the site, the deploy
EXIT_TRANSIENT = 5  # still failing after the retries: network, 5xx, rate limits of Netlify

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  deployed (with --dry-run: compared, nothing deployed)
  1  an unexpected error in this program (please report it)
  {EXIT_LOCAL}  usage, or a problem here: KAIXU_KEY unset, no such folder, a link to outside it
  {EXIT_GATEWAY}  the gateway refused (4xx): the key, its role, the project, the push cap, a limit
  {EXIT_NETLIFY}  Netlify refused: the gateway's Netlify token is invalid or revoked, the site, the deploy
  {EXIT_TRANSIENT}  still failing after the retries: the network, the gateway or Netlify unavailable

environment:
  KAIXU_KEY           your Kaixu key (kx_live_...), with the deployer role or above
  KAIXU_BASE_URL      your gateway (default {DEFAULT_BASE_URL})
  KAIXUPUSH_RETRIES   retries of a failed request (default {DEFAULT_RETRIES}; --retries wins)
"""

_RETRY_STATUSES = (429, 502, 503, 504)
_LONGEST_WAIT_S = 60  # a Retry-After longer than this is not waited for: the refusal stands
_READ_BLOCK = 1 << 20
_PREPARING = ("creating", "new", "enqueued", "preparing")
_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"  # a retry arrived while the first request still runs
_NETLIFY_RATE_LIMITED = "NETLIFY_RATE_LIMITED"
# What the gateway answers when Netlify, or the gateway's access to it, is the problem: no
# retry can help, the operator (or the site) must change something.
_NETLIFY_REFUSALS = frozenset(
    {
        "NETLIFY_TOKEN_REJECTED",
        "NETLIFY_REFUSED",
        "NETLIFY_DEPLOY_FAILED",
        "NETLIFY_NOT_CONFIGURED",
        "NETLIFY_TOKEN_UNAVAILABLE",
    }
)
_ASK_OPERATOR_FOR_TOKEN = "ask your gateway's operator to set a valid Netlify token for your account"
_HINTS = {
    "MISSING_KEY": "set KAIXU_KEY to a Kaixu key of this gateway (kx_live_...)",
    "INVALID_KEY": "check KAIXU_KEY: it must be a live Kaixu key of this gateway (kx_live_...)",
    "KEY_REVOKED": "this key was revoked: use a current one in KAIXU_KEY",
    "FORBIDDEN": "deploying needs a key with the deployer role or above",
    "PROJECT_NOT_FOUND": "check --project: it must name a project registered for your account",
    "PUSH_CAP_REACHED": "the month's push cap is reached: ask your gateway's operator to raise it",
    "NETLIFY_TOKEN_REJECTED": _ASK_OPERATOR_FOR_TOKEN,
    "NETLIFY_TOKEN_UNAVAILABLE": _ASK_OPERATOR_FOR_TOKEN,
    "NETLIFY_NOT_CONFIGURED": _ASK_OPERATOR_FOR_TOKEN,
}
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
USER_AGENT = f"kaixupush/{__version__} python/{platform.python_version()}"


class PushError(Exception):
    """A failure to report: the sentence, the exit code it ends with, the gateway's code."""

    def __init__(self, message: str, exit_code: int = EXIT_LOCAL, code: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code


# ----------------------------------------------------------------------------- the folder


class LocalFile(NamedTuple):
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
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    root = folder.resolve()
    found, outside = [], []
    for source in sorted(folder.rglob("*")):
        relative = source.relative_to(folder)
        if not source.is_file() or not _visible(relative):
            continue
        target = _escapes(source, root)
        if target is not None:
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
    if not found:
        raise PushError(f"{folder} has no files to deploy")
    return found


def _check_sizes(todo: list[LocalFile], limit: int | None) -> None:
    """Refuse, before sending it, a file larger than the gateway takes (its limit: exit 3)."""
    too_big = [local for local in todo if limit is not None and local.size > limit]
    if too_big:
        first = too_big[0]
        raise PushError(
            f"{first.path} is {first.size} bytes; the gateway takes files up to {limit} bytes"
            + (f" ({len(too_big) - 1} more file(s) are too large)" if len(too_big) > 1 else ""),
            EXIT_GATEWAY,
        )


def size(count: int) -> str:
    """``15414067`` -> ``14.7 MiB``: bytes as a person reads them."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"


# ----------------------------------------------------------------------------- what the user sees


class Reporter:
    """What the user reads on stderr. On a terminal, the upload is a progress bar redrawn in
    place; elsewhere (a CI log, a pipe) no carriage return is ever written: a line per phase,
    and a summary of the upload every ``every_s`` seconds."""

    def __init__(self, out: TextIO, *, bar: bool, every_s: float = SUMMARY_EVERY_S) -> None:
        self.out, self.bar, self.every_s = out, bar, every_s
        self.files = self.total = self.done_files = self.sent = 0
        self._started = self._next_summary = 0.0
        self._drawn = False
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            self._write(("\n" if self._drawn else "") + text + "\n")
            self._drawn = False

    def start_upload(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self.files, self.total, self.done_files, self.sent = files, total_bytes, 0, 0
            self._started = time.monotonic()
            self._next_summary = self._started + self.every_s

    def add(self, sent: int = 0, files: int = 0) -> None:
        with self._lock:
            self.sent += sent
            self.done_files += files
            if self.bar:
                filled = int(30 * min(1.0, self.sent / max(1, self.total)))
                self._write(
                    f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done_files}/{self.files} files "
                    f"{self.sent / 1048576:.1f}/{self.total / 1048576:.1f} MiB"
                )
                self._drawn = True
            elif time.monotonic() >= self._next_summary:
                self._next_summary = time.monotonic() + self.every_s
                self._write(
                    f"uploading: {self.done_files}/{self.files} files, {size(self.sent)} of "
                    f"{size(self.total)}\n"
                )

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


# ----------------------------------------------------------------------------- HTTP


class Answer(NamedTuple):
    """One response, read whole."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        """The gateway's error code (``{"error": ..., "code": ...}``), if any."""
        return self._text("code")

    @property
    def cause(self) -> str | None:
        """What the refusal comes from: the code of what a failed job met (``reason_code`` of a
        ``JOB_FAILED``: Netlify's refusal, say), else the code itself."""
        return self._text("reason_code") or self.code

    def _text(self, name: str) -> str | None:
        data = self.json()
        value = data.get(name) if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def describe(self) -> str:
        data = self.json()
        if isinstance(data, dict) and "error" in data:
            return f"{data.get('error')} ({data.get('code')})"
        return self.body[:200].decode("utf-8", "replace").strip() or "no details"


def _proxy_for(scheme: str, host: str) -> SplitResult | None:
    """The proxy the environment names for ``scheme`` (HTTPS_PROXY, HTTP_PROXY; NO_PROXY
    honoured), as curl and pip use it."""
    url = getproxies().get(scheme)
    if not url or proxy_bypass(host):
        return None
    return urlsplit(url if "://" in url else "http://" + url)


def _proxy_headers(proxy: SplitResult) -> dict[str, str]:
    if not proxy.username:
        return {}
    user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(user.encode()).decode()}


class Transport:
    """Keep-alive HTTP/1.1 connections to the gateway, one per thread (files are sent a few
    at a time), through the environment's proxy if it names one."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise PushError(f"KAIXU_BASE_URL must be an http:// or https:// URL, got {base_url!r}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/") + "/.netlify/functions/"
        self.timeout_s = timeout_s
        self.proxy = _proxy_for(parts.scheme, self.host)
        # Through a plain HTTP proxy the request line names the whole URL; HTTPS is tunnelled.
        self.origin = f"http://{self.host}:{self.port}" if self.proxy and not self.https else ""
        self.tls = ssl.create_default_context() if self.https else None
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self.host, self.port
        if self.proxy is not None:
            host, port = self.proxy.hostname or "", self.proxy.port or 80
        connection: http.client.HTTPConnection
        if self.tls is not None:
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout_s, context=self.tls)
            if self.proxy is not None:
                connection.set_tunnel(self.host, self.port, headers=_proxy_headers(self.proxy))
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        with self._lock:
            self._open.append(connection)
        return connection

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it has served a request before."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        connection = self._connect()
        self._local.connection = connection
        return connection, False

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def send(
        self, method: str, name: str, query: dict[str, Any] | None, body: bytes, headers: dict[str, str]
    ) -> Answer:
        """One request to the function ``name``; OSError or HTTPException if it failed."""
        url = self.origin + self.prefix + name + ("?" + urlencode(query) if query else "")
        if self.proxy is not None and not self.https:
            headers = {**headers, **_proxy_headers(self.proxy)}
        while True:
            connection, reused = self._connection()
            try:
                connection.request(method, url, body=body or None, headers=headers)
                response = connection.getresponse()
                answer = Answer(
                    response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
                )
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if reused and isinstance(exc, _STALE):
                    continue  # the gateway had closed the idle connection: once more, on a new one
                raise
            if response.will_close:
                self._drop()
            return answer

    def close(self) -> None:
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _backoff_s(attempt: int) -> float:
    return float(min(30, 2**attempt))


def _retry_wait(answer: Answer, attempt: int) -> float | None:
    """How long to wait before trying again, or None when trying again cannot help."""
    code = answer.code
    if code in _NETLIFY_REFUSALS:
        return None
    if answer.status not in _RETRY_STATUSES and not (answer.status == 409 and code == _IN_PROGRESS):
        return None
    wait = _seconds(answer.headers.get("retry-after"))
    if wait is None:
        return _backoff_s(attempt)
    return wait if wait <= _LONGEST_WAIT_S else None


def _exit_code(answer: Answer) -> int:
    code = answer.code
    if answer.cause in _NETLIFY_REFUSALS:
        return EXIT_NETLIFY
    if answer.status >= 500 or code in (_NETLIFY_RATE_LIMITED, _IN_PROGRESS):
        return EXIT_TRANSIENT
    return EXIT_GATEWAY


def _refusal(name: str, answer: Answer, attempts: int) -> PushError:
    message = f"{name} answered {answer.status}: {answer.describe()}"
    if attempts > 1:
        message += f", still after {attempts} attempts"
    hint = _HINTS.get(answer.cause or "")
    if hint is None and not isinstance(answer.json(), dict):
        hint = "this is not the gateway's answer: check KAIXU_BASE_URL"
    return PushError(message + (f". What to do: {hint}" if hint else ""), _exit_code(answer), answer.code)


class Gateway:
    """The KaixuPush functions of one gateway, called with the key. Retries what may pass (the
    network, 429, 502-504, an init still running), honouring Retry-After; stops at once on what
    will not (see ``_retry_wait``)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        retries: int = DEFAULT_RETRIES,
        timeout_s: float = 180.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = Transport(self.base_url, timeout_s)
        self.tries = 1 + max(0, retries)
        self.say = say or (lambda line: None)
        self.headers = {
            "authorization": f"Bearer {key}",
            "accept": "application/json",
            "user-agent": USER_AGENT,
            "x-kaixu-app": "kaixupush-client",
            "x-kaixu-build": __version__,
        }

    def close(self) -> None:
        self.transport.close()

    def call(
        self,
        method: str,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes = b"",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """The function's 2xx answer, or PushError with the exit code the failure means."""
        sent = {**self.headers, **(headers or {})}
        if json_body is not None:
            body, sent["content-type"] = json.dumps(json_body).encode(), "application/json"
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self.transport.send(method, name, query, body, sent)
            except ssl.SSLCertVerificationError as exc:
                raise PushError(
                    f"the gateway's certificate could not be verified ({exc.verify_message}): "
                    "check KAIXU_BASE_URL"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                reason = str(exc) or type(exc).__name__
                problem = f"{name}: the gateway at {self.base_url} could not be reached ({reason})"
                if attempt >= self.tries:
                    raise PushError(f"{problem}, still after {attempt} attempts", EXIT_TRANSIENT) from None
                self._pause(_backoff_s(attempt), problem)
                continue
            wait = _retry_wait(answer, attempt)
            if wait is None or attempt >= self.tries:
                break
            self._pause(wait, f"{name} answered {answer.status}: {answer.describe()}")
        if answer.status >= 400:
            raise _refusal(name, answer, attempt)
        return answer

    def json(self, method: str, name: str, **request: Any) -> dict[str, Any]:
        """:meth:`call`, for a function that answers a JSON object."""
        data = self.call(method, name, **request).json()
        if not isinstance(data, dict):
            raise PushError(f"{name} did not answer JSON: check KAIXU_BASE_URL", EXIT_TRANSIENT)
        return data

    def _pause(self, wait_s: float, why: str) -> None:
        self.say(f"{why}; retrying in {wait_s:g} s")
        time.sleep(wait_s)


# ----------------------------------------------------------------------------- deploying


def _older(version: str, than: str) -> bool:
    """Whether dotted ``version`` is below ``than`` (``1.2.0`` < ``1.10.0``)."""

    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))

    return numbers(version) < numbers(than)


def _netlify_refusal(message: str, code: str) -> PushError:
    """A refusal of Netlify's, which no retry can fix, with what to do about it."""
    hint = _HINTS.get(code)
    return PushError(f"{message} ({code})" + (f". What to do: {hint}" if hint else ""), EXIT_NETLIFY, code)


def _permanent_refresh_error(item: dict[str, Any]) -> None:
    """While polling: stop when the gateway says Netlify refuses it (a revoked token)."""
    code = item.get("refresh_error_code")
    if code in _NETLIFY_REFUSALS:
        raise _netlify_refusal(f"Netlify refused the gateway: {item.get('refresh_error')}", code)


class Deployer:
    def __init__(
        self, gateway: Gateway, *, jobs: int = 4, report: Reporter | None = None, poll_s: float = 2.0
    ) -> None:
        self.gateway, self.jobs, self.poll_s = gateway, jobs, poll_s
        self.report = report or Reporter(sys.stderr, bar=False)

    def _scan(self, folder: Path) -> list[LocalFile]:
        started = time.monotonic()
        files = scan(folder)
        self.report.line(
            f"scanned {folder}: {len(files)} files, {size(sum(f.size for f in files))} "
            f"in {time.monotonic() - started:.1f} s"
        )
        return files

    def _manifest(
        self, files: list[LocalFile], project: str, branch: str, title: str, draft: bool, dry_run: bool
    ) -> bytes:
        manifest = {
            "project_id": project,
            "branch": branch,
            "title": title,
            "draft": draft,
            "bytes": sum(f.size for f in files),
            "files": {f.path: f.sha1 for f in files},
        }
        if dry_run:
            manifest["dry_run"] = True
        return gzip.compress(json.dumps(manifest).encode())

    def _check_client(self, answer: dict[str, Any]) -> None:
        """Warn when the gateway expects a newer client than this one."""
        client = answer.get("client")
        if not isinstance(client, dict):
            return
        minimum, current = str(client.get("min_version") or ""), str(client.get("version") or "")
        fetch = f"curl -fsSLO {self.gateway.base_url}{client.get('url') or '/kaixupush.py'}"
        if minimum and _older(__version__, minimum):
            self.report.line(
                f"warning: this KaixuPush client is {__version__} and the gateway expects {minimum} "
                f"or newer; get the current one: {fetch}"
            )
        elif current and _older(__version__, current):
            self.report.line(f"note: KaixuPush {current} is available ({fetch})")

    def deploy(
        self,
        folder: Path,
        project: str,
        *,
        branch: str = "main",
        title: str | None = None,
        draft: bool = False,
    ) -> dict[str, Any]:
        """Deploy ``folder``; the result (deploy id, URL, files and bytes sent)."""
        started = time.monotonic()
        files = self._scan(folder)
        title = title or f"Deploy of {folder.resolve().name}"
        init = self.gateway.json(  # one key per run: a retried init never makes a second deploy
            "POST",
            "kaixupush-init",
            body=self._manifest(files, project, branch, title, draft, dry_run=False),
            headers={
                "content-type": "application/json",
                "content-encoding": "gzip",
                "idempotency-key": f"kaixupush-{uuid.uuid4()}",
            },
        )
        self._check_client(init)
        self.report.line(f"deploy {init.get('deploy_id') or init['push_id']} created for project {project}")
        by_digest: dict[str, LocalFile] = {}
        for local in files:
            by_digest.setdefault(local.sha1, local)
        todo = [by_digest[sha1] for sha1 in self._required(init)]
        _check_sizes(todo, init.get("max_file_bytes"))
        sent = sum(f.size for f in todo)
        self.report.line(f"Netlify needs {len(todo)} of {len(files)} files ({size(sent)})")
        self._upload(init["push_id"], int(init["part_bytes"]), todo)
        self.report.line(
            f"uploaded {len(todo)} of {len(files)} files ({size(sent)}) in {self.report.elapsed_s():.1f} s"
        )
        self.report.line("publishing: waiting for Netlify")
        done = self._complete(init["push_id"])
        seconds = round(time.monotonic() - started, 2)
        self.report.line(f"ready: {done['url']} (deploy {done['deploy_id']}) in {seconds:.1f} s")
        return {
            "ok": True,
            "deploy_id": done["deploy_id"],
            "push_id": done["push_id"],
            "project_id": project,
            "state": done["state"],
            "url": done["url"],
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "files_uploaded": len(todo),
            "bytes_uploaded": sent,
            "seconds": seconds,
        }

    def dry_run(
        self,
        folder: Path,
        project: str,
        *,
        branch: str = "main",
        title: str | None = None,
        draft: bool = False,
    ) -> dict[str, Any]:
        """What a deploy of ``folder`` would change on the published site; nothing is deployed."""
        files = self._scan(folder)
        title = title or f"Deploy of {folder.resolve().name}"
        plan = self.gateway.json(
            "POST",
            "kaixupush-init",
            body=self._manifest(files, project, branch, title, draft, dry_run=True),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        self._check_client(plan)
        sizes = {f.path: f.size for f in files}
        by_digest = {f.sha1: f for f in files}
        upload = [by_digest[sha1] for sha1 in plan["required"] if sha1 in by_digest]
        _check_sizes(upload, plan.get("max_file_bytes"))
        new, changed = list(plan["new"]), list(plan["changed"])
        new_bytes = sum(sizes.get(path, 0) for path in new)
        changed_bytes = sum(sizes.get(path, 0) for path in changed)
        total = sum(sizes.values())
        return {
            "ok": True,
            "dry_run": True,
            "project_id": project,
            "files": len(files),
            "bytes": total,
            "new": {"files": len(new), "bytes": new_bytes, "paths": new},
            "changed": {"files": len(changed), "bytes": changed_bytes, "paths": changed},
            "unchanged": {
                "files": len(files) - len(new) - len(changed),
                "bytes": total - new_bytes - changed_bytes,
            },
            "removed": {"files": len(plan["removed"]), "paths": list(plan["removed"])},
            "upload": {"files": len(upload), "bytes": sum(f.size for f in upload)},
        }

    def _required(self, init: dict[str, Any], timeout_s: float = 600) -> list[str]:
        """The digests Netlify asked for (waiting while it still prepares the deploy)."""
        state, deadline = init["state"], time.monotonic() + timeout_s
        if state not in _PREPARING:
            return list(init["required"])
        self.report.line("Netlify is preparing the deploy")
        while state in _PREPARING:
            if time.monotonic() > deadline:
                raise PushError("Netlify did not prepare the deploy in time", EXIT_TRANSIENT)
            time.sleep(self.poll_s)
            item = self.gateway.json("GET", "kaixupush-status", query={"push_id": init["push_id"]})["item"]
            _permanent_refresh_error(item)
            state = item["state"]
        files = self.gateway.json("GET", "kaixupush-file-status", query={"push_id": init["push_id"]})
        return [item["sha1"] for item in files["items"]]

    def _upload(self, push_id: str, part_bytes: int, todo: list[LocalFile]) -> None:
        """Send ``todo`` a few at a time; the first failure stops what has not started."""
        self.report.start_upload(len(todo), sum(f.size for f in todo))
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(self._upload_one, push_id, local, part_bytes) for local in todo]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _upload_one(self, push_id: str, local: LocalFile, part_bytes: int) -> None:
        if local.size <= part_bytes:
            self.gateway.call(
                "PUT",
                "kaixupush-upload",
                query={"push_id": push_id, "path": local.path},
                body=local.source.read_bytes(),
                headers={"x-content-sha1": local.sha1},
            )
            self.report.add(local.size, 1)
        else:
            self._upload_parts(push_id, local, part_bytes)
            self.report.add(0, 1)

    def _upload_parts(self, push_id: str, local: LocalFile, part_bytes: int) -> None:
        parts = math.ceil(local.size / part_bytes)
        with local.source.open("rb") as handle:
            for part in range(parts):
                data = handle.read(part_bytes)
                self.gateway.call(
                    "PUT",
                    "kaixupush-upload-chunk",
                    query={
                        "push_id": push_id,
                        "sha1": local.sha1,
                        "path": local.path,
                        "part": part,
                        "parts": parts,
                    },
                    body=data,
                    headers={"x-content-sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()},
                )
                self.report.add(len(data))
        answer = self.gateway.call(
            "POST",
            "kaixupush-upload-complete",
            json_body={"push_id": push_id, "sha1": local.sha1, "parts": parts},
        )
        if answer.status == 202:
            self._wait_for_job(push_id, local)

    def _wait_for_job(self, push_id: str, local: LocalFile, timeout_s: float = 900) -> None:
        """The gateway will retry the file's delivery itself; watch until it is done."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(self.poll_s)
            item = self.gateway.json(
                "GET", "kaixupush-file-status", query={"push_id": push_id, "sha1": local.sha1}
            )["item"]
            if item["uploaded"]:
                return
            job = item["job"]
            if job and job["status"] in ("failed", "expired"):
                message = f"{local.path} could not be delivered: {job['last_error']}"
                code = job.get("last_error_code")  # an older gateway names none: it may pass
                if code in _NETLIFY_REFUSALS:
                    raise _netlify_refusal(message, code)
                raise PushError(message, EXIT_TRANSIENT, code)
        raise PushError(f"{local.path} was not delivered within {timeout_s:.0f} s", EXIT_TRANSIENT)

    def _complete(self, push_id: str, timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        answer = self.gateway.call("POST", "kaixupush-complete", json_body={"push_id": push_id, "wait": 60})
        body = answer.json()
        while answer.status == 202 and time.monotonic() < deadline:
            time.sleep(self.poll_s)
            answer = self.gateway.call("GET", "kaixupush-status", query={"push_id": push_id})
            body = answer.json()["item"]
            _permanent_refresh_error(body)
            if body["state"] in ("ready", "error"):
                break
        if body["state"] == "error":
            raise PushError(f"Netlify could not publish the deploy: {body.get('error')}", EXIT_NETLIFY)
        if body["state"] != "ready":
            raise PushError(f"the deploy is {body['state']}: not ready in time", EXIT_TRANSIENT)
        return dict(body)


# ----------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kaixupush {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="deploy")
    deploy = commands.add_parser(
        "deploy",
        help="deploy a folder",
        description="Deploy a folder to the Netlify site of a project, through the gateway.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deploy.add_argument("folder", type=Path, help="the built site, e.g. ./dist")
    deploy.add_argument("--project", required=True, help="the project id registered for your account")
    deploy.add_argument("--branch", default="main")
    deploy.add_argument("--title", help="the deploy's title on Netlify")
    deploy.add_argument("--draft", action="store_true", help="a draft deploy (not published)")
    deploy.add_argument("--jobs", type=int, default=4, help="files uploaded at once (default 4)")
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="compare with the published site (new, changed, unchanged files) and deploy nothing",
    )
    deploy.add_argument("--json", action="store_true", help="print one JSON result on stdout")
    deploy.add_argument(
        "--retries", type=int, help=f"retries of a failed request (default {DEFAULT_RETRIES})"
    )
    return parser


def _retries(given: int | None) -> int:
    if given is not None:
        return max(0, given)
    raw = os.environ.get("KAIXUPUSH_RETRIES", "").strip()
    if not raw:
        return DEFAULT_RETRIES
    if not raw.isdigit():
        raise PushError(f"KAIXUPUSH_RETRIES must be a whole number, got {raw!r}")
    return int(raw)


def _dry_run_text(result: dict[str, Any], shown: int = 50) -> str:
    lines = [
        f"dry run of project {result['project_id']}: {result['files']} files ({size(result['bytes'])}) "
        "compared with the published site; nothing was deployed",
        f"  new        {result['new']['files']:>6} files  {size(result['new']['bytes'])}",
        f"  changed    {result['changed']['files']:>6} files  {size(result['changed']['bytes'])}",
        f"  unchanged  {result['unchanged']['files']:>6} files  {size(result['unchanged']['bytes'])}",
        f"  removed    {result['removed']['files']:>6} files",
        f"  to upload  {result['upload']['files']:>6} files  {size(result['upload']['bytes'])} at most",
    ]
    for kind in ("new", "changed", "removed"):
        paths = result[kind]["paths"]
        lines += [f"{kind}: {path}" for path in paths[:shown]]
        if len(paths) > shown:
            lines.append(f"{kind}: ... and {len(paths) - shown} more (--json lists them all)")
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; ``out`` is where progress and errors go (stderr), results go to stdout."""
    err, stdout = out or sys.stderr, sys.stdout
    args = _parser().parse_args(argv)
    bar = err.isatty() and stdout.isatty() and os.environ.get("TERM") != "dumb"
    report = Reporter(err, bar=bar)
    action = "dry run" if args.dry_run else "deploy"
    try:
        key = os.environ.get("KAIXU_KEY", "").strip()
        if not key:
            raise PushError("Set KAIXU_KEY to your Kaixu key (kx_live_..., role deployer or above).")
        base_url = os.environ.get("KAIXU_BASE_URL", "").strip() or DEFAULT_BASE_URL
        gateway = Gateway(base_url, key, retries=_retries(args.retries), say=report.line)
        report.line(
            f"kaixupush {__version__}: {action} of {args.folder} to project {args.project} via {base_url}"
        )
        try:
            deployer = Deployer(gateway, jobs=max(1, args.jobs), report=report)
            run = deployer.dry_run if args.dry_run else deployer.deploy
            result = run(args.folder, args.project, branch=args.branch, title=args.title, draft=args.draft)
        finally:
            gateway.close()
    except PushError as exc:
        report.line(f"{action} failed: {exc}")
        if args.json:
            failure = {"ok": False, "error": str(exc), "code": exc.code, "exit_code": exc.exit_code}
            print(json.dumps(failure), file=stdout)
        return exc.exit_code
    except KeyboardInterrupt:
        report.line(f"{action} interrupted")
        return 130
    if args.json:
        print(json.dumps(result), file=stdout)
    elif args.dry_run:
        print(_dry_run_text(result), file=stdout)
    else:
        print(result["url"], file=stdout)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
