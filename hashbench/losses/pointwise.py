"""Helpers of the losses that classify codes: straight-through sign and (multi-label) cross-entropy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.quantizers import sign_pm1


class _SignStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return sign_pm1(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def sign_straight_through(x: Tensor) -> Tensor:
    """``sign(x)`` (sign(0) = +1) forward, identity gradient backward (GreedyHash's hash layer)."""
    return _SignStraightThrough.apply(x)


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
