"""Losses under DDP: 2 gloo ranks (spawned), each with half of a global batch.

After DDP's gradient averaging the update must equal the single-process update on the global batch
(pairs across the whole batch), and dataset-level state must equal the single-process state.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hashbench.losses import (
    CSQ,
    DBDH,
    DCH,
    DPSH,
    DSDH,
    DSH,
    DTSH,
    HashLoss,
    HashNet,
    OrthoHash,
    TrainingContext,
)

WORLD = 2
N, FEATURES, BITS, C = 12, 6, 8, 3
CONTEXT = TrainingContext(bits=BITS, num_classes=C, num_train=2 * N, multi_label=True)


def _losses() -> dict[str, HashLoss]:
    return {
        "dpsh_bank": DPSH(bank=True),
        "dpsh_batch": DPSH(bank=False),
        "dsh": DSH(),
        "dsh_shard_only": DSH(global_batch=False),
        "hashnet": HashNet(),
        "dch": DCH(),
        "dbdh": DBDH(),
        "dtsh": DTSH(),
        "dsdh": DSDH(),
        "csq": CSQ(),
        "orthohash": OrthoHash(),
    }


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2 * N, FEATURES, generator=g)
    y = (torch.rand(2 * N, C, generator=g) < 0.4).float()
    y[y.sum(1) == 0, 0] = 1
    return x, y


def _run(rank: int, world: int) -> dict[str, dict[str, torch.Tensor]]:
    """Two steps of two global batches of N each, then the epoch hook; this rank's share of every batch."""
    x, y = _data()
    results = {}
    for name, loss in _losses().items():
        torch.manual_seed(0)
        model = torch.nn.Linear(FEATURES, BITS)
        loss.setup(CONTEXT)
        loss.on_train_epoch_start(0)
        grads = []
        for step in range(2):
            batch = torch.arange(step * N, (step + 1) * N)
            mine = batch.chunk(world)[rank]
            model.zero_grad()
            u = model(x[mine])
            out = loss(u, torch.tanh(u), y[mine], mine)
            torch.stack(list(out.values())).sum().backward()
            grad = torch.cat([p.grad.flatten() for p in model.parameters()])
            if world > 1:  # what DDP does: average the gradients over the ranks
                dist.all_reduce(grad)
                grad /= world
            grads.append(grad)
        loss.on_train_epoch_start(1)
        results[name] = {"grad": torch.stack(grads), **{k: v.clone() for k, v in loss.state_dict().items()}}
    return results


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.save(_run(rank, WORLD), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(180)
def test_ddp_global_batch_gradients_and_state_equal_single_process(tmp_path: Path) -> None:
    mp.start_processes(
        _worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, start_method="spawn", join=True
    )
    single = _run(0, 1)
    for rank in range(WORLD):
        ranked = torch.load(tmp_path / f"rank{rank}.pt")
        # pairs within each shard only: not the global-batch update
        assert not torch.allclose(ranked["dsh_shard_only"]["grad"], single["dsh_shard_only"]["grad"])
        for name, expected in single.items():
            if name == "dsh_shard_only":
                continue
            assert ranked[name].keys() == expected.keys(), name
            for key, value in expected.items():
                torch.testing.assert_close(
                    ranked[name][key], value, rtol=1e-5, atol=1e-6, msg=f"{name}.{key}"
                )
    # the state really moved: the banks are full, DSDH's B and W were computed
    assert bool(single["dsdh"]["code_bank.seen"].all())
    assert set(single["dsdh"]["b_codes"].unique().tolist()) == {-1.0, 1.0}
