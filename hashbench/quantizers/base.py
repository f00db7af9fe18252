"""The quantizer contract and the helpers every quantizer shares."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hashbench.precision import compute_dtype, no_autocast

__all__ = ["Quantizer", "sample_target"]


class Quantizer(nn.Module):
    """Base class: forward(h: Tensor (N, m) float) -> 0-d tensor; a quantization regularizer on a batch.

    ``h`` is a batch of N continuous codes with m bits. The returned scalar is the *unweighted*
    regularizer: the training module multiplies it by ``quantization_weight`` (λ). Which tensor a
    quantizer sees (raw head output ``u`` or activated ``h``) is chosen by the module; each class
    documents what its original method applies it to.

    Subclasses implement :meth:`loss` on an already validated input that is cast to the compute
    dtype (float32, or float64 when the input is float64) with autocast disabled, so the result is
    finite under bf16/fp16 autocast. The value is returned in that compute dtype on the input's device.
    Subclasses that override :meth:`forward` directly should call :meth:`check_input` themselves.
    """

    #: smallest batch size for which the value is defined (subclasses raise ValueError below it)
    min_batch: int = 1
    #: smallest number of bits for which the value is defined
    min_bits: int = 1

    def check_input(self, h: Tensor) -> None:
        """Raise ValueError/TypeError with the reason when ``h`` is not a usable (N, m) float batch."""
        name = type(self).__name__
        if not isinstance(h, Tensor):
            raise TypeError(f"{name} expects a torch.Tensor of shape (N, m), got {type(h).__name__}")
        if h.dim() != 2:
            raise ValueError(f"{name} expects a 2-D batch of codes (N, m), got shape {tuple(h.shape)}")
        if not h.is_floating_point():
            raise TypeError(f"{name} expects floating-point codes, got dtype {h.dtype}")
        n, m = h.shape
        if n < max(self.min_batch, 1):
            raise ValueError(f"{name} needs a batch of at least {max(self.min_batch, 1)} codes, got N={n}")
        if m < max(self.min_bits, 1):
            raise ValueError(f"{name} needs at least {max(self.min_bits, 1)} bits, got m={m}")

    def forward(self, h: Tensor) -> Tensor:
        """Return the regularizer (0-d tensor, compute dtype, input's device) for codes ``h`` (N, m)."""
        self.check_input(h)
        with no_autocast(h.device):
            return self.loss(h.to(compute_dtype(h.dtype)))

    def loss(self, x: Tensor) -> Tensor:
        """The regularizer on a validated (N, m) float32/float64 tensor (autocast off)."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss(x) or forward(h)")


def sample_target(shape: tuple[int, ...] | torch.Size, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Draw a target of i.i.d. ±1 entries, each with probability ½, from torch's global RNG on ``device``.

    Uses the default generator of ``device`` (so ``seed_everything`` makes runs reproducible).
    """
    bits = torch.randint(0, 2, tuple(shape), device=device)
    return (2 * bits - 1).to(dtype)
