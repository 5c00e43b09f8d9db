"""``python -m shared.devserver`` as a new user starts it: its own process, a data folder of its
own (embedded PostgreSQL and all), no database URL and no provider key; what it prints is read
back the way a person would read it (the admin password, the demo key, the curl line)."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from shared import config, db
from shared.host import demo
from tests.support.fakes.server import free_port
from tests.support.processes import wait_until_healthy

# What a new user's shell does not have: the suite's database and provider settings.
_NOT_INHERITED = (
    "DATABASE_URL",
    "NETLIFY_DB_URL",
    "NETLIFY_DATABASE_URL",
    "ADMIN_PASSWORD",
    "ADMIN_TOKEN_SECRET",
    "KAIXU_ENV",
    "KAIXU_DEMO",
    "AWS_LAMBDA_FUNCTION_NAME",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
)
PASSWORD = re.compile(r"^admin password \(generated, shown once, kept in .*\): (\S+)$", re.MULTILINE)
DEMO_KEY = re.compile(r"^demo key of \S+ \(generated, shown once, kept in .*\): (kx_live_\S+)$", re.MULTILINE)
_CAT = re.compile(r"\$\(cat (.+?)\)")


class DevServer:
    """One run of the dev server on a free port; :meth:`stop` is Ctrl-C."""

    def __init__(self, data_dir: Path, *args: str, word_delay_s: float = 0.0) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env |= {
            "KAIXU_DATA_DIR": str(data_dir),
            "KAIXU_DEMO_WORD_DELAY_S": str(word_delay_s),
            "PYTHONUNBUFFERED": "1",
        }
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def start(self, timeout: float = 90) -> DevServer:
        command = [sys.executable, "-m", "shared.devserver", "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=config.PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        health = f"{self.origin}/.netlify/functions/health"
        wait_until_healthy(self.process, health, "the dev server", lambda: self.output, timeout)
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        """Ctrl-C, as the README says; the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the dev server did not stop on Ctrl-C:\n{self.output}") from None

    def printed(self, pattern: re.Pattern[str]) -> str | None:
        match = pattern.search(self.output)
        return match.group(1) if match else None

    def curl_line(self) -> str:
        lines = [line for line in self.lines if line.startswith("curl ")]
        assert len(lines) == 1, self.output
        return lines[0]


def run_curl(line: str, timeout: float = 30) -> httpx.Response:
    """Do what a printed ``curl`` line does, with httpx: its URL, ``-H`` headers and ``-d`` body
    (``-d`` alone means POST); ``$(cat FILE)`` reads the file, as the shell would."""
    words = shlex.split(_CAT.sub(lambda m: Path(shlex.split(m.group(1))[0]).read_text().strip(), line))
    assert words[:2] == ["curl", "-N"], line
    url, headers, data = None, {}, None
    rest = iter(words[2:])
    for word in rest:
        if word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(rest)
        else:
            assert not word.startswith("-"), f"an option the test does not know: {word}"
            url = word
    assert url is not None and data is not None, line
    return httpx.post(url, content=data.encode(), headers=headers, timeout=timeout)


def seed_demo() -> demo.Seeded:
    """What the dev server seeds at start (the demo model, customer and key), into the test
    database: the server under test then has what a dev server has."""

    async def run() -> demo.Seeded:
        try:
            return await demo.seed()
        finally:
            await db.close()

    return asyncio.run(run())
