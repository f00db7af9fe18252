"""DHD (Jang et al., ECCV 2022): Deep Hash Distillation's hash-proxy loss and BCE quantization."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.cross_entropy import soft_target_cross_entropy
from hashbench.losses.proxies import ProxyLoss
from hashbench.quantizers.original_extra import GaussianBCE


class DHD(ProxyLoss):
    """Hash-proxy loss: softmax cross-entropy of ``cos(h, p_c)/τ`` against ``y/Σy`` (one-hot: the ordinary
    CE; multi-label: the normalised label vector), p ``(C, m)`` learnable proxies.

    The proxies start ``xavier_uniform_`` with tanh's gain (from ``seed``) and train with the head's
    learning rate (as in the authors' code, where they belong to the hash layer). The authors' head
    is Linear (no bias) + LayerNorm + tanh; hashbench's head has no LayerNorm, so the overlay uses
    Linear (no bias) + tanh. DHD's self-distillation term (λ₁ = 0.1, ``1 − cos`` between the codes of
    a weakly and a strongly augmented view) needs two views of each image, which the one-view
    training step does not provide: it is not implemented, so this is DHD without distillation.

    Terms: ``similarity`` and ``quantization`` = :class:`~hashbench.quantizers.original_extra.GaussianBCE`
    on h (σ = 0.5; λ = λ₂ = 0.1 goes in ``quantization_weight``).

    Args:
        temperature: τ (0.2).
        sigma: σ of the quantization term (0.5).
        seed: seed of the proxies' initialisation.
    """

    def __init__(self, temperature: float = 0.2, sigma: float = 0.5, seed: int = 0) -> None:
        super().__init__(init="xavier_tanh", seed=seed)
        if not temperature > 0:
            raise ValueError(f"DHD needs temperature > 0, got {temperature}")
        self.temperature = temperature
        self.original_quantization = GaussianBCE(sigma)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        logits = self.proxy_cosines(h) / self.temperature
        return {
            "similarity": soft_target_cross_entropy(logits, labels),
            "quantization": self.original_quantization(h),
        }
