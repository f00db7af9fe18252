"""DPN (Fan et al., IJCAI 2020): polarise every bit to its class's target code with a hinge."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.centers import CenterLoss


class DPN(CenterLoss):
    """``mean(max(margin − h ⊙ t, 0))`` over samples and bits, t the sample's target code.

    Targets (C, m): random ±1 rows with ⌊m/2⌋ entries −1 each (kept far apart), the buffer
    ``centers``; multi-label: the sign of the sum of the label targets, zeros set from a fixed
    random ±1 vector (as CSQ, :class:`~hashbench.losses.centers.CenterLoss`). DPN uses the raw
    output (head ``activation: identity``). The polarisation hinge is also its quantization, so
    there is no separate ``quantization`` term.

    Args:
        margin: hinge margin m (1).
        seed: seed of the targets and of the multi-label tie-breaker.
    """

    center_method = "balanced"

    def __init__(self, margin: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.margin = margin

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        t = self.targets(labels, h.dtype)
        return {"similarity": (self.margin - h * t).clamp_min(0).mean()}
