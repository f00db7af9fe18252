"""Per-step cost of ``hashbench fit`` against a plain PyTorch loop on the same model, data and optimizer.

    python benchmarks/step_overhead.py                 # the demo: digits, SmallCNN, DPSH + HSWD, 32 bits
    python benchmarks/step_overhead.py --rounds 2      # shorter
    python benchmarks/step_overhead.py --layout        # a training step, NCHW against channels-last

Both loops train the demo's model (SmallCNN width 32, tanh head, DPSH with its code bank, HSWD with λ = 0.1,
Adam 1e-3, multi-tensor ``foreach``) on the demo's digits split with the same DataLoader, one thread. A
step's time is the wall time from one batch's start to the next (data, forward, loss, backward, optimizer
and, for Lightning, its hooks, logging and progress display).

A round trains the plain loop and then each Lightning configuration afresh for ``--epochs`` epochs, epoch 0
(the warm-up) not counted; ``--rounds`` rounds follow one another. The plain loop steps the optimizer that
the module configures for Lightning (its backbone and head parameter groups). A round lasts seconds, so a
drift in the machine's speed touches its loops alike: each round gives a paired ratio, a loop's median step
over the plain loop's median step in that round, and the table gives the median of these ratios with its
95 % bootstrap interval, next to each loop's median and 90th percentile step over all rounds. The target is
≤ 5 % with the demo's display. The last two rows are Lightning's own floor, ``Trainer(barebones=True)``
(no logging, callbacks, checkpoints or display): first with its automatic optimization, then with the module
stepping its optimizer in ``training_step`` (manual optimization). Lightning's summary and progress bar go
to stderr (``2>/dev/null`` leaves the table alone).

``--layout`` times the plain loop's step (forward, loss, backward, Adam) on a fixed batch of 64 with the
backbone and images in PyTorch's default NCHW layout and channels-last (``HashingModule(channels_last=…)``),
for the digits' 8×8 and CIFAR-10's 32×32 images, the two layouts taking turns.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from lightning import Trainer
from lightning.pytorch.callbacks import TQDMProgressBar
from scipy.stats import bootstrap
from torch import Tensor

from hashbench.backbones import SmallCNN
from hashbench.data import Digits
from hashbench.heads import HashHead
from hashbench.losses import DPSH
from hashbench.losses.base import TrainingContext
from hashbench.module import Batch, HashingModule
from hashbench.quantizers import HSWD

LAMBDA = 0.1


def make_module(
    in_channels: int = 1, channels_last: bool = True, module_class: type[HashingModule] = HashingModule
) -> HashingModule:
    torch.manual_seed(0)
    return module_class(
        backbone=SmallCNN(in_channels=in_channels, width=32),
        head=HashHead(bits=32, activation="tanh"),
        loss=DPSH(bank=True),
        quantizer=HSWD(),
        quantization_weight=LAMBDA,
        precision_k=100,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4, foreach=True),
        channels_last=channels_last,
    )


class TimedModule(HashingModule):
    """The demo's module timing the wall time between consecutive batch starts, per epoch (the last batch's
    end closes the epoch). Its own hooks, not a callback, so that it also times ``Trainer(barebones=True)``,
    which takes no callbacks."""

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.step_times: list[list[float]] = []  # s, per epoch

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.step_times.append([])
        self._last: float | None = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.step_times[-1].append(now - self._last)
        self._last = now

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._end = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        if self._last is not None:
            self.step_times[-1].append(self._end - self._last)
        super().on_train_epoch_end()


class ManualStepModule(TimedModule):
    """The timed module stepping its optimizer itself (Lightning's manual optimization): no closure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        optimizer = self.optimizers()
        total = super().training_step(batch, batch_idx)
        if total is not None:
            optimizer.zero_grad()  # type: ignore[union-attr]
            self.manual_backward(total)
            optimizer.step()  # type: ignore[union-attr]
        return total


def plain_epoch(module: HashingModule, optimizer: torch.optim.Optimizer, loader: Any) -> list[float]:
    """One epoch of a hand-written loop: the same objective as HashingModule.training_step."""
    times = []
    start = time.perf_counter()
    for images, labels, indices in loader:
        u, h = module(images)
        terms = module.loss(u, h, labels, indices)
        terms.pop("quantization", None)
        total = torch.stack(list(terms.values())).sum() + LAMBDA * module.quantizer(u)  # type: ignore[operator]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return times


def lightning_epochs(
    data: Digits, epochs: int, module_class: type[TimedModule] = TimedModule, **trainer_options: Any
) -> list[list[float]]:
    module = make_module(module_class=module_class)
    assert isinstance(module, TimedModule)
    if not trainer_options.get("barebones"):
        trainer_options = {"logger": False, "enable_checkpointing": False, **trainer_options}
    trainer = Trainer(
        max_epochs=epochs, accelerator="cpu", num_sanity_val_steps=0, limit_val_batches=0, **trainer_options
    )
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():  # the table alone on stdout
        warnings.filterwarnings("ignore", "You are trying to `self.log", UserWarning)  # barebones drops logs
        trainer.fit(module, datamodule=data)
    return module.step_times


LAYOUT_INPUTS = {"digits, 1×8×8": (1, 8), "CIFAR-10, 3×32×32": (3, 32)}


def layout_table(rounds: int, steps: int = 50) -> None:
    """Median ms of a plain training step, NCHW against channels-last, per input size."""
    print("\n| images (batch 64) | NCHW | channels-last | change |\n|---|---:|---:|---:|")
    for name, (channels, size) in LAYOUT_INPUTS.items():
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for channels_last in (False, True):
                module = make_module(channels, channels_last)
                module.loss.setup(TrainingContext(bits=32, num_classes=10, num_train=64, multi_label=False))
                images = torch.randn(64, channels, size, size)
                batch = [(images, torch.eye(10)[torch.arange(64) % 10], torch.arange(64))]
                optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
                plain_epoch(module.train(), optimizer, batch * 5)  # warm-up
                times[channels_last].extend(plain_epoch(module, optimizer, batch * steps))
        nchw, nhwc = (1e3 * statistics.median(times[layout]) for layout in (False, True))
        print(f"| {name} | {nchw:.2f} ms | {nhwc:.2f} ms | {100 * (nhwc / nchw - 1):+.0f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not counted)")
    parser.add_argument(
        "--rounds", type=int, help="rounds, each a fresh run of every loop (default 20; 3 with --layout)"
    )
    parser.add_argument("--layout", action="store_true", help="time NCHW against channels-last instead")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.layout else 20)
    torch.set_num_threads(1)
    if args.layout:
        layout_table(rounds)
        return
    data = Digits(query_per_class=20, train_per_class=80, batch_size=64)
    data.setup("fit")

    configurations: dict[str, Callable[[], dict[str, Any]]] = {  # fresh callbacks for each trainer
        "hashbench fit, no progress display": lambda: {"enable_progress_bar": False},
        "hashbench fit, the demo's display (TQDM, refresh every 10 steps)": lambda: {
            "callbacks": [TQDMProgressBar(refresh_rate=10)]
        },
        "hashbench fit, TQDM refreshed every step": lambda: {"callbacks": [TQDMProgressBar(refresh_rate=1)]},
        "Lightning's floor: `Trainer(barebones=True)`, no logging, callbacks or display": lambda: {
            "barebones": True
        },
        "the same floor with manual optimization (the module steps Adam itself)": lambda: {
            "barebones": True,
            "module_class": ManualStepModule,
        },
    }
    plain: list[list[float]] = []  # per round: the steps of epochs 1 and later
    measured: dict[str, list[list[float]]] = {name: [] for name in configurations}
    for _ in range(rounds):
        module = make_module()
        module.loss.setup(
            TrainingContext(bits=32, num_classes=10, num_train=len(data.train_dataset), multi_label=False)
        )
        optimizer = module.configure_optimizers()  # the one Lightning steps: backbone and head groups
        epochs = [plain_epoch(module.train(), optimizer, data.train_dataloader()) for _ in range(args.epochs)]
        plain.append(counted_steps(epochs))
        for name, options in configurations.items():
            measured[name].append(counted_steps(lightning_epochs(data, args.epochs, **options())))
    print_table(plain, measured, args.epochs)


