"""The KaixuPush client deploys a real folder end to end against the fake Netlify (in this
process; ``test_client_standalone`` runs it as a customer does)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.kaixupush import client as kaixupush_client
from tests.support import kaixupush as kaixupush_support
from tests.support.fakes.gateway_proxy import GatewayProxy, serve_gateway_proxy
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


def _deployer(gateway: kaixupush_client.Gateway) -> kaixupush_client.Deployer:
    report = kaixupush_client.Reporter(io.StringIO(), bar=False)
    return kaixupush_client.Deployer(gateway, report=report, poll_s=0.01)


def test_the_client_deploys_a_folder_and_a_rerun_uploads_nothing(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connected(KAIXUPUSH_PART_BYTES=str(2 * MIB))
    files = _site(tmp_path)
    assert len(files) == 200
    code, out, progress = _run(tmp_path, capsys)
    assert code == 0, progress
    assert out.strip() == "https://site-main.netlify.app"
    assert "uploaded 199 of 200 files" in progress and "\r" not in progress  # not a terminal: no bar
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
    assert "Netlify needs 0 of 200 files" in progress and "uploaded 0 of 200 files" in progress
    assert fake.count("upload") == uploads_before
    states = [r["state"] for r in push_env.db.execute("SELECT state FROM push_pushes ORDER BY id").fetchall()]
    assert states == ["ready", "ready"]


def test_the_client_reports_failures(
    push_env: PushEnv, connected: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "index.html").write_text("hi")
    progress = io.StringIO()
    code = kaixupush_client.main(["deploy", str(tmp_path), "--project", "unknown"], out=progress)
    assert code == kaixupush_client.EXIT_GATEWAY and "PROJECT_NOT_FOUND" in progress.getvalue()
    assert "check --project" in progress.getvalue()
    connected(KAIXU_KEY="")
    code = kaixupush_client.main(["deploy", str(tmp_path), "--project", PROJECT], out=progress)
    assert code == kaixupush_client.EXIT_LOCAL


def test_the_client_waits_while_netlify_prepares(
    push_env: PushEnv, configure: Callable[..., Any], server: str, tmp_path: Path
) -> None:
    configure(KAIXUPUSH_PREPARE_TIMEOUT_S="0")  # init answers before Netlify has prepared the deploy
    push_env.netlify.prepare_polls = 4
    (tmp_path / "index.html").write_text("hi")
    (tmp_path / "app.js").write_text("go()")
    gateway = kaixupush_client.Gateway(server, push_env.key.secret)
    try:
        result = _deployer(gateway).deploy(tmp_path, PROJECT)
    finally:
        gateway.close()
    assert result["state"] == "ready" and result["files_uploaded"] == 2
    assert push_env.netlify.count("get") >= 4  # the client polled while Netlify prepared
    assert push_env.netlify.blobs[sha1(b"go()")] == b"go()"
    init = push_env.db.execute("SELECT details FROM audit_events WHERE action = 'push.init'").fetchone()
    assert init["details"]["file_count"] == 2


@pytest.fixture
def proxy(server: str) -> Iterator[GatewayProxy]:
    yield from serve_gateway_proxy(server)


def _deploy_through(proxy: GatewayProxy, push_env: PushEnv, folder: Path) -> dict[str, Any]:
    (folder / "index.html").write_text("hi")
    gateway = kaixupush_client.Gateway(proxy.url, push_env.key.secret)
    try:
        return _deployer(gateway).deploy(folder, PROJECT)
    finally:
        gateway.close()


def test_a_retried_init_never_makes_a_second_deploy(
    push_env: PushEnv, proxy: GatewayProxy, tmp_path: Path
) -> None:
    proxy.answer_first("kaixupush-init", 502, {"error": "bad gateway"}, forward=True)  # answer lost
    assert _deploy_through(proxy, push_env, tmp_path)["state"] == "ready"
    first, retry = (headers.get("idempotency-key") for headers in proxy.calls("kaixupush-init"))
    assert first and first == retry  # one Idempotency-Key per deploy run, sent again on the retry
    assert push_env.netlify.count("create") == 1
    assert push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"] == 1


def test_the_client_waits_for_an_init_still_in_progress(
    push_env: PushEnv, proxy: GatewayProxy, tmp_path: Path
) -> None:
    proxy.answer_first("kaixupush-init", 409, {"code": "IDEMPOTENCY_IN_PROGRESS"}, forward=False)
    assert _deploy_through(proxy, push_env, tmp_path)["state"] == "ready"
    assert len(proxy.calls("kaixupush-init")) == 2 and push_env.netlify.count("create") == 1


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
    assert code == kaixupush_client.EXIT_LOCAL and out == ""
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
    assert code == kaixupush_client.EXIT_GATEWAY  # the gateway's limit
    assert "/video.bin is 1001 bytes" in progress and "1000" in progress
    assert push_env.netlify.count("upload") == 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_upload_is_a_bar_on_a_terminal_and_summary_lines_in_a_log() -> None:
    terminal = _Terminal()
    bar = kaixupush_client.Reporter(terminal, bar=True)
    bar.start_upload(2, 2 * MIB)
    bar.add(MIB, 1)
    bar.line("ready")
    assert terminal.getvalue() == f"\r[{'#' * 15}{'.' * 15}] 1/2 files 1.0/2.0 MiB\nready\n"

    log = io.StringIO()
    lines = kaixupush_client.Reporter(log, bar=False, every_s=0)  # a summary at every step
    lines.start_upload(2, 2 * MIB)
    lines.add(MIB, 1)
    lines.add(MIB, 1)
    assert log.getvalue() == (
        "uploading: 1/2 files, 1.0 MiB of 2.0 MiB\nuploading: 2/2 files, 2.0 MiB of 2.0 MiB\n"
    )
    quiet = io.StringIO()
    slow = kaixupush_client.Reporter(quiet, bar=False, every_s=3600)
    slow.start_upload(2, 2 * MIB)
    slow.add(MIB, 1)
    assert quiet.getvalue() == ""  # not before its interval
