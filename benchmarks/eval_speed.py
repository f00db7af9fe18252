"""Speed and memory of hashbench's retrieval evaluation vs the per-query loop of public hashing code.

    python benchmarks/eval_speed.py            # full table (about a minute or two on 2 cores)
    python benchmarks/eval_speed.py --quick    # smaller reference runs
    python benchmarks/eval_speed.py --quick --scale 0.01 --repeats 1 --cases 0    # smoke run (tests)
    python benchmarks/eval_speed.py --imports  # import times only

Every case runs in a fresh subprocess so that its peak memory can be measured: the increase of the
process's resident set size (RSS, sampled every millisecond by a thread with psutil, so it includes
torch's and numpy's allocations) over the RSS just before the call. Inputs (bit-packed codes, labels)
are built before the measurement starts. Both tie rules are measured, each in its own process:
``ties="index"`` (against the reference) and ``ties="expected"`` (tie-aware AP); for the multi-label
cases also ``ties="index"`` with the graded metrics (ACG, NDCG, WAP at K, ``graded=True``).

Import times: wall clock of ``import torch``, then ``import hashbench.metrics``, then the first access
to ``hashbench.metrics.RetrievalMetric`` (which imports torchmetrics), each in a fresh interpreter,
best of ``--repeats``.

The reference is the way public hashing code evaluates (e.g. DeepHash-pytorch ``CalcTopMap``): for
each query a ±1 matrix product for the Hamming distances, a full ``np.argsort`` (made stable here so
that ties go by database index, like ``ties="index"``), then AP over the top K. It runs on the first
``--ref-queries`` queries; its time is scaled to all queries, and its mAP on those queries is compared
with hashbench's per-query AP on the same queries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import torch

# (name, queries, database, bits, classes, multi-label, K (None = all), P@k, code noise)
CASES = [
    ("NUS-WIDE", 5_000, 193_734, 64, 21, True, 5_000, 1_000, 2.5),
    ("CIFAR-10", 1_000, 54_000, 64, 10, False, None, 1_000, 1.2),
    ("NUS-WIDE", 5_000, 193_734, 16, 21, True, 5_000, 1_000, 2.5),
    ("CIFAR-10", 1_000, 54_000, 16, 10, False, None, 1_000, 1.2),
    ("NUS-WIDE", 5_000, 193_734, 128, 21, True, 5_000, 1_000, 2.5),
    ("CIFAR-10", 1_000, 54_000, 128, 10, False, None, 1_000, 1.2),
]


# ----------------------------------------------------------------------------- data


def make_data(n_query: int, n_db: int, bits: int, n_classes: int, multi: bool, noise: float, seed: int = 0):
    """Codes that look trained: sign(label prototypes + noise); many exact ties, as in real runs.

    Multi-label: each of C concepts with a skewed frequency (as in NUS-WIDE), at least one per item.
    Returns packed codes (uint8) and labels (multi-hot float or class indices).
    """
    from hashbench.metrics import pack_codes

    g = torch.Generator().manual_seed(seed)
    proto = torch.randn(n_classes, bits, generator=g)

    def labels(n):
        if not multi:
            return torch.randint(0, n_classes, (n,), generator=g)
        freq = torch.linspace(0.35, 0.02, n_classes)
        y = (torch.rand(n, n_classes, generator=g) < freq).float()
        empty = y.sum(1) == 0
        y[empty, torch.randint(0, n_classes, (int(empty.sum()),), generator=g)] = 1
        return y

    def codes(y, n):
        onehot = y if multi else torch.nn.functional.one_hot(y, n_classes).float()
        out = []
        for s in range(0, n, 65536):  # keep the float intermediates small
            h = onehot[s : s + 65536] @ proto + noise * torch.randn(min(65536, n - s), bits, generator=g)
            out.append(pack_codes(h))
        return torch.cat(out)

    yq, yx = labels(n_query), labels(n_db)
    return codes(yq, n_query), yq, codes(yx, n_db), yx


# ----------------------------------------------------------------------------- reference


def reference_map(q_codes, q_labels, x_codes, x_labels, top_k, precision_k, n_queries):
    """Per-query loop as in public hashing code (numpy), with a stable argsort. Returns per-query AP, P@k."""
    bits = q_codes.shape[1]
    n = x_codes.shape[0]
    top_k = n if top_k is None else top_k
    aps, precs = [], []
    for i in range(n_queries):
        gnd = (q_labels[i] @ x_labels.T > 0).astype(np.float32)
        hamm = 0.5 * (bits - x_codes @ q_codes[i])
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind]
        precs.append(gnd[:precision_k].mean())
        tgnd = gnd[:top_k]
        tsum = int(tgnd.sum())
        if tsum == 0:
            aps.append(0.0)
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        aps.append(float(np.mean(count / tindex)))
    return np.array(aps), np.array(precs)


# ----------------------------------------------------------------------------- memory


def _cpu_stat() -> tuple[float, float]:
    """(total, idle) CPU seconds of the whole machine, all cores."""
    t = psutil.cpu_times()
    return sum(t), t.idle + getattr(t, "iowait", 0.0)


def _rss() -> int:
    return psutil.Process().memory_info().rss


class PeakRSS:
    """Peak RSS increase over the RSS at entry, sampled every millisecond by a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.increase = self.peak - self.base