def counted_steps(epochs: list[list[float]]) -> list[float]:
    """The step times of one loop's run, epoch 0 (the warm-up) left out."""
    return [step for epoch in epochs[1:] for step in epoch]


def paired_overhead(loop: list[list[float]], plain: list[list[float]]) -> tuple[float, float, float]:
    """% overhead of ``loop`` over ``plain``, both given as step times per round: each round's ratio of the
    two medians, minus 1; the median over rounds and its 95 % bootstrap interval (low, median, high)."""
    ratios = np.array(
        [
            100 * (statistics.median(mine) / statistics.median(reference) - 1)
            for mine, reference in zip(loop, plain, strict=True)
        ]
    )
    median = float(np.median(ratios))
    if len(ratios) < 2:
        return median, median, median
    interval = bootstrap((ratios,), np.median, method="percentile", random_state=0).confidence_interval
    return float(interval.low), median, float(interval.high)


def print_table(plain: list[list[float]], measured: dict[str, list[list[float]]], epochs: int) -> None:
    """Median and p90 ms per step of each loop (all rounds) and its paired overhead over the plain loop."""
    print(
        f"\nms per training step, epochs 1–{epochs - 1} of each run (epoch 0 excluded), {len(plain)} rounds, "
        "1 thread;\noverhead: per round, the loop's median step over the plain loop's − 1; the median over "
        "rounds [95 % bootstrap interval]\n"
    )
    print("| loop | steps | median | p90 | overhead |\n|---|---:|---:|---:|---:|")
    for name, rounds in {"plain PyTorch loop": plain, **measured}.items():
        steps = [step for round_steps in rounds for step in round_steps]
        median, p90 = statistics.median(steps), statistics.quantiles(steps, n=10)[-1]
        if rounds is plain:
            overhead = "reference"
        else:
            low, middle, high = paired_overhead(rounds, plain)
            overhead = f"{middle:+.1f} % [{low:+.1f}, {high:+.1f}]"
        print(f"| {name} | {len(steps)} | {1e3 * median:.2f} | {1e3 * p90:.2f} | {overhead} |")


if __name__ == "__main__":
    main()
