"""bench/soak.py in a tiny configuration: it runs, samples the server's memory and throughput,
and every click it sends is written, nearly all of them unique (every visitor is new). Not a
timing assertion: the figures are only checked to be sane."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def test_the_soak_bench_runs_and_reports_memory_and_throughput(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--duration", "1.5", "--warmup", "0.5", "--interval", "0.5",
         "--connections", "2", "--user-agents", "20", "--json", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    samples = result["samples"]
    assert len(samples) >= 3 and any(not s["warm"] for s in samples) and sum(s["warm"] for s in samples) >= 2
    assert all(20 < s["rss_mb"] < 2000 for s in samples)  # a Python server's resident memory, in MB
    assert all(s["requests"] >= 0 for s in samples) and sum(s["requests"] for s in samples) > 0
    assert isinstance(result["growth_mb_per_30s"], float)
    assert len(result["throughput_ratios"]) == sum(s["warm"] for s in samples)
    # Every answered click is written (SIGTERM writes what is pending), each a new visitor.
    assert result["clicks"] >= sum(s["requests"] for s in samples)
    assert result["clicks"] * 0.99 <= result["uniques"] <= result["clicks"]
    assert "MB per 30 s" in done.stdout and "throughput of each interval" in done.stdout