# ----------------------------------------------------------------------------- one case


def scaled(case: tuple, scale: float) -> tuple:
    """The case with ``scale`` × its queries and database items (at least 10 and 100)."""
    name, nq, nx, *rest = case
    return (name, max(10, round(nq * scale)), max(100, round(nx * scale)), *rest)


def run_case(case, ref_queries: int | None, repeats: int, ties: str = "index", graded: bool = False) -> dict:
    """One case under one tie rule (and with the graded metrics if ``graded``); the reference (public
    code's loop) only for plain ``ties="index"``."""
    from hashbench.metrics import rank, unpack_codes

    name, nq, nx, bits, n_cls, multi, top_k, pk, noise = case
    qp, yq, xp, yx = make_data(nq, nx, bits, n_cls, multi, noise)
    times, others = [], []
    for i in range(repeats):
        with PeakRSS() as m:  # the first run's peak: all the memory the evaluation needs
            s0, c0 = _cpu_stat(), time.process_time()
            t0 = time.perf_counter()
            res = rank(qp, yq, xp, yx, top_k=top_k, precision_k=pk, bits=bits, ties=ties, graded=graded)
            ours_map = float(res.ap.mean())
            ours_p = float((res.hits / res.precision_k).mean())
            times.append(time.perf_counter() - t0)
            s1, cpu = _cpu_stat(), time.process_time() - c0
        if i == 0:
            mem = m
        busy = (s1[0] - s0[0]) - (s1[1] - s0[1])  # cores busy over the run, minus ours
        others.append(max(0.0, busy / max(1e-9, s1[0] - s0[0]) * os.cpu_count() - cpu / times[-1]))
    best = min(range(repeats), key=times.__getitem__)
    if graded:
        return dict(seconds=times[best], peak_mb=mem.increase / 2**20, ndcg=float(res.ndcg.mean()))
    if ties != "index":
        return dict(
            seconds=times[best], others=others[best], peak_mb=mem.increase / 2**20, map=float(res.ap.mean())
        )
    # reference on the first ref_queries queries
    q_np = unpack_codes(qp[:ref_queries], bits).numpy()
    x_np = unpack_codes(xp, bits).numpy()
    if multi:
        ql, xl = yq[:ref_queries].numpy(), yx.numpy()
    else:
        ql = torch.nn.functional.one_hot(yq[:ref_queries], n_cls).float().numpy()
        xl = torch.nn.functional.one_hot(yx, n_cls).float().numpy()
    ref_time = float("inf")
    for _ in range(repeats):  # best of repeats, like ours: the least disturbed run
        t0 = time.perf_counter()
        ref_ap, ref_p = reference_map(q_np, ql, x_np, xl, top_k, pk, ref_queries)
        ref_time = min(ref_time, time.perf_counter() - t0)
    return dict(
        name=name,
        nq=nq,
        nx=nx,
        bits=bits,
        k="all" if top_k is None else top_k,
        seconds=times[best],
        others=others[best],
        peak_mb=mem.increase / 2**20,
        map=ours_map,
        p_at_k=ours_p,
        ref_ms_per_query=1e3 * ref_time / ref_queries,
        ref_scaled=ref_time / ref_queries * nq,
        ref_queries=ref_queries,
        ref_map=float(ref_ap.mean()),
        ours_map_subset=float(res.ap[:ref_queries].mean()),
        max_ap_diff=float(np.abs(res.ap[:ref_queries].numpy() - ref_ap).max()),
        max_p_diff=float(np.abs((res.hits[:ref_queries] / res.precision_k).numpy() - ref_p).max()),
        threads=torch.get_num_threads(),
    )


