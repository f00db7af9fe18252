"""Start-up and end-to-end demo time of ``hashbench``, optionally side by side with another checkout.

    python benchmarks/startup.py                                  # this checkout
    git worktree add /tmp/hb-before 238cd11                       # the code before the speed work
    python benchmarks/startup.py --baseline /tmp/hb-before        # both, side by side

Each command runs in a fresh process (``python -m hashbench …`` with the checkout first on PYTHONPATH, one
torch thread), once to warm the disk cache and numba's cache, then ``--repeat`` times; the table gives the
median wall time in seconds. With a baseline, the two checkouts take turns (each command alternates between
them) so that a drift in the machine's speed touches both alike. The demo is ``hashbench fit --config
experiments/demo.yaml`` for 20 epochs with its logger off. Targets: ``hashbench --help`` ≤ 1.5 s; the demo
≥ 30 % faster than before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS: dict[str, list[str]] = {
    "hashbench --help": ["-m", "hashbench", "--help"],
    "hashbench fit --help": ["-m", "hashbench", "fit", "--help"],
    "import hashbench.metrics": ["-c", "import hashbench.metrics"],
    "demo, 20 epochs (fit + final validation)": [
        "-m", "hashbench", "fit", "--config", "experiments/demo.yaml", "--trainer.max_epochs", "20",
        "--trainer.logger", "false", "--trainer.default_root_dir", "{runs}",
    ],
}  # fmt: skip


def wall_time(checkout: Path, args: list[str], runs: str) -> float:
    """Seconds one command takes in a fresh process run from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    command = [sys.executable, *(arg.format(runs=runs) for arg in args)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {checkout}:\n{result.stderr[-2000:]}")
    return elapsed


def measure(checkouts: list[Path], repeat: int) -> list[dict[str, float]]:
    """Median seconds of each command, per checkout; the checkouts take turns for every run."""
    times: list[dict[str, list[float]]] = [{name: [] for name in COMMANDS} for _ in checkouts]
    with tempfile.TemporaryDirectory() as runs:
        for name, args in COMMANDS.items():
            for checkout in checkouts:
                wall_time(checkout, args, runs)  # warm-up
            for _ in range(repeat):
                for checkout, samples in zip(checkouts, times, strict=True):
                    samples[name].append(wall_time(checkout, args, runs))
    return [{name: statistics.median(values) for name, values in samples.items()} for samples in times]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="another checkout of hashbench to compare with")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command (median)")
    args = parser.parse_args()
    checkouts = [REPO] if args.baseline is None else [REPO, args.baseline.resolve()]
    now, *baseline = measure(checkouts, args.repeat)
    before = baseline[0] if baseline else None
    print(f"\nmedian wall time of {args.repeat} runs, seconds\n")
    if before is None:
        print("| command | this checkout |\n|---|---:|")
        for name, seconds in now.items():
            print(f"| {name} | {seconds:.2f} |")
        return
    print(f"| command | before ({args.baseline}) | now | change |\n|---|---:|---:|---:|")
    for name, seconds in now.items():
        change = 100 * (seconds / before[name] - 1)
        print(f"| {name} | {before[name]:.2f} | {seconds:.2f} | {change:+.0f} % |")


if __name__ == "__main__":
    main()
