"""Building blocks of the pairwise losses: similarities, the likelihood, DDP gathers, a code bank."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.losses.base import HashLoss, TrainingContext, require_setup


def similarity_matrix(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """``s_ij = 1[y_i · y_j > 0]`` (share a label): multi-hot ``(N, C)``, ``(M, C)`` → ``(N, M)``."""
    return (labels_a.float() @ labels_b.float().T > 0).to(
        labels_a.dtype if labels_a.is_floating_point() else torch.float32
    )


def pairwise_likelihood(theta: Tensor, similarity: Tensor) -> Tensor:
    """Negative log-likelihood of similarities under ``p(s=1) = sigmoid(Θ)``, elementwise.

    ``log(1 + e^Θ) − s·Θ`` in the overflow-free form ``softplus(Θ) − s·Θ``.
    """
    return F.softplus(theta) - similarity * theta


def balance_weights(similarity: Tensor) -> Tensor:
    """Per-pair weights that give positives and negatives equal total weight: ``|S|/|S₁|`` and ``|S|/|S₀|``.

    ``similarity`` is 0/1 ``(N, M)``; a class of pairs that is absent leaves the other at weight 1,
    so the weighted mean equals the plain mean then (HashNet, DCH).
    """
    total = similarity.numel()
    positives = similarity.sum()
    negatives = total - positives  # an absent class gets weight total/1 but has no pair to weigh
    return torch.where(similarity > 0, total / positives.clamp_min(1), total / negatives.clamp_min(1))


# ------------------------------------------------------------------------------------------- DDP
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


# -------------------------------------------------------------------------------------- code bank
class CodeBank(nn.Module):
    """The latest code and labels of every training sample, as registered buffers (checkpointed).

    :meth:`update` writes the *global* batch (gathered across ranks, detached), so under DDP every
    rank holds the same bank as a single process that saw all shards.

    Args:
        num_train: training-split size (rows are indexed by a sample's position in it).
        bits: code length.
        num_classes: label width.
    """

    codes: Tensor
    labels: Tensor
    seen: Tensor

    def __init__(self, num_train: int, bits: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("codes", torch.zeros(num_train, bits))
        self.register_buffer("labels", torch.zeros(num_train, num_classes))
        self.register_buffer("seen", torch.zeros(num_train, dtype=torch.bool))

    def update(self, codes: Tensor, labels: Tensor, indices: Tensor) -> None:
        """Store the codes ``(N, bits)`` and labels ``(N, C)`` at ``indices`` ``(N,)`` of every rank."""
        indices = gather_detached(indices.long()).to(self.seen.device)
        self.codes[indices] = gather_detached(codes).to(self.codes.dtype)
        self.labels[indices] = gather_detached(labels).to(self.labels.dtype)
        self.seen[indices] = True

    def contents(self) -> tuple[Tensor, Tensor]:
        """Codes ``(M, bits)`` and labels ``(M, C)`` of the M samples seen so far."""
        return self.codes[self.seen], self.labels[self.seen]


class PairwiseLoss(HashLoss):
    """Base of the losses on pairs: the batch against a :class:`CodeBank` of every training code, or
    against itself — the global batch under DDP when ``global_batch`` (see :func:`gather_with_grad`).

    :meth:`pairs` returns the rows (with gradient) and the columns to pair them with.

    Args:
        bank: pair the batch with the bank of the latest code of every training sample.
        global_batch: without a bank, pair across the whole DDP batch (identity on one process).
    """

    code_bank: CodeBank | None

    def __init__(self, bank: bool = False, global_batch: bool = True) -> None:
        super().__init__()
        self.bank = bank
        self.global_batch = global_batch
        self.code_bank = None

    def setup(self, context: TrainingContext) -> None:
        if self.bank and self.first_setup(context):
            self.code_bank = CodeBank(context.num_train, context.bits, context.num_classes)

    def pairs(self, h: Tensor, labels: Tensor, indices: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(rows, row_labels, columns, column_labels)``: ``(N, m), (N, C), (M, m), (M, C)``.

        With the bank, the rows are this rank's batch and the columns the bank after storing the
        global batch; otherwise rows and columns are both the (global) batch.
        """
        if self.bank:
            bank = require_setup(self, self.code_bank)
            bank.update(h, labels, indices)
            columns, column_labels = bank.contents()
            return h, labels, columns.to(h.dtype), column_labels
        rows, row_labels = global_batch(h, labels, self.global_batch)
        return rows, row_labels, rows, row_labels