def run_metric_class(case) -> dict:
    """``RetrievalMetric.compute()`` (every figure, diagnostics, de-duplication) from its stored states.

    The compiled engine is loaded first (from numba's cache: a once-per-process cost, as in training).
    """
    from hashbench.metrics import RetrievalMetric, rank

    one, label = torch.ones(1, 8), torch.zeros(1, dtype=torch.long)
    rank(one, label, one, label)

    _, nq, nx, bits, n_cls, _, top_k, pk, noise = case  # multi-label
    g = torch.Generator().manual_seed(0)
    proto = torch.randn(n_cls, bits, generator=g)
    metric = RetrievalMetric(bits=bits, top_k=top_k, precision_k=pk, radius=2, multi_label=True)
    for role, n in (("query", nq), ("database", nx)):
        y = (torch.rand(n, n_cls, generator=g) < torch.linspace(0.35, 0.02, n_cls)).float()
        y[y.sum(1) == 0, 0] = 1
        for s in range(0, n, 4096):  # batches, as a validation loop feeds them
            h = y[s : s + 4096] @ proto + noise * torch.randn(min(4096, n - s), bits, generator=g)
            metric.update(h.to(torch.bfloat16), y[s : s + 4096], torch.arange(s, min(n, s + 4096)), role)
    with PeakRSS() as mem:  # one call: torchmetrics caches the result of compute()
        t0 = time.perf_counter()
        out = metric.compute()
        seconds = time.perf_counter() - t0
    return dict(seconds=seconds, peak_mb=mem.increase / 2**20, map=float(out[metric.map_key]))


# ----------------------------------------------------------------------------- distance kernels


def distance_kernels(nq: int = 256, nx: int = 193_734, bits: int = 64) -> list[tuple[str, float]]:
    """ns per query–item pair, one thread: the compiled engine's stages, and torch GEMM kernels."""
    import numba

    from hashbench.metrics import pack_codes, unpack_codes
    from hashbench.metrics.ranking_cpu import _BLOCK, _block_codes, _label_words, _words, rank_cpu

    g = torch.Generator().manual_seed(1)
    qp = pack_codes(torch.randn(nq, bits, generator=g))
    xp = pack_codes(torch.randn(nx, bits, generator=g))
    yq = (torch.rand(nq, 21, generator=g) < 0.2).float()
    yx = (torch.rand(nx, 21, generator=g) < 0.2).float()
    q, x_t = _words(qp.numpy()), np.ascontiguousarray(_words(xp.numpy()).T)
    q_lab, lab_t = _label_words(yq, False), np.ascontiguousarray(_label_words(yx, False).T)

    @numba.njit(nogil=True)
    def codes_only(q, q_lab, x_t, lab_t):  # distances and relevance (2d + r) of every pair, nothing else
        dist = np.empty(_BLOCK, np.uint16)
        rel = np.empty(_BLOCK, np.uint16)
        out = np.empty(_BLOCK, np.uint16)
        total = 0
        for j in range(q.shape[0]):
            for b0 in range(0, x_t.shape[1], _BLOCK):
                b1 = min(x_t.shape[1], b0 + _BLOCK)
                _block_codes(q[j], q_lab[j], x_t, lab_t, False, b0, b1, dist, rel, out)
                total += out[0]
        return total

    qf, xf = unpack_codes(qp, bits), unpack_codes(xp, bits)
    q8, x8t = qf.to(torch.int8), xf.to(torch.int8).t().contiguous()
    xf_blocks = [xf[c : c + 4096].t().contiguous() for c in range(0, nx, 4096)]
    x8_blocks = [x8t[:, c : c + 4096].contiguous() for c in range(0, nx, 4096)]

    def gemm_f32():  # q·x; d = (m - q·x) / 2, in cache-sized blocks of 64 queries × 4096 items
        for s in range(0, nq, 64):
            for blk in xf_blocks:
                torch.mm(qf[s : s + 64], blk)

    def gemm_i8():  # q·x in int32
        for s in range(0, nq, 64):
            for blk in x8_blocks:
                torch._int_mm(q8[s : s + 64], blk)

    def engine(index_ties: bool):
        return lambda: rank_cpu(qp, yq, xp, yx, False, bits, 5000, 1000, index_ties, 1)

    out = []
    for name, fn in [
        ("±1 GEMM, float32 (distances only)", gemm_f32),
        ("±1 GEMM, int8 -> int32 (distances only)", gemm_i8),
        ("compiled popcount: distances + relevance", lambda: codes_only(q, q_lab, x_t, lab_t)),
        ("compiled engine, pass 1 (+ histogram)", engine(False)),
        ("compiled engine, both passes (K = 5000)", engine(True)),
    ]:
        fn()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out.append((name, best / (nq * nx) * 1e9))
    return out


