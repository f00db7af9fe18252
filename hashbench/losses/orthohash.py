"""OrthoHash (Hoe et al., NeurIPS 2021): cross-entropy on cosine similarities to fixed class codewords."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import HashLoss, TrainingContext, full_precision, require_setup
from hashbench.losses.centers import hash_centers
from hashbench.losses.cross_entropy import soft_target_cross_entropy
from hashbench.quantizers import CosineToSign


class OrthoHash(HashLoss):
    """Logits ``z_c = s·(cos(h, o_c) − margin·y_c)`` (OrthoCos) or ``s·cos(θ_c + margin·y_c)``, ``θ_c =
    arccos cos(h, o_c)`` (OrthoArc, cos clamped to ±0.99999), then softmax cross-entropy against
    ``y/Σy`` (one-hot: the ordinary CE; multi-label: the paper's soft targets, margin on every label).

    Codebook ``o`` (C, m) of ±1: ``bernoulli`` (i.i.d. ½, the paper's default) or ``hadamard`` (rows of
    ``[H; −H]``, falling back to well-separated random balanced rows when m is not a power of 2 or
    C > 2m); a buffer built from ``seed``. The paper's head is a Linear layer without bias plus
    BatchNorm, identity activation (``batch_norm: true, bias: false, activation: identity``).

    Terms: ``similarity`` and ``quantization`` = :class:`CosineToSign` on h, ``mean(1 − cos(h, sign h))``,
    which OrthoHash leaves off by default: its ``quantization_weight`` is 0 unless chosen.

    Args:
        margin_type: ``cos`` (OrthoCos) or ``arc`` (OrthoArc).
        scale: s, a number, or ``"sqrt_bits"`` for s = √m. Default 8 at every code length: the
            authors' code (``--scale 8``, whose defaults their README says reproduce the paper) and
            CISiPLab's FIRe both use it; √m equals it only at m = 64.
        margin: the margin m_c on the true classes (0.2).
        codebook: ``bernoulli`` or ``hadamard``.
        seed: seed of the codebook.
    """

    codebook: Tensor

    def __init__(
        self,
        margin_type: Literal["cos", "arc"] = "cos",
        scale: float | Literal["sqrt_bits"] = 8.0,
        margin: float = 0.2,
        codebook: Literal["bernoulli", "hadamard"] = "bernoulli",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if scale != "sqrt_bits" and not (isinstance(scale, int | float) and scale > 0):
            raise ValueError(f"OrthoHash scale must be a number > 0 or 'sqrt_bits', got {scale!r}")
        self.margin_type = margin_type
        self.scale = scale
        self.margin = margin
        self.codebook_method = codebook
        self.seed = seed
        self.original_quantization = CosineToSign()

    def allocate(self, context: TrainingContext) -> None:
        codes = hash_centers(context.num_classes, context.bits, self.codebook_method, self.seed)
        self.register_buffer("codebook", codes)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codebook = require_setup(self, getattr(self, "codebook", None))
        cos = F.normalize(h, dim=1) @ F.normalize(codebook.to(h.dtype), dim=1).T
        y = labels.to(cos.dtype)
        scale = math.sqrt(h.shape[1]) if self.scale == "sqrt_bits" else float(self.scale)
        if self.margin_type == "cos":
            logits = scale * (cos - self.margin * y)
        else:
            logits = scale * torch.cos(torch.acos(cos.clamp(-0.99999, 0.99999)) + self.margin * y)
        return {
            "similarity": soft_target_cross_entropy(logits, y),
            "quantization": self.original_quantization(h),
        }
