"""Measure candidate digits protocols for the quantizer study: mAP and seconds per epoch, side by side.

    OMP_NUM_THREADS=1 python benchmarks/study_protocol.py --methods dsdh dch csq --bits 8 16 \
        --train-per-class 30 --seeds 0 1 --root runs/protocol

Each run is ``hashbench fit --config experiments/demo.yaml --config experiments/digits/<method>.yaml
--config experiments/study/protocol.yaml`` with the method's original term or HSWD (λ = 0.1, the HSWD
authors' setting), run in this process one after another (no per-run import cost). The table gives, per
method, quantizer, bits and training images per class, the final validation mAP@all of each seed, their
mean, the gap HSWD − original, the mean training-epoch wall time (``diagnostics.json``, epoch 0 left
out) and the CPU seconds of a fit (imports excluded: the fits share this process).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from hashbench.cli import main as hashbench

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@dataclass(frozen=True)
class Result:
    """A run's final validation mAP@all, mean training-epoch wall seconds (epoch 0 left out) and the CPU
    seconds of the whole fit (one thread: about the wall time on an idle core)."""

    mAP: float
    epoch_s: float
    cpu_s: float


QUANTIZERS = {
    "original": ["--model.quantizer", "original"],
    "HSWD": ["--model.quantizer", "HSWD", "--model.quantization_weight", "0.1"],
}


def run(method: str, quantizer: str, bits: int, per_class: int, seed: int, epochs: int, root: Path) -> Result:
    """One fit in this process."""
    name = f"{method}_{quantizer}_{bits}b_{per_class}pc_s{seed}"
    args = [
        "fit",
        "--config", str(EXPERIMENTS / "demo.yaml"),
        "--config", str(EXPERIMENTS / "digits" / f"{method}.yaml"),
        "--config", str(EXPERIMENTS / "study" / "protocol.yaml"),
        *QUANTIZERS[quantizer],
        "--model.head.init_args.bits", str(bits),
        "--data.init_args.train_per_class", str(per_class),
        "--seed_everything", str(seed),
        "--trainer.max_epochs", str(epochs),
        "--trainer.check_val_every_n_epoch", str(epochs),
        "--trainer.logger", "false",
        "--trainer.default_root_dir", str(root),
        "--run_name", name,
    ]  # fmt: skip
    cpu = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        hashbench(args)
    cpu = time.process_time() - cpu
    folder = sorted((root / name).iterdir())[-1]
    metrics = json.loads((folder / "metrics.json").read_text())
    epochs_s = [e["train_epoch_s"] for e in json.loads((folder / "diagnostics.json").read_text())["epochs"]]
    return Result(float(metrics["val/mAP@all"]), statistics.mean(epochs_s[1:] or epochs_s), cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["dsdh", "dch", "csq"])
    parser.add_argument("--bits", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--train-per-class", nargs="+", type=int, default=[30])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--root", type=Path, default=Path("runs/protocol"))
    args = parser.parse_args()
    print(
        "| method | bits | train/class | original mAP (per seed) | HSWD mAP (per seed) | HSWD − original "
        "| s/epoch orig / HSWD | CPU s per fit orig / HSWD |"
    )
    print("|---|---:|---:|---|---|---:|---|---|")
    for method, bits, per_class in product(args.methods, args.bits, args.train_per_class):
        cells, means, seconds, cpu = [], [], [], []
        for quantizer in QUANTIZERS:
            results = [run(method, quantizer, bits, per_class, s, args.epochs, args.root) for s in args.seeds]
            means.append(statistics.mean(r.mAP for r in results))
            seconds.append(statistics.mean(r.epoch_s for r in results))
            cpu.append(statistics.mean(r.cpu_s for r in results))
            cells.append(f"{means[-1]:.3f} ({', '.join(f'{r.mAP:.3f}' for r in results)})")
        print(
            f"| {method} | {bits} | {per_class} | {cells[0]} | {cells[1]} | {means[1] - means[0]:+.3f} "
            f"| {seconds[0]:.2f} / {seconds[1]:.2f} | {cpu[0]:.1f} / {cpu[1]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
