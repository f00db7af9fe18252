"""Cross-entropies of the losses that classify codes (GreedyHash, CE, OrthoHash), multi-label aware."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def classification_loss(logits: Tensor, labels: Tensor, multi_label: bool) -> Tensor:
    """Cross-entropy of ``logits`` ``(N, C)`` against multi-hot ``labels`` ``(N, C)``; 0-d, mean over samples.

    Single-label data: softmax cross-entropy. Multi-label: sigmoid (binary) cross-entropy per class,
    the usual classification loss on NUS-WIDE and COCO — never an argmax to one label.
    """
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.to(logits.dtype))


def soft_target_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Softmax cross-entropy against soft targets ``y/Σy`` (OrthoHash's multi-label loss); one-hot rows give
    the ordinary cross-entropy. ``logits``, ``labels`` ``(N, C)``; rows without a label contribute 0.
    """
    targets = labels.to(logits.dtype)
    targets = targets / targets.sum(dim=1, keepdim=True).clamp_min(1)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
