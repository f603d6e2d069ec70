"""bench/webhooks.py in a tiny configuration: it runs, reports sane figures, and finds every
message and status written once. Not a timing assertion: the figures are only checked to exist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[1] / "bench" / "webhooks.py"


def test_the_webhook_bench_runs_and_loses_or_doubles_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--bodies", "40", "--customers", "50", "--duration", "0.3",
         "--connections", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert (result["lost"], result["doubled"], result["left"], result["errors"]) == (0, 0, 0, 0), done.stdout
    assert result["posts"] > result["bodies"] == 40  # bodies posted twice are part of the load
    runs = {target: [r for r in result["runs"] if r["target"] == target] for target in ("bare", "ours", "applied")}
    # bare and ours (taken) are loaded for the duration, at least one pass; applied gets the load once
    assert all(runs[t] and all(r["posted"] >= result["posts"] and r["bodies_per_second"] > 0 for r in runs[t])
               for t in ("bare", "ours"))  # fmt: skip
    assert runs["applied"] and all(r["posted"] == result["posts"] for r in runs["applied"])
    for setting in result["summary"].values():
        assert 0 < setting["ratio"] < 10 and setting["ours_best"] >= setting["ours_median"] > 0
        assert 0 < setting["applied_ratio"] < 10
    assert "ratio" in done.stdout and "0 lost, 0 doubled" in done.stdout
