"""Building blocks of the pairwise losses: similarities, the likelihood, a code bank."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.distributed import gather_detached, global_batch
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
    against itself — the global batch under DDP when ``global_batch`` (see
    :func:`~hashbench.distributed.gather_with_grad`).

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

    def allocate(self, context: TrainingContext) -> None:
        if self.bank:
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

    def likelihood(
        self, codes: Tensor, labels: Tensor, indices: Tensor, scale: float = 0.5
    ) -> tuple[Tensor, Tensor]:
        """The DPSH likelihood of every pair of :meth:`pairs` (DPSH, DBDH, DSDH; HashNet weighs it).

        ``Θ_ij = scale · codes_i·codes_j`` and :func:`pairwise_likelihood`; returns the per-pair
        negative log-likelihood and the similarities, both ``(N, M)``.
        """
        rows, row_labels, columns, column_labels = self.pairs(codes, labels, indices)
        theta = scale * rows @ columns.T
        s = similarity_matrix(row_labels, column_labels).to(theta.dtype)
        return pairwise_likelihood(theta, s), s
