"""The benchmark scripts run end to end on tiny sizes and print their tables (the figures are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_eval_speed_smoke_run_matches_the_reference():
    """eval_speed.py at 1% scale: per query, hashbench's AP and P@k equal the public-code loop's."""
    text = _run(str(BENCHMARKS / "eval_speed.py"), "--quick", "--scale", "0.01", "--repeats", "1")
    rows = [line for line in text.splitlines() if line.startswith(("| NUS-WIDE", "| CIFAR-10"))]
    assert len(rows) == 6
    for row in rows:
        ap_diff, p_diff = re.search(r"AP ([0-9.e+-]+), P@1000 ([0-9.e+-]+) \|$", row).groups()
        assert float(ap_diff) < 1e-9 and float(p_diff) < 1e-6, row
    assert "RetrievalMetric.compute()" in text and "compiled engine, both passes" in text


def test_quantizer_cost_smoke_run_prints_every_quantizer():
    script = str(BENCHMARKS / "quantizer_cost.py")
    text = _run(script, "--sizes", "16", "--bits", "8", "--warmup", "1", "--repeats", "2")
    assert "HSWD" in text and "SWD" in text and "|" in text
