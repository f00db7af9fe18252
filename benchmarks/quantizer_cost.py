"""Forward+backward cost of every quantizer per batch, as a markdown table.

    python benchmarks/quantizer_cost.py                 # CPU, torch's default thread count
    python benchmarks/quantizer_cost.py --device cuda   # on a GPU (synchronised timings)
    python benchmarks/quantizer_cost.py --sort --threads 1   # the row sort of the W2 distances only

For each batch shape (N, m) the codes are a leaf tensor ``h`` (N, m) with ``requires_grad``; one
timed call is ``q(h).backward()``. Each quantizer gets warm-up calls, then the timed calls are
interleaved (one call of every quantizer per round); the table reports the median in microseconds
and the ratio to HSWD (sampled) for the same shape. The script ends with the two cost targets of the issue:
HSWD at least 20x cheaper than SWD with 10,000 projections at N=256, m=64, and exact HSWD no slower
than sampled HSWD. ``--sort`` instead times the sort under SWD and the diagnostics, ``torch.sort`` against
:func:`~hashbench.quantizers.sorted_rows` (numpy's sort on the CPU), without and with a backward pass.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from hashbench.quantizers import (
    HSWD,
    OT,
    SWD,
    BernoulliKL,
    BitBalance,
    Cauchy,
    CosineToSign,
    Cubic,
    GaussianBCE,
    LocalityConstrained,
    LogCosh,
    Quantizer,
    SignL2,
    SoftsignUnitL1,
    TanhSquared,
    UnitL1,
    UnitL2,
    sorted_rows,
)

QUANTIZERS: dict[str, Callable[[], Quantizer]] = {
    "HSWD (sampled)": lambda: HSWD(target="sampled"),
    "HSWD (exact)": lambda: HSWD(target="exact"),
    "SWD (L=1,000)": lambda: SWD(num_projections=1000),
    "SWD (L=10,000)": lambda: SWD(num_projections=10000),
    "OT": lambda: OT(),
    "SignL2 (DPSH, DTSH)": lambda: SignL2(),
    "UnitL1 (DSH)": lambda: UnitL1(),
    "Cubic (GreedyHash)": lambda: Cubic(),
    "Cauchy (DCH)": lambda: Cauchy(),
    "TanhSquared (CSQ)": lambda: TanhSquared(),
    "BitBalance (DBDH)": lambda: BitBalance(),
    "LogCosh (DHN)": lambda: LogCosh(),
    "CosineToSign (OrthoHash)": lambda: CosineToSign(),
    "SoftsignUnitL1 (IDHN)": lambda: SoftsignUnitL1(),
    "LocalityConstrained (LCDSH)": lambda: LocalityConstrained(),
    "GaussianBCE (DHD)": lambda: GaussianBCE(),
    "BernoulliKL (JMLH)": lambda: BernoulliKL(),
    "UnitL2 (MDSH)": lambda: UnitL2(),
}
REFERENCE = "HSWD (sampled)"


def time_once(q: Quantizer, h: torch.Tensor) -> float:
    """Seconds of one ``q(h).backward()`` (synchronised on CUDA)."""
    sync = torch.cuda.synchronize if h.device.type == "cuda" else (lambda: None)
    h.grad = None
    sync()
    start = time.perf_counter()
    q(h).backward()
    sync()
    return time.perf_counter() - start


def time_shape(
    quantizers: dict[str, Quantizer], h: torch.Tensor, warmup: int, repeats: int, stat: str = "median"
) -> dict[str, float]:
    """Median (or min) seconds per quantizer; the repeats are interleaved (one call of each per round),
    so a slow spell of the machine hits every quantizer alike instead of one row of the table."""
    for q in quantizers.values():
        for _ in range(warmup):
            time_once(q, h)
    times: dict[str, list[float]] = {name: [] for name in quantizers}
    for _ in range(repeats):
        for name, q in quantizers.items():
            times[name].append(time_once(q, h))
    reduce = statistics.median if stat == "median" else min
    return {name: reduce(ts) for name, ts in times.items()}


SORT_SHAPES = [(1000, 64), (1000, 512), (10000, 256), (10000, 1024)]
"""(L, N): L projections of N codes (the light diagnostics: 1,000 × 512; the study's: 10,000 × 1,024)."""


def sort_table(device: torch.device, warmup: int, repeats: int, stat: str) -> None:
    """Median (or min) ms of sorting (L, N) rows, torch.sort against sorted_rows, values only and with a
    backward pass through them."""

    def torch_sort(x: torch.Tensor) -> torch.Tensor:
        return torch.sort(x, dim=1).values

    def with_backward(sort: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], None]:
        return lambda leaf: sort(leaf).sum().backward()

    threads = torch.get_num_threads()
    print(f"Sorting (L, N) rows, {stat} ms; torch {torch.__version__}, {device}, {threads} threads.")
    print()
    print(
        "| L × N | torch.sort | sorted_rows | speed-up | torch.sort + backward | sorted_rows + backward | ",
        end="",
    )
    print("speed-up |\n|---|---:|---:|---:|---:|---:|---:|")
    reduce = statistics.median if stat == "median" else min
    for rows, n in SORT_SHAPES:
        x = torch.randn(rows, n, device=device)
        leaf = x.clone().requires_grad_(True)
        calls: dict[str, tuple[Callable[[torch.Tensor], object], torch.Tensor]] = {
            "torch": (torch_sort, x),
            "ours": (sorted_rows, x),
            "torch, backward": (with_backward(torch_sort), leaf),
            "ours, backward": (with_backward(sorted_rows), leaf),
        }
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(warmup):
            for call, tensor in calls.values():
                call(tensor)
        for _ in range(repeats):  # interleaved, as time_shape
            for name, (call, tensor) in calls.items():
                start = time.perf_counter()
                call(tensor)
                times[name].append(time.perf_counter() - start)
        ms = {name: 1e3 * reduce(values) for name, values in times.items()}
        print(
            f"| {rows:,} × {n:,} | {ms['torch']:.2f} | {ms['ours']:.2f} | {ms['torch'] / ms['ours']:.0f}× "
            f"| {ms['torch, backward']:.2f} | {ms['ours, backward']:.2f} "
            f"| {ms['torch, backward'] / ms['ours, backward']:.1f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--sizes", default="64,256", help="batch sizes N, comma-separated")
    parser.add_argument("--bits", default="16,64,128", help="code lengths m, comma-separated")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per quantizer and shape")
    parser.add_argument("--repeats", type=int, default=31, help="timed calls per quantizer and shape")
    parser.add_argument(
        "--stat",
        choices=["median", "min"],
        default="median",
        help="statistic over the repeats (min is robust to other processes on a busy machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--sort", action="store_true", help="time the row sort of the W2 distances instead")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.sort:
        sort_table(device, args.warmup, args.repeats, args.stat)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    bits = [int(b) for b in args.bits.split(",")]
    shapes = [(n, m) for n in sizes for m in bits]
    torch.manual_seed(args.seed)

    seconds: dict[str, dict[tuple[int, int], float]] = {name: {} for name in QUANTIZERS}
    for n, m in shapes:
        h = torch.randn(n, m, device=device, requires_grad=True)
        quantizers = {name: make().to(device) for name, make in QUANTIZERS.items()}
        for name, t in time_shape(quantizers, h, args.warmup, args.repeats, args.stat).items():
            seconds[name][(n, m)] = t

    where = f"{device}" + (f", {torch.get_num_threads()} threads" if device.type == "cpu" else "")
    if device.type == "cuda":
        where += f", {torch.cuda.get_device_name(device)}"
    print(
        f"Forward+backward per batch, {args.stat} µs (ratio to {REFERENCE}); "
        f"torch {torch.__version__}, {where}."
    )
    print()
    header = "| quantizer | " + " | ".join(f"N={n}, m={m}" for n, m in shapes) + " |"
    print(header)
    print("|---|" + "---:|" * len(shapes))
    for name in QUANTIZERS:
        cells = []
        for shape in shapes:
            t = seconds[name][shape]
            ratio = t / seconds[REFERENCE][shape]
            shown = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2f}"
            cells.append(f"{t * 1e6:,.0f} ({shown}×)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()

    target_shape = (256, 64)
    if target_shape in shapes:
        hswd = seconds[REFERENCE][target_shape]
        swd = seconds["SWD (L=10,000)"][target_shape]
        speedup = swd / hswd
        status = "met" if speedup >= 20 else "NOT met"
        print(
            f"* HSWD (sampled) vs SWD (L=10,000) at N=256, m=64: {speedup:.0f}× cheaper "
            f"(target ≥ 20×: {status})."
        )
    slower = [
        f"N={n}, m={m}" for n, m in shapes if seconds["HSWD (exact)"][(n, m)] > seconds[REFERENCE][(n, m)]
    ]
    ratios = [seconds["HSWD (exact)"][s] / seconds[REFERENCE][s] for s in shapes]
    print(
        f"* HSWD (exact) / HSWD (sampled): {min(ratios):.2f}–{max(ratios):.2f}× "
        f"(target ≤ 1: {'met' if not slower else 'NOT met at ' + ', '.join(slower)})."
    )


if __name__ == "__main__":
    main()
