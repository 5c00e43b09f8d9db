"""The side-by-side: the same load against a LiteLLM proxy pointed at the same fake.

LiteLLM is not a project dependency; install it in its own virtualenv (see the README):
``python -m venv .bench/litellm && .bench/litellm/bin/pip install 'litellm[proxy]==1.100.5'``.
``LITELLM_BIN`` names another ``litellm`` executable.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

import uvloop

from bench.drivers import Driver
from bench.stats import Stats

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = ROOT / ".bench" / "litellm" / "bin" / "litellm"

CONFIG = """model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{fake_port}/v1
      api_key: bench
litellm_settings:
  telemetry: false
"""


def run(stack: ExitStack, driver: Driver, fake_port: int, kaixu_rps: float, sizes: dict) -> dict:
    from bench.run import UPSTREAM_BODY, UPSTREAM_PATH, free_port, ms, start, wait_for_port

    binary = Path(os.environ.get("LITELLM_BIN", DEFAULT_BIN))
    if not binary.exists():
        raise SystemExit(
            f"LiteLLM not found at {binary}: install it as the README's Performance section says"
        )
    config = Path(tempfile.mkdtemp(prefix="kaixu-litellm-")) / "config.yaml"
    config.write_text(CONFIG.format(fake_port=fake_port))
    port = free_port()
    start(
        stack,
        [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        {**os.environ, "LITELLM_LOG": "ERROR"},
        quiet=True,
    )
    wait_for_port(port, timeout=180)
    auth = {"authorization": "Bearer sk-bench"}

    async def measure() -> tuple[Stats, Stats]:
        async def litellm(connections: int, seconds: float) -> Stats:
            return await driver.run(
                port, UPSTREAM_PATH, UPSTREAM_BODY, auth, connections=connections, seconds=seconds
            )

        await litellm(8, 2)
        return await litellm(1, sizes["latency_s"]), await litellm(64, sizes["throughput_s"])

    single, many = uvloop.run(measure())
    return {
        "version": subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()[
            :80
        ],
        "latency_p50_ms": ms(single.p50_s),
        "rps": round(many.rps, 1),
        "p99_ms": ms(many.p99_s),
        "errors": many.errors,
        "ratio": round(kaixu_rps / many.rps, 1) if many.rps else None,
    }
