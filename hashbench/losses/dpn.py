"""DPN (Fan et al., IJCAI 2020): polarise every bit to its class's target code with a hinge."""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.losses.base import HashLoss, TrainingContext, full_precision, require_setup
from hashbench.losses.centers import hash_centers, label_centers


class DPN(HashLoss):
    """``mean(max(margin − h ⊙ t, 0))`` over samples and bits, t the sample's target code.

    Targets (C, m): random ±1 rows with ⌊m/2⌋ entries −1 each (kept far apart), a buffer built from
    ``seed``; multi-label: the sign of the sum of the label targets, zeros set from a fixed random ±1
    vector (as CSQ). DPN uses the raw output (head ``activation: identity``). The polarisation
    hinge is also its quantization, so there is no separate ``quantization`` term.

    Args:
        margin: hinge margin m (1).
        seed: seed of the targets and of the multi-label tie-breaker.
    """

    targets: Tensor
    tie_breaker: Tensor

    def __init__(self, margin: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.margin = margin
        self.seed = seed

    def setup(self, context: TrainingContext) -> None:
        if self.first_setup(context):
            self.register_buffer(
                "targets", hash_centers(context.num_classes, context.bits, "balanced", self.seed)
            )
            generator = torch.Generator().manual_seed(self.seed + 1)
            self.register_buffer(
                "tie_breaker", torch.randint(0, 2, (context.bits,), generator=generator) * 2.0 - 1
            )

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        targets = require_setup(self, getattr(self, "targets", None))
        t = label_centers(labels, targets, self.tie_breaker).to(h.dtype)
        return {"similarity": (self.margin - h * t).clamp_min(0).mean()}
