"""``codes.pt`` in the run folder: the packed codes that ``hashbench predict`` writes (its one owner)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

ROLES = ("query", "database")
"""The order of the predict dataloaders."""
FIELDS = ("codes", "labels", "indices")


class CodesWriter(BasePredictionWriter):
    """Writes ``{"bits", "query": {...}, "database": {...}}`` to ``<run folder>/codes.pt`` after predict.

    Each role holds ``codes`` (packed uint8 ``(N, ceil(bits/8))``, MSB first), ``labels`` (multi-hot
    ``(N, C)``) and ``indices`` (positions in its split), in prediction order. Under DDP every rank writes
    its shard to ``codes_rank<r>.pt``.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.run_dir = Path(run_dir)

    def write_on_epoch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any] | None,
    ) -> None:
        per_loader = predictions if len(ROLES) > 1 and _is_nested(predictions) else [predictions]
        result: dict[str, object] = {"bits": getattr(pl_module, "bits", None)}
        for role, batches in zip(ROLES, per_loader, strict=False):
            result[role] = {key: torch.cat([batch[key].cpu() for batch in batches]) for key in FIELDS}
        suffix = "" if trainer.world_size == 1 else f"_rank{trainer.global_rank}"
        path = self.run_dir / f"codes{suffix}.pt"
        torch.save(result, path)
        if trainer.is_global_zero:
            print(f"codes: {path}")


def _is_nested(predictions: Sequence[Any]) -> bool:
    """Lightning returns a list per dataloader when there are several."""
    return bool(predictions) and isinstance(predictions[0], list)
