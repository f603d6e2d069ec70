"""bench/tokens.py in a tiny configuration: it runs and reports sane figures. Not a timing
assertion: the costs are only checked to exist; the sizes are exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "tokens.py"


def test_the_token_bench_runs_and_sealed_tokens_are_smaller(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--tokens", "30", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    v1, sealed = result["sizes"]["v1"], result["sizes"]["sealed"]
    assert v1["token"] == 131 and sealed["token"] < v1["token"]
    assert all(sealed[f"qr_{level}"] < v1[f"qr_{level}"] for level in "LMH")
    assert set(result["verify_us"]) == {
        "cold v1", "cold sealed", "cold sealed, by the older of 2 keys", "memoised v1", "memoised sealed",
    }
    assert all(us > 0 for us in result["verify_us"].values())
    assert "x1.00" in done.stdout
