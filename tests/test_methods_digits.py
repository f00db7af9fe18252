"""Every method trains on the digits demo protocol (CPU, ~6 s a run) to an mAP far above chance (~0.1).

Each run is the README's command, in-process: ``hashbench fit --config experiments/demo.yaml --config
experiments/digits/<method>.yaml`` (30 epochs, 32 bits, seed 0, one thread), with its original term,
and for the paper's six methods also with HSWD in its place. The thresholds are the measured mAP@all
less a margin of 0.1 (runs differ slightly across platforms and library versions).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import EXPERIMENTS

from hashbench.cli import main

MEASURED = {  # mAP@all on the digits demo protocol, 32 bits, one CPU thread (the README's table)
    ("dsdh", "original"): 0.9900,
    ("hashnet", "original"): 0.9843,
    ("greedyhash", "original"): 0.9920,
    ("dch", "original"): 0.9845,
    ("csq", "original"): 0.9915,
    ("dbdh", "original"): 0.7115,
    ("orthohash", "original"): 0.9771,
    ("dpsh", "original"): 0.7142,  # the paper's raw-u form (identity head); with a tanh head 0.9881
    ("dsh", "original"): 0.9495,
    ("dtsh", "original"): 0.9828,
    ("dpn", "original"): 0.9915,
    ("ce", "original"): 0.9914,
    ("dsdh", "hswd"): 0.9371,
    ("hashnet", "hswd"): 0.9813,
    ("greedyhash", "hswd"): 0.9920,
    ("dch", "hswd"): 0.9851,
    ("csq", "hswd"): 0.9881,
    ("dbdh", "hswd"): 0.9849,
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
    ]  # fmt: skip
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        main(args)
    (run_dir,) = (p for p in tmp_path.glob("*/*") if p.is_dir())
    mean_ap = json.loads((run_dir / "metrics.json").read_text())["val/mAP@all"]
    assert mean_ap >= MEASURED[method, quantizer] - MARGIN, f"{method} + {quantizer}: mAP@all {mean_ap:.4f}"
