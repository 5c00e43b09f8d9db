"""Cold starts, as a Lambda execution environment meets them: ``python bench/cold_start.py``.

Two figures, each the minimum of ``--runs`` fresh processes (the least disturbed run is the
one that shows what the code costs; the others add the machine's noise):

- import: seconds to import each ``functions/`` module in a new interpreter (``python -X
  importtime -c "import functions.<name>"`` says where that time goes);
- first call: from spawning a new interpreter to the answer of its first ``gateway-chat``
  call, database connection included (the fake upstream answers at once).

Both run the way Lambda runs them: the artifact the deploy builds (``python -m shared.deploy
build``: function code and dependency layer, byte-compiled) on a bare interpreter with the
standard library and nothing else, so no development package is imported by accident.

Run alone it starts its own PostgreSQL and fake upstream; ``bench/run.py`` calls
:func:`measure` with its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = sorted(p.stem for p in (ROOT / "functions").glob("*.py") if p.stem != "__init__")

_IMPORT = "import time; t = time.perf_counter(); import functions.{name}; print(time.perf_counter() - t)"

# The child of the first-call figure: import the function, then serve one request through its
# ASGI app, as the Lambda adapter would, and print the status once the answer is complete.
_FIRST_CALL = """
import asyncio, json, functions.gateway_chat as fn
messages = [{"role": "user", "content": "Hi"}]
body = json.dumps({"provider": "openai", "model": "gpt-4o-mini", "messages": messages}).encode()
scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "root_path": "",
         "path": "/.netlify/functions/gateway-chat", "raw_path": b"/.netlify/functions/gateway-chat",
         "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
         "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer " + KEY.encode())]}
sent, status = [False], []
async def receive():
    if sent[0]:
        await asyncio.sleep(3600)
    sent[0] = True
    return {"type": "http.request", "body": body, "more_body": False}
async def send(message):
    if message["type"] == "http.response.start":
        status.append(message["status"])
    elif not message.get("more_body"):
        print(status[0], flush=True)
        raise SystemExit(0)
asyncio.run(fn.app(scope, receive, send))
"""


@dataclass(frozen=True)
class Lambda:
    """A built artifact and the bare interpreter that runs it."""

    python: Path
    code: Path
    layer: Path

    def command(self, source: str) -> list[str]:
        return [str(self.python), "-c", source]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {**extra, "PYTHONPATH": f"{self.code}:{self.layer / 'python'}"}


@contextmanager
def lambda_artifact() -> Iterator[Lambda]:
    with tempfile.TemporaryDirectory(prefix="kaixu-cold-") as folder:
        out = Path(folder)
        build = [sys.executable, "-m", "shared.deploy", "build", "--out", str(out / "artifact")]
        subprocess.run(build, cwd=ROOT, check=True, capture_output=True)
        venv.create(out / "python", with_pip=False, symlinks=True)
        yield Lambda(out / "python" / "bin" / "python", out / "artifact" / "code", out / "artifact" / "layer")


def import_s(artifact: Lambda, name: str, runs: int) -> float:
    """The fastest of ``runs`` imports of ``functions.<name>`` in a new interpreter."""
    times = []
    for _ in range(runs):
        command = artifact.command(_IMPORT.format(name=name))
        out = subprocess.run(
            command, cwd=artifact.code, env=artifact.env({}), capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def first_call_s(artifact: Lambda, env: dict[str, str], key: str, runs: int) -> float:
    """The fastest of ``runs`` spawn-to-answer times of a first gateway-chat call."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(
            artifact.command(f"KEY = {key!r}\n" + _FIRST_CALL),
            cwd=artifact.code,
            env=artifact.env(env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.perf_counter() - started
        if out.stdout.strip() != "200":
            raise SystemExit(f"first call failed: {out.stdout[-500:]} {out.stderr[-2000:]}")
        times.append(elapsed)
    return min(times)


def measure(
    env: dict[str, str], key: str, runs: int = 10, functions: Sequence[str] = FUNCTIONS
) -> dict[str, object]:
    """Import time of each function and the first call's time, in the built artifact.
    ``env`` is a gateway's environment (database, fake upstream)."""
    settings = {name: value for name, value in env.items() if not name.startswith(("PYTHON", "VIRTUAL_ENV"))}
    with lambda_artifact() as artifact:
        imports = {name: round(import_s(artifact, name, runs) * 1000, 1) for name in functions}
        first = first_call_s(artifact, settings, key, runs)
    slowest = max(imports, key=imports.__getitem__)
    return {
        "runs": runs,
        "import_ms": imports,
        "slowest_import": {"function": slowest, "ms": imports[slowest]},
        "first_gateway_chat_ms": round(first * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench import run as bench_run

    with bench_run.bench_stack() as (env, key, _):
        result = measure(env, key, args.runs)
    for name, value in sorted(result["import_ms"].items(), key=lambda item: -item[1]):  # type: ignore[union-attr]
        print(f"  import functions.{name:<28} {value:7.1f} ms")
    print(f"  first gateway-chat, spawn to answer   {result['first_gateway_chat_ms']:7.1f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
