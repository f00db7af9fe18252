"""Speed of using a trained model: encoding, search by index type, and evaluation vs FAISS.

    nice -n 10 python benchmarks/retrieval_speed.py     # full tables (about 10 minutes on 2 cores)
    python benchmarks/retrieval_speed.py --sizes 10000 --queries 50 --nus-scale 0.01   # smoke run

1. Encoding throughput: the demo model (``experiments/demo.yaml``'s small CNN, 32 bits; a 1-epoch fit
   made here unless ``--run`` names a run folder, the weights do not change the speed) on the digits
   database split, one torch thread: from the split's tensors, and from 8×8 PNG files through the
   model's own transform.
2. Search latency and memory for N uniformly random 64-bit codes (no structure: a hard case for the
   approximate indexes). Queries are database codes with 8 random bits flipped, so each has a planted
   neighbour. One FAISS thread, all queries in one call; ms/query = CPU time / queries; memory = the
   serialised index; recall@10 = overlap of the top 10 with exact search; planted = how often the
   planted neighbour is in the top 10. HNSW is built up to
   ``--hnsw-max`` codes (10^5), IVF up to ``--ivf-max`` (10^6): beyond, their build takes many minutes
   on 2 shared cores.
3. The evaluation engine (``hashbench.metrics.mean_average_precision``, ties by index) against FAISS
   Flat top-K then AP over it, at NUS-WIDE scale (5,000 queries × 193,734, 64 bits, K = 5,000, codes
   that look trained from ``eval_speed.make_data``): the time of each and the largest per-query AP gap.

Times are CPU seconds of this process (``time.process_time``), one thread everywhere: on a machine shared
with other jobs, wall time would measure their load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("encoding", "search", "evaluation")
sys.path.insert(0, str(REPO / "benchmarks"))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ------------------------------------------------------------------------------------- encoding
def demo_run(folder: Path) -> Path:
    from hashbench.cli import main

    main(
        ["fit", "--config", str(REPO / "experiments" / "demo.yaml"), "--trainer.max_epochs", "1",
         "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
         "--trainer.callbacks", "[]", "--trainer.default_root_dir", str(folder)]
    )  # fmt: skip
    (run,) = folder.glob("demo/*")
    return run


def encoding(run: Path, repeats: int) -> str:
    from hashbench.retrieval.encoder import Encoder

    torch.set_num_threads(1)
    encoder = Encoder.from_run(run)
    datamodule = encoder.set_up()
    database = datamodule.database_dataset
    inputs = torch.stack([database[p][0] for p in range(len(database))])  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for p in range(len(inputs)):
            files.append(Path(folder) / f"{p}.png")
            datamodule.picture("database", p).save(files[-1])

        def from_tensors() -> None:
            for start in range(0, len(inputs), 256):
                encoder.encode_inputs(inputs[start : start + 256])

        rows = []
        for name, work in (
            ("split tensors (model only)", from_tensors),
            ("8×8 PNG files (decode + transform + model)", lambda: encoder.encode(files)),
        ):
            best = min(_timed(work) for _ in range(repeats))
            rows.append([name, f"{len(inputs):,}", f"{len(inputs) / best:,.0f}", f"{best * 1e3:.0f} ms"])
    return table(["input", "images", "images/s (1 thread, CPU time)", "CPU time"], rows)


def _timed(work) -> float:
    """CPU seconds of this process for ``work()``: on a shared machine, wall time measures the others."""
    start = time.process_time()
    work()
    return time.process_time() - start


# --------------------------------------------------------------------------------------- search
def search_latency(sizes: list[int], n_queries: int, caps: dict[str, int], k: int = 10) -> None:
    """Prints the table row by row (CPU seconds of the one FAISS thread)."""
    import faiss

    from hashbench.retrieval.codes import CodeIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    header = ["codes", "index", "build (CPU)", "ms/query (CPU)", "memory", "recall@10", "planted in top 10"]
    print(table(header, []), flush=True)
    for n in sizes:
        database = rng.integers(0, 256, (n, 8), dtype=np.uint8)
        picks = rng.integers(0, n, n_queries)
        flips = np.zeros((n_queries, 64), dtype=bool)
        for row in flips:
            row[rng.choice(64, 8, replace=False)] = True
        queries = database[picks] ^ np.packbits(flips, axis=1)
        exact = None
        for factory in ("BFlat", "BHNSW32", "BIVF1024", "BHash4x16"):
            if n > caps.get(factory, n):
                print(f"| {n:,} | {factory} | not built (cap) | | | | |", flush=True)
                continue
            index = CodeIndex(64, factory)
            ids = _ids(n)
            start = time.process_time()
            index.add(database, ids)
            build = time.process_time() - start
            if factory == "BIVF1024":
                index.index.nprobe = 16
            start = time.process_time()
            positions, _ = index.search(queries, k)
            latency = (time.process_time() - start) / n_queries
            if exact is None:
                exact = positions
            recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(positions, exact, strict=True)])
            planted = np.mean([pick in row for pick, row in zip(picks, positions, strict=True)])
            memory = faiss.serialize_index_binary(index.index).nbytes / 2**20
            name = factory + (" (nprobe 16)" if factory == "BIVF1024" else "")
            cells = [f"{n:,}", name, f"{build:.1f} s", f"{latency * 1e3:.3f}", f"{memory:,.1f} MB"]
            print("| " + " | ".join([*cells, f"{recall:.3f}", f"{planted:.3f}"]) + " |", flush=True)
            del index, ids


def _ids(n: int) -> list[str]:
    return [str(i) for i in range(n)]


# ----------------------------------------------------------------------------------- evaluation
def evaluation(scale: float, threads: int, top_k: int = 5000) -> str:
    import faiss
    from eval_speed import make_data

    from hashbench.metrics import mean_average_precision
    from hashbench.metrics.ranking import ranking_pass

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    n_query, n_db = max(10, int(5000 * scale)), max(top_k, int(193_734 * scale))
    q, yq, x, yx = make_data(n_query, n_db, 64, 21, True, 2.5)
    mean_average_precision(q[:10], yq[:10], x, yx, top_k=top_k, bits=64)  # load the compiled engine

    start = time.process_time()
    hashbench_map = float(mean_average_precision(q, yq, x, yx, top_k=top_k, bits=64))
    hashbench_time = time.process_time() - start
    ap_hashbench = ranking_pass(
        q, (yq != 0).float(), x, (yx != 0).float(), False, 64, top_k, 1, "index"
    ).ap.numpy()

    qn, xn = q.numpy(), x.numpy()
    yqn, yxn = yq.numpy() != 0, yx.numpy() != 0
    start = time.process_time()
    index = faiss.IndexBinaryFlat(64)
    index.add(xn)
    ap_faiss = []
    for s in range(0, n_query, 500):
        _, ids = index.search(qn[s : s + 500], top_k)
        relevant = (yqn[s : s + 500, None, :] & yxn[ids]).any(2)
        hits = np.cumsum(relevant, 1)
        precision = hits / np.arange(1, top_k + 1)
        found = relevant.sum(1)
        ap_faiss.append(np.where(found > 0, (precision * relevant).sum(1) / np.maximum(found, 1), 0.0))
    faiss_time = time.process_time() - start
    ap = np.concatenate(ap_faiss)
    rows = [
        ["hashbench (one pass, ties by index)", f"{hashbench_time:.2f} s", f"{hashbench_map:.6f}"],
        [f"FAISS IndexBinaryFlat top {top_k:,} + AP (numpy)", f"{faiss_time:.2f} s", f"{ap.mean():.6f}"],
    ]
    gap = np.abs(ap - ap_hashbench).max()
    return (
        f"{n_query:,} queries × {n_db:,} items, 64 bits, mAP@{top_k}, {threads} thread(s); "
        f"largest per-query AP difference {gap:.1e}\n\n" + table(["engine", "CPU time", f"mAP@{top_k}"], rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a demo run folder (default: a 1-epoch fit)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6, 10**7])
    parser.add_argument("--queries", type=int, default=1000, help="queries per search measurement")
    parser.add_argument("--hnsw-max", type=int, default=10**5, help="largest N for HNSW (build time)")
    parser.add_argument("--ivf-max", type=int, default=10**6, help="largest N for IVF (build time)")
    parser.add_argument("--nus-scale", type=float, default=1.0, help="fraction of the NUS-WIDE sizes")
    parser.add_argument("--threads", type=int, default=1, help="threads of the evaluation comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args()
    if "encoding" in args.sections:
        with tempfile.TemporaryDirectory() as folder:
            run = args.run or demo_run(Path(folder))
            print("## Encoding (demo model, digits database split)\n")
            print(encoding(run, args.repeats), flush=True)
    if "search" in args.sections:
        print("\n## Search, 64-bit random codes, top 10, one thread\n", flush=True)
        caps = {"BHNSW32": args.hnsw_max, "BIVF1024": args.ivf_max}
        search_latency(args.sizes, args.queries, caps)
    if "evaluation" in args.sections:
        print("\n## Evaluation engine vs FAISS Flat\n")
        print(evaluation(args.nus_scale, args.threads), flush=True)


if __name__ == "__main__":
    main()
