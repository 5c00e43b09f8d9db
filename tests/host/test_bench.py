"""The benchmark harness must keep working: a tiny run of bench/run.py end to end, with each
load driver, and the reading of wrk's report."""

import json
import shutil
import subprocess
import sys

import pytest

from bench import wrk
from shared import config


@pytest.mark.parametrize("driver", ["python", "wrk"])
def test_bench_smoke_run_reports_every_figure(driver: str):
    if driver == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    run = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--smoke", "--workers", "1", "--driver", driver],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0
    assert result["driver"].startswith("wrk" if driver == "wrk" else "asyncio")
    assert result["throughput"]["rps"] > 0 and result["throughput"]["errors"] == 0
    assert result["stream_added_ttfd_ms"]["errors"] == 0
    assert result["added_latency_ms"]["p50"] > 0
    assert result["memory_mb"]["rss_after"] > 0 and result["memory_mb"]["requests"] >= 100
    assert result["db_round_trips_per_call"] == 2.0
    leases = result["stream_leases"]  # 4,096 bytes a stream: its lease takes 16 steps of 256
    assert leases["errors"] == 0 and leases["output_tokens_per_stream"] == 1024
    # (fewer when a step came late and the next one had to cover more than a step)
    assert 12 <= leases["extensions_per_stream"] <= 16
    assert leases["extensions_per_1000_output_tokens"] == round(
        leases["extensions_per_stream"] * 1000 / 1024, 2
    )
    hot = result["hot_customer"]
    assert hot["one_key_rps"] > 0 and hot["spread_rps"] > 0 and hot["errors"] == 0
    idle = result["idle_streams"]
    assert idle["streams"] == 50 and idle["errors"] == 0 and idle["rss_open"] > 0
    increase = idle["gateway_p50_ms"] - idle["gateway_p50_ms_before"]  # against the run just before
    assert abs(idle["latency_p50_increase_ms"] - increase) <= 0.002
    cold = result["cold_start"]
    assert set(cold["import_ms"]) == {"health", "gateway_chat"} and cold["first_gateway_chat_ms"] > 0
    assert "added latency c=1" in run.stdout and "cold start" in run.stdout
    assert "extensions per 1,000 output tokens" in run.stdout


def test_wrk_spreads_requests_over_the_keys_it_is_given():
    script = wrk._script(b"{}", {"x-kaixu-app": "bench"}, ["kx_live_a", "kx_live_b"])
    assert 'keys = {"Bearer kx_live_a", "Bearer kx_live_b"}' in script
    assert 'wrk.headers["authorization"] = keys[sent % #keys + 1]' in script
    assert "authorization" not in wrk._script(b"{}", {"x-kaixu-app": "bench"})


def test_wrk_report_is_read_from_the_script_line():
    output = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n" + (
        "KAIXU 1200 1000000 3 5 1500 9000\n"
    )
    stats = wrk.parse(output)
    assert (stats.requests, stats.errors) == (1195, 8)
    assert (stats.seconds, stats.p50_s, stats.p99_s) == (1.0, 0.0015, 0.009)
    assert stats.rps == 1195.0
