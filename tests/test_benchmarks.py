"""The benchmark scripts run end to end on tiny sizes and print their tables (the figures are not checked)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(script: str) -> ModuleType:
    """A benchmark script imported as a module (its ``main`` not run)."""
    spec = importlib.util.spec_from_file_location(f"{script}_benchmark", BENCHMARKS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_eval_speed_smoke_run_matches_the_reference():
    """eval_speed.py at 1% scale, NUS-WIDE, 64 bits: per query, AP and P@k equal the public code's."""
    args = ("--quick", "--scale", "0.01", "--repeats", "1", "--cases", "0")
    text = _run(str(BENCHMARKS / "eval_speed.py"), *args)
    (row,) = [line for line in text.splitlines() if line.startswith("| NUS-WIDE")]
    ap_diff, p_diff = re.search(r"AP ([0-9.e+-]+), P@1000 ([0-9.e+-]+) \|", row).groups()
    assert float(ap_diff) < 1e-9 and float(p_diff) < 1e-6, row
    cells = [c.strip() for c in row.split("|")]
    assert float(cells[18]) == pytest.approx(float(cells[12]), abs=0.05), row  # tie-aware mAP ≈ mAP
    assert 0 < float(cells[22]) <= 1, row  # multi-label: NDCG@K of the graded run
    assert "RetrievalMetric.compute()" in text and "compiled engine, both passes" in text
    assert "| `import hashbench.metrics` |" in text
    assert "modules loaded after accessing RetrievalMetric: torchmetrics" in text


def test_quantizer_cost_smoke_run_prints_every_quantizer():
    script = str(BENCHMARKS / "quantizer_cost.py")
    text = _run(script, "--sizes", "16", "--bits", "8", "--warmup", "1", "--repeats", "2")
    # the first cell of each table row, so that "SWD" cannot be found inside "HSWD"
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for name in ("HSWD (sampled)", "HSWD (exact)", "SWD (L=1,000)", "SWD (L=10,000)", "OT"):
        assert name in rows and "×" in rows[name], name  # a measured cell: "µs (ratio×)"


def test_quantizer_cost_sort_table_has_every_shape():
    text = _run(str(BENCHMARKS / "quantizer_cost.py"), "--sort", "--warmup", "0", "--repeats", "1")
    rows = [line for line in text.splitlines() if line.startswith("| 1") and line.endswith("× |")]
    assert len(rows) == 4 and all(line.count("×") == 3 for line in rows), text  # shape + 2 speed-ups


def test_startup_benchmark_alternates_the_checkouts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    """startup.py with a baseline: after one warm-up each, the checkouts take turns for every timed run,
    and the table gives both medians and the change (here for a trivial command)."""
    startup = _load("startup")
    order: list[Path] = []
    time_one = startup.wall_time
    monkeypatch.setattr(startup, "COMMANDS", {"python -c pass": ["-c", "pass"]})
    monkeypatch.setattr(
        startup, "wall_time", lambda checkout, *a: order.append(checkout) or time_one(checkout, *a)
    )
    monkeypatch.setattr(sys, "argv", ["startup.py", "--baseline", str(tmp_path), "--repeat", "2"])
    startup.main()
    assert order == [startup.REPO, tmp_path] * 3
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| python -c pass")]
    assert row.endswith("% |") and row.count("|") == 5


def test_step_overhead_pairs_each_round_with_the_plain_loop_of_that_round():
    """The overhead is the median of the rounds' paired ratios: a round where the machine ran slow for the
    loop alone (44 against 20 ms) does not move it, as pooling all steps would (+120 %)."""
    step_overhead = _load("step_overhead")
    plain = [[10.0, 10.0], [20.0, 20.0], [40.0, 40.0]]
    loop = [[11.0, 11.0], [44.0, 44.0], [44.0, 44.0]]
    low, median, high = step_overhead.paired_overhead(loop, plain)
    assert median == pytest.approx(10.0) and low == pytest.approx(10.0) and high >= median


def test_step_overhead_times_every_step_of_a_barebones_trainer():
    """Trainer(barebones=True) takes no callbacks: the module's own hooks time each step of each epoch, with
    Lightning's automatic optimization and with the module stepping its optimizer itself."""
    from hashbench.data import Digits

    step_overhead = _load("step_overhead")
    data = Digits(query_per_class=2, train_per_class=8, val_query_per_class=2, batch_size=16)
    data.setup("fit")  # 80 training images: 5 steps an epoch
    for module_class in (step_overhead.TimedModule, step_overhead.ManualStepModule):
        epochs = step_overhead.lightning_epochs(data, 2, module_class=module_class, barebones=True)
        assert [len(steps) for steps in epochs] == [5, 5] and min(epochs[1]) > 0, module_class


def test_data_speed_smoke_run_prints_every_pipeline():
    text = _run(str(BENCHMARKS / "data_speed.py"), "--images", "130", "--cifar-images", "256")
    rows = {line[:52].strip() for line in text.splitlines() if re.search(r"\d +\d[\d,.]* +[\d,.]+$", line)}
    for name in ("pil (former)", "uint8 loader", "nvjpeg loader", "image cache, first epoch", "later epochs"):
        assert any(name in row for row in rows), (name, text)
    assert "speed-up with the image cache, later epochs" in text
