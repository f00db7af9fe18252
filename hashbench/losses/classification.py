"""Losses that train codes through a linear classifier: GreedyHash and the CE baseline."""

from __future__ import annotations

from torch import Tensor, nn

from hashbench.codes import sign_straight_through
from hashbench.losses.base import HashLoss, TrainingContext, full_precision, require_setup
from hashbench.losses.cross_entropy import classification_loss
from hashbench.quantizers import Cubic


class _ClassifierLoss(HashLoss):
    """Owns a linear classifier ``bits → C``, created in :meth:`allocate` (it needs C; the optimizer,
    built after setup, trains it with the head's learning rate)."""

    classifier: nn.Linear | None

    def __init__(self, classifier_bias: bool) -> None:
        super().__init__()
        self.classifier_bias = classifier_bias
        self.classifier = None
        self.multi_label = False

    def allocate(self, context: TrainingContext) -> None:
        self.classifier = nn.Linear(context.bits, context.num_classes, bias=self.classifier_bias)
        self.multi_label = context.multi_label

    def classify(self, codes: Tensor, labels: Tensor) -> Tensor:
        logits = require_setup(self, self.classifier)(codes)
        return classification_loss(logits, labels, self.multi_label)


class GreedyHash(_ClassifierLoss):
    """Cross-entropy of a linear classifier (no bias) on ``b = sign(u)``, with the straight-through
    gradient (the switch ``straight_through``; off, the classifier sees the head's h). The sign is
    applied here to the raw output u: use head ``activation: identity``.

    Terms: ``similarity`` (softmax CE; sigmoid CE per class on multi-label data) and
    ``quantization`` = :class:`Cubic` on u, ``mean(||u| − 1|³)`` (α = 0.1 goes in
    ``quantization_weight``). The original trains with SGD, lr 1e-3, momentum 0.9, weight decay 5e-4.

    Args:
        straight_through: classify sign(u) with the straight-through gradient (GreedyHash); off, h.
    """

    def __init__(self, straight_through: bool = True) -> None:
        super().__init__(classifier_bias=False)
        self.straight_through = straight_through
        self.original_quantization = Cubic()

    def codes(self, u: Tensor, h: Tensor) -> Tensor:
        """``u`` (GreedyHash binarises the raw output); ``h`` with ``straight_through`` off."""
        return u if self.straight_through else h

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes = sign_straight_through(u) if self.straight_through else h
        return {"similarity": self.classify(codes, labels), "quantization": self.original_quantization(u)}


class CE(_ClassifierLoss):
    """The CE baseline of the OrthoHash table: a linear classifier (with bias) on the head's h,
    softmax cross-entropy (sigmoid cross-entropy per class on multi-label data). No quantization
    term. "CE+BN": head ``batch_norm: true``; "CE+Bihalf": head ``activation: bihalf``.

    Args:
        bias: bias in the classifier.
    """

    def __init__(self, bias: bool = True) -> None:
        super().__init__(classifier_bias=bias)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        return {"similarity": self.classify(h, labels)}
