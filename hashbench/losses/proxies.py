"""Learnable class proxies (HyP², DHD): a ``(C, m)`` parameter created once C is known."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from hashbench.losses.base import HashLoss, TrainingContext, require_setup

ProxyInit = Literal["kaiming_fan_out", "xavier_tanh"]


def init_proxies(num_classes: int, bits: int, init: ProxyInit, seed: int) -> Tensor:
    """``(C, m)`` initial proxies from ``seed`` (the same on every DDP rank).

    * ``kaiming_fan_out`` (HyP²): normal, std √(2/C) (``kaiming_normal_(mode="fan_out")`` of a C×m weight);
    * ``xavier_tanh`` (DHD): uniform on ±(5/3)·√(6/(C + m)) (``xavier_uniform_`` with tanh's gain).
    """
    generator = torch.Generator().manual_seed(seed)
    if init == "kaiming_fan_out":
        return torch.randn(num_classes, bits, generator=generator) * math.sqrt(2.0 / num_classes)
    bound = (5.0 / 3.0) * math.sqrt(6.0 / (num_classes + bits))
    return (torch.rand(num_classes, bits, generator=generator) * 2 - 1) * bound


class ProxyLoss(HashLoss):
    """Owns the learnable proxies ``(C, m)``, created in :meth:`setup` (the optimizer, built after
    setup, trains them with the head's learning rate; they are checkpointed with the model)."""

    proxies: nn.Parameter | None

    def __init__(self, init: ProxyInit, seed: int) -> None:
        super().__init__()
        self.init = init
        self.seed = seed
        self.proxies = None

    def allocate(self, context: TrainingContext) -> None:
        self.proxies = nn.Parameter(init_proxies(context.num_classes, context.bits, self.init, self.seed))

    def proxy_cosines(self, x: Tensor) -> Tensor:
        """``cos(x_i, p_c)`` ``(N, C)`` of codes ``x`` ``(N, m)`` with every proxy."""
        proxies = require_setup(self, self.proxies).to(x.dtype)
        return nn.functional.normalize(x, dim=1) @ nn.functional.normalize(proxies, dim=1).T
