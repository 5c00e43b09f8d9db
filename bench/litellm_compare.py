"""The side-by-side: the same load against a LiteLLM proxy pointed at the same fake.

LiteLLM is not a project dependency; install it in its own virtualenv (see the README):
``python -m venv .bench/litellm && .bench/litellm/bin/pip install 'litellm[proxy]==1.100.5'``.
``LITELLM_BIN`` names another ``litellm`` executable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import load

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


def run(stack: ExitStack, fake_port: int, kaixu_rps: float, smoke: bool) -> dict:
    from bench.run import UPSTREAM_BODY, free_port, ms, start, wait_for_port

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
    request = load.build_request(
        "127.0.0.1", port, "/v1/chat/completions", UPSTREAM_BODY, {"authorization": "Bearer sk-bench"}
    )
    total = 200 if smoke else 3000

    async def measure() -> tuple[load.Result, load.Result]:
        await load.run_requests("127.0.0.1", port, request, concurrency=8, total=100)
        single = await load.run_requests("127.0.0.1", port, request, concurrency=1, total=total // 10)
        many = await load.run_requests("127.0.0.1", port, request, concurrency=64, total=total)
        return single, many

    single, many = asyncio.run(measure())
    return {
        "version": subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()[
            :80
        ],
        "latency_p50_ms": ms(load.percentile(single.latencies_s, 50)),
        "rps": round(many.rps, 1),
        "p99_ms": ms(load.percentile(many.latencies_s, 99)),
        "errors": many.errors,
        "ratio": round(kaixu_rps / many.rps, 1) if many.rps else None,
    }
