"""Every method trains on the digits demo protocol, shortened to 10 epochs (CPU, ~5 s a run), to an mAP
far above chance (~0.1).

Each run is the README's command, in-process: ``hashbench fit --config experiments/demo.yaml --config
experiments/digits/<method>.yaml --trainer.max_epochs 10`` (32 bits, seed 0, one thread), with its original
term, and for the paper's six methods also with HSWD in its place. The thresholds are the validation mAP@all
these same runs gave on the development machine, less a margin of 0.1 (runs differ slightly across platforms
and library versions). The README's methods table has the full 30-epoch figures over seeds.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import EXPERIMENTS

from hashbench.cli import main

MEASURED = {  # validation mAP@all after 10 epochs of the digits demo protocol, 32 bits, one CPU thread
    ("dsdh", "original"): 0.9425,
    ("hashnet", "original"): 0.9947,
    ("greedyhash", "original"): 0.9996,
    ("dch", "original"): 0.9881,
    ("csq", "original"): 0.9998,
    ("dbdh", "original"): 0.6313,
    ("orthohash", "original"): 0.9786,
    ("dpsh", "original"): 0.7656,  # the paper's raw-u form (identity head)
    ("dsh", "original"): 0.8703,
    ("dtsh", "original"): 0.9874,
    ("dpn", "original"): 0.9961,
    ("ce", "original"): 0.9929,
    ("dsdh", "hswd"): 0.8269,
    ("hashnet", "hswd"): 0.9912,
    ("greedyhash", "hswd"): 0.9997,
    ("dch", "hswd"): 0.9932,
    ("csq", "hswd"): 0.9966,
    ("dbdh", "hswd"): 0.7931,
}
MARGIN = 0.1
HSWD = ["--model.quantizer", "hashbench.quantizers.HSWD", "--model.quantization_weight", "0.1"]


@pytest.mark.parametrize(("method", "quantizer"), list(MEASURED), ids=lambda value: str(value))
def test_method_learns_digits(method: str, quantizer: str, tmp_path: Path) -> None:
    args = [
        "fit",
        "--config", str(EXPERIMENTS / "demo.yaml"),
        "--config", str(EXPERIMENTS / "digits" / f"{method}.yaml"),
        *(HSWD if quantizer == "hswd" else []),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false",
        "--trainer.callbacks", "null",
        "--trainer.enable_checkpointing", "false",
        "--diagnostics", "false",
        "--trainer.max_epochs", "10",
    ]  # fmt: skip
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        main(args)
    (run_dir,) = (p for p in tmp_path.glob("*/*") if p.is_dir())
    mean_ap = json.loads((run_dir / "metrics.json").read_text())["val/mAP@all"]
    assert mean_ap >= MEASURED[method, quantizer] - MARGIN, f"{method} + {quantizer}: mAP@all {mean_ap:.4f}"