# ----------------------------------------------------------------------------- import time

_IMPORT_STAGES = ("import torch", "import hashbench.metrics", "hashbench.metrics.RetrievalMetric")
_IMPORT_CHILD = """
import sys, time
t0 = time.perf_counter(); import torch
t1 = time.perf_counter(); import hashbench.metrics
t2 = time.perf_counter(); hashbench.metrics.RetrievalMetric
t3 = time.perf_counter()
loaded = [m for m in ("torchmetrics", "lightning") if m in sys.modules]
print(t1 - t0, t2 - t1, t3 - t2, ",".join(loaded) or "-")
"""


def import_times(runs: int) -> dict:
    """Seconds of each import stage in a fresh interpreter (best of ``runs``), and which of torchmetrics /
    lightning were loaded once ``RetrievalMetric`` was accessed."""
    best = [float("inf")] * 3
    loaded = ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_CHILD], capture_output=True, text=True, check=True
        )
        *times, loaded = out.stdout.split()
        best = [min(b, float(t)) for b, t in zip(best, times, strict=True)]
    return dict(stages=dict(zip(_IMPORT_STAGES, best, strict=True)), loaded_after_access=loaded, runs=runs)


def print_import_times(imports: dict) -> None:
    print(
        f"Import times (fresh interpreter, best of {imports['runs']}; each stage on top of the previous one):"
    )
    print()
    print("| stage | seconds |")
    print("|---|---:|")
    for stage, seconds in imports["stages"].items():
        print(f"| `{stage}` | {seconds:.2f} |")
    print()
    print(f"modules loaded after accessing RetrievalMetric: {imports['loaded_after_access']}")


# ----------------------------------------------------------------------------- main


def _kernel_items(scale: float) -> int:
    return max(4096, round(193_734 * scale))


