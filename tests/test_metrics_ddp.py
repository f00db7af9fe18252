"""RetrievalMetric under DDP: 2 gloo ranks (spawned), uneven shards with DistributedSampler padding.

The gathered, de-duplicated result must equal the single-process result exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hashbench.metrics import RetrievalMetric

WORLD = 2
NQ, NX, BITS, C = 45, 613, 12, 5


def _data():
    g = torch.Generator().manual_seed(1234)
    hq, hx = torch.randn(NQ, BITS, generator=g), torch.randn(NX, BITS, generator=g)
    yq = (torch.rand(NQ, C, generator=g) < 0.3).float()
    yx = (torch.rand(NX, C, generator=g) < 0.3).float()
    return hq, yq, hx, yx


def _sampler_shards(n: int, world: int, seed: int) -> list[torch.Tensor]:
    """What DistributedSampler(shuffle=True) hands each rank: pad by repeating the head, then stride."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    total = -(-n // world) * world
    padded = torch.cat([perm, perm[: total - n]])
    return [padded[r::world] for r in range(world)]


def _shards():
    q = _sampler_shards(NQ, WORLD, seed=0)  # 45 -> 23 + 23, one index on both ranks
    # database: uneven shards (400 / 213 + overlap) and padding-style repeats across ranks
    perm = torch.randperm(NX, generator=torch.Generator().manual_seed(1))
    x = [torch.cat([perm[:400], perm[450:455]]), torch.cat([perm[400:], perm[:9]])]
    return q, x


def _metrics():
    return {
        "index": RetrievalMetric(
            bits=BITS, top_k=100, precision_k=30, radius=2, ties="index", multi_label=True
        ),
        "expected": RetrievalMetric(bits=BITS, top_k=None, precision_k=30, radius=1, ties="expected"),
    }


def _feed(metric, hq, yq, hx, yx, q_idx, x_idx, batch):
    for s in range(0, len(x_idx), batch):
        j = x_idx[s : s + batch]
        metric.update(hx[j], yx[j], j, role="database")
    for s in range(0, len(q_idx), batch):
        j = q_idx[s : s + batch]
        metric.update(hq[j], yq[j], j, role="query")


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        hq, yq, hx, yx = _data()
        q, x = _shards()
        results = {}
        for name, metric in _metrics().items():
            _feed(metric, hq, yq, hx, yx, q[rank], x[rank], batch=17 if rank == 0 else 50)
            results[name] = metric.compute()
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_ddp_gathered_dedup_equals_single_process(tmp_path: Path):
    q, x = _shards()
    # the shards really overlap (padding duplicates) and are uneven
    assert len(set(q[0].tolist()) & set(q[1].tolist())) == 1
    assert len(x[0]) != len(x[1]) and len(set(x[0].tolist()) & set(x[1].tolist())) > 0
    assert set(torch.cat(q).tolist()) == set(range(NQ)) and set(torch.cat(x).tolist()) == set(range(NX))

    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)

    hq, yq, hx, yx = _data()
    single = {}
    for name, metric in _metrics().items():
        _feed(metric, hq, yq, hx, yx, torch.arange(NQ), torch.arange(NX), batch=64)
        single[name] = metric.compute()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert {"ACG@100", "NDCG@100", "WAP@100"} <= got["index"].keys()
        for name, ref in single.items():
            assert got[name].keys() == ref.keys()
            for k in ref:
                assert torch.equal(got[name][k], ref[k]), (rank, name, k, got[name][k], ref[k])
