"""The similarity-loss contract every hashing method implements."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from torch import Tensor, nn

from hashbench.precision import compute_dtype, no_autocast

T = TypeVar("T")
L = TypeVar("L", bound="HashLoss")
Terms = dict[str, Tensor]


@dataclass(frozen=True)
class TrainingContext:
    """What a loss may size its dataset-level state from (known only after the data is set up)."""

    bits: int
    num_classes: int
    num_train: int
    multi_label: bool


class HashLoss(nn.Module):
    """A similarity loss that returns its terms by name.

    ``forward(u, h, labels, indices)`` takes

    * ``u``: raw head output (pre-activation), float ``(N, bits)``;
    * ``h``: the head's activated output, float ``(N, bits)``;
    * ``labels``: multi-hot float ``(N, C)`` (one-hot for single-label data);
    * ``indices``: long ``(N,)``, each sample's position in the training split;

    and returns a dict of 0-d tensors. ``"similarity"`` is required. ``"quantization"``,
    when present, is the method's own quantization term *without* its weight: the module
    multiplies it by ``quantization_weight`` when ``quantizer: original`` and drops it when
    a plug-in quantizer or none is chosen. Every other term is added to the objective as it is.

    Losses with dataset-level state (code banks, centres, DSDH's B and W) allocate it as
    registered buffers in :meth:`allocate`, so it is checkpointed and follows the device.
    :meth:`setup` may be called again (fit, then test): it allocates only for a new context.
    Losses decorate ``forward`` with :func:`full_precision` to stay exact under mixed precision.
    """

    #: the context of the last :meth:`setup` that allocated state (``None`` before)
    context: TrainingContext | None = None

    def setup(self, context: TrainingContext) -> None:
        """Record ``context`` and :meth:`allocate` for it, unless state for this very context exists."""
        if self.context == context:
            return
        self.context = context
        self.allocate(context)

    def allocate(self, context: TrainingContext) -> None:
        """Allocate state once bits, classes and training-set size are known (called before fit/test)."""

    def on_train_epoch_start(self, epoch: int) -> None:
        """Per-epoch schedules and discrete steps (``epoch`` counts from 0)."""

    def codes(self, u: Tensor, h: Tensor) -> Tensor:
        """The continuous codes ``(N, bits)`` this method binarises, from the head's ``u`` and ``h``.

        Evaluation takes their sign for retrieval and measures the quantization error and bit
        balance on them. Default: the head's ``h``; a loss that binarises something else
        (GreedyHash's u, HashNet's tanh(βu), DBDH's clamped u) overrides it.
        """
        return h


def require_setup(loss: HashLoss, state: T | None) -> T:
    """``state`` when it was allocated, else a RuntimeError saying ``setup`` was not called."""
    if state is None:
        raise RuntimeError(f"{type(loss).__name__}.setup(context) must be called before forward")
    return state


def full_precision(
    forward: Callable[[L, Tensor, Tensor, Tensor, Tensor], Terms],
) -> Callable[[L, Tensor, Tensor, Tensor, Tensor], Terms]:
    """Decorate a loss's ``forward``: autocast off, ``u`` and ``h`` in float32 (float64 stays), so
    sums over many pairs stay exact under bf16/fp16 mixed precision (gradients flow through the cast)."""

    @functools.wraps(forward)
    def wrapper(self: L, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> Terms:
        dtype = compute_dtype(u.dtype)
        with no_autocast(u.device):
            return forward(self, u.to(dtype), h.to(dtype), labels, indices)

    return wrapper