def _worker(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit(f"benchmark worker {args} failed")
    return json.loads(line[0][len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer reference queries")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case (the best is reported)")
    ap.add_argument(
        "--scale", type=float, default=1.0, help="fraction of every case's queries and database (smoke runs)"
    )
    ap.add_argument("--imports", action="store_true", help="print the import times only")
    ap.add_argument(
        "--cases", type=int, nargs="+", default=list(range(len(CASES))), help="indices of the cases to run"
    )
    ap.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ties", default="index", help=argparse.SUPPRESS)
    ap.add_argument("--graded", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--metric-class", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kernels", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ref-queries", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.imports:
        print_import_times(import_times(max(1, args.repeats)))
        return
    if args.kernels:  # worker process
        torch.set_num_threads(1)
        print("RESULT " + json.dumps(distance_kernels(nx=_kernel_items(args.scale))), flush=True)
        return
    if args.case is not None:  # worker process
        case = scaled(CASES[args.case], args.scale)
        if args.metric_class:
            result = run_metric_class(case)
        else:
            result = run_case(case, args.ref_queries, args.repeats, args.ties, args.graded)
        print("RESULT " + json.dumps(result), flush=True)
        return

    print(
        f"torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}; best of {args.repeats} runs; "
        "peak memory = increase of the process RSS during the call; "
        f"load average at start {os.getloadavg()[0]:.2f}"
        + (f"; SMOKE RUN: every case scaled by {args.scale}" if args.scale != 1.0 else ""),
        flush=True,
    )
    rows = []
    scale = ["--scale", str(args.scale)]
    for i in args.cases:
        case = CASES[i]
        nus = case[0] == "NUS-WIDE"
        ref_q = (20 if nus else 100) if args.quick else (100 if nus else 300)
        ref_q = min(scaled(case, args.scale)[1], ref_q)
        rows.append(
            _worker(["--case", str(i), "--ref-queries", str(ref_q), "--repeats", str(args.repeats), *scale])
        )
        rows[-1]["expected"] = _worker(
            ["--case", str(i), "--ties", "expected", "--repeats", str(args.repeats), *scale]
        )
        if case[5]:  # multi-label
            rows[-1]["graded"] = _worker(
                ["--case", str(i), "--graded", "--repeats", str(args.repeats), *scale]
            )
        print(
            f"# {rows[-1]['name']} {rows[-1]['bits']} bits: {rows[-1]['seconds']:.2f} s, "
            f"ties=expected {rows[-1]['expected']['seconds']:.2f} s",
            flush=True,
        )
    metric = _worker(["--case", "0", "--metric-class", *scale])
    kernels = _worker(["--kernels", *scale])
    imports = import_times(max(1, args.repeats))

    head = (
        "| case | queries × database | bits | K | hashbench (s) | other load (cores) | pairs/s "
        "| peak RSS +MB "
        "| reference ms/query | reference, all queries (s) | speed-up | mAP@K | P@1000 "
        "| check: reference vs hashbench mAP (queries), max abs diff per query "
        "| ties=expected (s) | expected / index time | peak RSS +MB (expected) | tie-aware mAP@K "
        "| + ACG, NDCG, WAP (s) | graded / index time | peak RSS +MB (graded) | NDCG@K |"
    )
    print()
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        pairs, e = r["nq"] * r["nx"], r["expected"]
        print(
            f"| {r['name']} | {r['nq']:,} × {r['nx']:,} | {r['bits']} | {r['k']} | {r['seconds']:.2f} "
            f"| {r['others']:.1f} | {pairs / r['seconds']:.2e} | {r['peak_mb']:.0f} "
            f"| {r['ref_ms_per_query']:.1f} "
            f"| {r['ref_scaled']:.0f} | {r['ref_scaled'] / r['seconds']:.0f}× | {r['map']:.4f} "
            f"| {r['p_at_k']:.4f} | {r['ref_map']:.6f} vs {r['ours_map_subset']:.6f} ({r['ref_queries']}), "
            f"AP {r['max_ap_diff']:.0e}, P@1000 {r['max_p_diff']:.0e} "
            f"| {e['seconds']:.2f} | {e['seconds'] / r['seconds']:.2f}× | {e['peak_mb']:.0f} "
            f"| {e['map']:.4f} | "
            + (
                f"{g['seconds']:.2f} | {g['seconds'] / r['seconds']:.2f}× | {g['peak_mb']:.0f} "
                f"| {g['ndcg']:.4f} |"
                if (g := r.get("graded"))
                else "— | — | — | — |"
            )
        )
    print()
    print(
        f"RetrievalMetric.compute() at NUS-WIDE scale, 64 bits (de-dup, mAP@5000, P@1000, P@H<=2, "
        "ACG/NDCG/WAP@5000, PR curve, histograms, diagnostics; states from bf16 h): "
        f"{metric['seconds']:.2f} s, peak RSS +{metric['peak_mb']:.0f} MB"
    )
    print()
    print(
        "Per-pair cost by stage, one thread (the physical floor is one popcount per pair), "
        f"256 × {_kernel_items(args.scale):,} pairs, 64 bits, 21 labels:"
    )
    print()
    print("| kernel (exact) | ns / pair / core | pairs/s / core |")
    print("|---|---|---|")
    for name, ns in kernels:
        print(f"| {name} | {ns:.3f} | {1e9 / ns:.2e} |")
    print()
    print_import_times(imports)
    print()
    print(
        f"load average at the end: {os.getloadavg()[0]:.2f}. 'other load' = cores kept busy by other "
        "processes during the reported run (machine-wide CPU time by psutil): on a shared machine "
        "hashbench then has less than 2 cores, while the single-threaded reference is barely affected."
    )
    nus = next((r for r in rows if r["name"] == "NUS-WIDE" and r["bits"] == 64), None)
    if nus is None:  # not among the --cases
        return
    pairs = nus["nq"] * nus["nx"]
    per_core = nus["seconds"] * nus["threads"] / pairs * 1e9
    floor = dict(kernels)["compiled popcount: distances + relevance"]
    print()
    print(
        f"NUS-WIDE 64 bits: the whole evaluation (distances, relevance, histograms, top-K, AP, P@k) runs at "
        f"{pairs / nus['seconds']:.2e} pairs/s on {nus['threads']} cores = "
        f"{per_core:.2f} ns per pair per core, "
        f"{per_core / floor:.1f}× the cost of computing the distances and relevance alone ({floor:.2f} ns)."
    )


if __name__ == "__main__":
    main()
