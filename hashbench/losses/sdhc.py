"""SDH-C: the classification form of SDH (Liong et al., CVPR 2015) benchmarked by OrthoHash and FIRe."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.classification import _ClassifierLoss
from hashbench.quantizers import SignL2


class SDHC(_ClassifierLoss):
    """``α·CE(W h + c, y) − λ₁·½·mean_i ‖h_i‖²`` on the tanh codes h, plus SDH's quantization term.

    SDH ("Deep Hashing for Compact Binary Codes Learning", Liong et al., CVPR 2015) trains its codes
    with J₁ = ½‖B − H‖² (quantization), −λ₁·J₂, J₂ = (1/2N) tr(HᵀH) (bit variance, to be maximised),
    λ₂·J₃ = ½‖WWᵀ − I‖² on the hash layer's weights (independent bits) and a pairwise discriminative
    term. SDH-C, the row of the OrthoHash benchmark (Hoe et al., NeurIPS 2021) and CISiPLab's FIRe,
    replaces the pairwise term by a linear classifier's cross-entropy (sigmoid CE per class on
    multi-label data). Head ``activation: tanh`` (FIRe's ``hash_fc_output: tanh``), which keeps the
    variance term bounded.

    Not here: J₃ needs the head's weights, which a loss does not see (FIRe weights it 0.001 and
    compares WWᵀ with a matrix of ones). FIRe's variance term sums over the batch and divides by m:
    it is N/m times the paper's J₂ used here (weight λ₁·N/m to match FIRe).

    Terms: ``similarity`` (α·CE), ``variance`` (−λ₁·J₂) and ``quantization`` = :class:`SignL2` on h,
    ``mean((h − sign h)²)`` (λ₀ = 0.001 goes in ``quantization_weight``).

    Args:
        alpha: α, weight of the classification term (1).
        variance_weight: λ₁, weight of the bit-variance term (0.001, FIRe).
    """

    def __init__(self, alpha: float = 1.0, variance_weight: float = 0.001) -> None:
        super().__init__(classifier_bias=True)
        if alpha < 0 or variance_weight < 0:
            raise ValueError(
                f"SDHC needs alpha >= 0 and variance_weight >= 0, got {alpha}, {variance_weight}"
            )
        self.alpha = alpha
        self.variance_weight = variance_weight
        self.original_quantization = SignL2()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        variance = 0.5 * h.pow(2).sum(dim=1).mean()
        return {
            "similarity": self.alpha * self.classify(h, labels),
            "variance": -self.variance_weight * variance,
            "quantization": self.original_quantization(h),
        }
