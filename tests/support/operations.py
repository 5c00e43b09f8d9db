"""The operator CLI, run as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from shared import config


def cli(database_url: str, *args: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url}
    run = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env=env,
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
