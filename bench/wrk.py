"""wrk (``apt-get install wrk``) as the load driver when it is installed.

wrk is a C event loop: it costs the machine a fraction of what the Python driver does, so on
a 2-core box more of the CPU goes to what is measured. It runs for a duration, so a run is
given seconds rather than a request count; its latency percentiles come from its own
histogram. A small Lua script sets the request and prints the figures on one line.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.stats import Stats

_SCRIPT = """wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KAIXU %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split(" [")[0].strip()


# With several keys, each request takes the next one's authorization header.
_ROTATE = """keys = {{{keys}}}
sent = 0
request = function()
  sent = sent + 1
  wrk.headers["authorization"] = keys[sent % #keys + 1]
  return wrk.format()
end
"""


def _script(body: bytes, headers: dict[str, str], keys: Sequence[str] = ()) -> str:
    lines = [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    if keys:
        lines.append(_ROTATE.format(keys=", ".join(f'"Bearer {key}"' for key in keys)))
    return _SCRIPT.format(body=body.decode(), headers="\n".join(lines))


def parse(output: str) -> Stats:
    """The script's one line: requests, duration (µs), socket errors, non-2xx, p50 and p99 (µs)."""
    line = next(line for line in output.splitlines() if line.startswith("KAIXU "))
    requests, duration_us, socket_errors, status_errors, p50_us, p99_us = map(int, line.split()[1:])
    return Stats(
        requests=requests - status_errors,
        seconds=duration_us / 1e6,
        p50_s=p50_us / 1e6,
        p99_s=p99_us / 1e6,
        errors=socket_errors + status_errors,
    )


def run(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    keys: Sequence[str] = (),
) -> Stats:
    """``connections`` keep-alive connections on one wrk thread for ``seconds``; with ``keys``,
    the requests take their authorization from each key in turn."""
    with tempfile.TemporaryDirectory(prefix="kaixu-wrk-") as folder:
        script = Path(folder) / "post.lua"
        script.write_text(_script(body, {"content-type": "application/json", **headers}, keys))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return parse(out.stdout)
