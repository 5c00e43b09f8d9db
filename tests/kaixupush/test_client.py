"""The KaixuPush client deploys a real folder end to end against the fake Netlify."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kaixupush import client as kaixupush_client
from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PROJECT, PushEnv, random_bytes, sha1

netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

MIB = 1024 * 1024


def _site(root: Path) -> dict[str, bytes]:
    """197 small files (some identical), 3 large ones, and hidden files that must be skipped."""
    files = {f"pages/p{i:03d}.html": f"<p>page {i}</p>".encode() for i in range(190)}
    files |= {f"assets/img{i}.bin": random_bytes(20_000 + i, seed=i + 1) for i in range(5)}
    files |= {"index.html": b"<p>page 1</p>", "empty.txt": b""}  # a duplicate digest and an empty file
    files |= {
        "media/a.bin": random_bytes(6 * MIB + 1),
        "media/b.bin": random_bytes(7 * MIB),
        "media/c.bin": random_bytes(9 * MIB - 5),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / ".env").write_text("SECRET=1")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    return files


@pytest.fixture
def connected(push_env: PushEnv, configure: Callable[..., Any], server: str) -> Callable[..., Any]:
    """``configure``, with the client already pointed at the gateway with the push key."""
    configure(KAIXU_KEY=push_env.key.secret, KAIXU_BASE_URL=server)
    return configure


def _run(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    progress = io.StringIO()
    code = kaixupush_client.main(["deploy", str(folder), "--project", PROJECT, "--title", "CI"], out=progress)
    return code, capsys.readouterr().out, progress.getvalue()


def test_the_client_deploys_a_folder_and_a_rerun_uploads_nothing(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connected(KAIXUPUSH_PART_BYTES=str(2 * MIB))
    files = _site(tmp_path)
    assert len(files) == 200
    code, out, progress = _run(tmp_path, capsys)
    assert code == 0, progress
    assert out.strip() == "https://site-main.netlify.app"
    assert "uploaded 199 of 200 files" in progress and "] 199/199 files" in progress
    fake = push_env.netlify
    for data in files.values():
        assert fake.blobs[sha1(data)] == data  # every file arrived byte-exact
    deploy = next(iter(fake.deploys.values()))
    assert "/.env" not in deploy.files and "/.git/HEAD" not in deploy.files and len(deploy.files) == 200
    chunked = push_env.db.execute("SELECT count(*) AS n FROM push_jobs WHERE status = 'done'").fetchone()["n"]
    assert chunked == 3
    uploads_before = fake.count("upload")

    code, out, progress = _run(tmp_path, capsys)
    assert code == 0 and out.strip() == "https://site-main.netlify.app"
    assert "uploaded 0 of 200 files" in progress
    assert fake.count("upload") == uploads_before
    states = [r["state"] for r in push_env.db.execute("SELECT state FROM push_pushes ORDER BY id").fetchall()]
    assert states == ["ready", "ready"]


def test_the_client_reports_failures(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "index.html").write_text("hi")
    progress = io.StringIO()
    code = kaixupush_client.main(["deploy", str(tmp_path), "--project", "unknown"], out=progress)
    assert code == 1 and "PROJECT_NOT_FOUND" in progress.getvalue()
    connected(KAIXU_KEY="")
    assert kaixupush_client.main(["deploy", str(tmp_path), "--project", PROJECT], out=progress) == 2


def test_the_client_waits_while_netlify_prepares(
    push_env: PushEnv, configure: Callable[..., Any], server: str, tmp_path: Path
) -> None:
    configure(KAIXUPUSH_PREPARE_TIMEOUT_S="0")  # init answers before Netlify has prepared the deploy
    push_env.netlify.prepare_polls = 4
    (tmp_path / "index.html").write_text("hi")
    (tmp_path / "app.js").write_text("go()")
    gateway = kaixupush_client.Gateway(server, push_env.key.secret)
    try:
        result = kaixupush_client.Deployer(gateway, out=io.StringIO(), poll_s=0.01).deploy(tmp_path, PROJECT)
    finally:
        gateway.close()
    assert result["state"] == "ready" and result["uploaded_files"] == 2
    assert push_env.netlify.count("get") >= 4  # the client polled while Netlify prepared
    assert push_env.netlify.blobs[sha1(b"go()")] == b"go()"
    init = push_env.db.execute("SELECT details FROM audit_events WHERE action = 'push.init'").fetchone()
    assert init["details"]["file_count"] == 2


class _FirstInitAnswered(httpx.HTTPTransport):
    """Forwards every request, but the client sees ``status`` as the first init's answer:
    after the gateway handled it when ``forward_first`` (a proxy losing the answer), else
    instead of it (as if an earlier attempt were still running)."""

    def __init__(self, status: int, body: dict[str, str], *, forward_first: bool) -> None:
        super().__init__()
        self.status, self.body, self.forward_first = status, body, forward_first
        self.init_keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_init = request.url.path.endswith("/kaixupush-init")
        if is_init:
            self.init_keys.append(request.headers.get("idempotency-key"))
        if not is_init or len(self.init_keys) > 1:
            return super().handle_request(request)
        if self.forward_first:
            super().handle_request(request).close()
        return httpx.Response(self.status, headers={"retry-after": "0"}, json=self.body)


def _deploy_through(transport: httpx.BaseTransport, push_env: PushEnv, server: str, folder: Path) -> dict:
    (folder / "index.html").write_text("hi")
    gateway = kaixupush_client.Gateway(server, push_env.key.secret)
    gateway.http.close()
    gateway.http = httpx.Client(
        base_url=gateway.http.base_url, headers=gateway.http.headers, transport=transport
    )
    try:
        return kaixupush_client.Deployer(gateway, out=io.StringIO(), poll_s=0.01).deploy(folder, PROJECT)
    finally:
        gateway.http.close()


def test_a_retried_init_never_makes_a_second_deploy(push_env: PushEnv, server: str, tmp_path: Path) -> None:
    lost = _FirstInitAnswered(502, {"error": "bad gateway"}, forward_first=True)
    assert _deploy_through(lost, push_env, server, tmp_path)["state"] == "ready"
    first, retry = lost.init_keys
    assert first and first == retry  # one Idempotency-Key per deploy run, sent again on the retry
    assert push_env.netlify.count("create") == 1
    assert push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"] == 1


def test_the_client_waits_for_an_init_still_in_progress(
    push_env: PushEnv, server: str, tmp_path: Path
) -> None:
    busy = _FirstInitAnswered(409, {"code": "IDEMPOTENCY_IN_PROGRESS"}, forward_first=False)
    assert _deploy_through(busy, push_env, server, tmp_path)["state"] == "ready"
    assert len(busy.init_keys) == 2 and push_env.netlify.count("create") == 1


def test_the_client_never_publishes_a_link_to_outside_the_folder(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("AWS_SECRET_ACCESS_KEY=...")
    site = tmp_path / "dist"
    (site / "docs").mkdir(parents=True)
    (site / "index.html").write_text("<p>hi</p>")
    (site / "docs" / "page.html").write_text("<p>docs</p>")
    (site / "same.html").symlink_to(site / "index.html")  # inside the folder: deployed as a file
    (site / "leak.txt").symlink_to(secret)
    (site / "home").symlink_to(secret.parent, target_is_directory=True)
    code, out, progress = _run(site, capsys)
    assert code == 1 and out == ""
    assert "leak.txt" in progress and "outside" in progress and "symbolic link" in progress
    assert push_env.netlify.count("create") == 0  # refused before anything was sent
    assert not any(b"AWS_SECRET" in blob for blob in push_env.netlify.blobs.values())
    (site / "leak.txt").unlink()
    (site / "home").unlink()
    code, out, progress = _run(site, capsys)
    assert code == 0, progress
    deploy = next(iter(push_env.netlify.deploys.values()))
    assert sorted(deploy.files) == ["/docs/page.html", "/index.html", "/same.html"]


def test_the_client_names_a_file_over_the_gateway_limit_before_sending_it(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connected(KAIXUPUSH_MAX_FILE_BYTES="1000")
    (tmp_path / "index.html").write_text("hi")
    (tmp_path / "video.bin").write_bytes(random_bytes(1001, seed=9))
    code, out, progress = _run(tmp_path, capsys)
    assert out == ""
    assert code == 1 and "/video.bin is 1001 bytes" in progress and "1000" in progress
    assert push_env.netlify.count("upload") == 0
