"""Gathering across DDP ranks for losses that pair samples: the global batch and detached copies.

Every function is the identity (or a detach) on a single process, so losses call them unconditionally.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_detached", "gather_with_grad", "global_batch", "world"]


def world() -> tuple[int, int]:
    """``(world_size, rank)`` of the default process group; ``(1, 0)`` without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _all_gather_pieces(x: Tensor) -> list[Tensor]:
    """Every rank's ``x`` (detached, rank order); first dimensions may differ between ranks."""
    size, _ = world()
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    payload = x.detach()
    was_bool = payload.dtype == torch.bool
    if was_bool:  # not every backend gathers bool
        payload = payload.to(torch.uint8)
    padded = payload.new_zeros((longest, *x.shape[1:]))
    padded[: x.shape[0]] = payload
    pieces = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(pieces, padded.contiguous())
    pieces = [piece[: int(s.item())] for piece, s in zip(pieces, sizes, strict=True)]
    return [piece.bool() for piece in pieces] if was_bool else pieces


def gather_detached(x: Tensor) -> Tensor:
    """``x`` from every rank, concatenated along dim 0 in rank order, detached; ``x.detach()`` without DDP."""
    if world()[0] == 1:
        return x.detach()
    return torch.cat(_all_gather_pieces(x))


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def gather_with_grad(x: Tensor) -> Tensor:
    """The global batch: ``x`` from every rank concatenated along dim 0 (rank order); identity without DDP.

    Other ranks' rows are detached copies; this rank's rows are ``x`` itself, with its gradient
    multiplied by the world size W. Every rank then computes the same loss ``L`` on the global batch
    and holds the exact ``∂L/∂x`` for its own rows, times W; DDP's gradient *averaging* divides by
    W again, so the update equals the single-process update on the global batch (as
    SimCLR's ``GatherLayer``, without its backward all-reduce). Pointwise terms on the local rows
    need nothing: their DDP average is already the global mean.
    """
    size, rank = world()
    if size == 1:
        return x
    pieces = _all_gather_pieces(x)
    pieces[rank] = _ScaleGradient.apply(x, float(size))
    return torch.cat(pieces)


def global_batch(h: Tensor, labels: Tensor, enabled: bool = True) -> tuple[Tensor, Tensor]:
    """``(h, labels)`` of the global batch (see :func:`gather_with_grad`); as given when not ``enabled``."""
    if not enabled:
        return h, labels
    return gather_with_grad(h), gather_detached(labels)
