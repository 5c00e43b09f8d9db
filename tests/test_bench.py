"""The benchmark harness must keep working: a tiny run of bench/run.py end to end."""

import json
import subprocess
import sys

from shared import config


def test_bench_smoke_run_reports_every_figure():
    run = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--smoke", "--workers", "1"],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0
    assert result["throughput"]["rps"] > 0 and result["throughput"]["errors"] == 0
    assert result["stream_added_ttfd_ms"]["errors"] == 0
    assert result["added_latency_ms"]["p50"] > 0
    assert result["memory_mb"]["rss_after"] > 0
    assert result["db_round_trips_per_call"] == 2.0
    assert "added latency c=1" in run.stdout
