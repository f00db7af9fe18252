"""Shallow hashing baselines: hash heads fitted once on the backbone's training features, without gradient.

LSH, ITQ and spectral hashing are the floor every deep method should clear. Each is a drop-in
:class:`~hashbench.heads.HashHead` whose :meth:`FittedHead.fit` sets its buffers from the training
features ``(N, F)``; :class:`~hashbench.module.HashingModule` calls it when a fit starts and then trains
nothing. ``forward`` returns ``(u, u)``: codes are ``sign(u)`` (sign(0) = +1). The fitted values are
buffers, so checkpoints keep them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashbench.errors import UserError
from hashbench.heads import HashHead


def principal_directions(centred: Tensor, count: int) -> Tensor:
    """The ``count`` leading eigenvectors ``(F, count)`` of the covariance of ``centred`` ``(N, F)``,
    by decreasing eigenvalue."""
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    return vectors.flip(1)[:, :count]


def itq_rotation(
    projected: Tensor, iterations: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """ITQ's alternating minimisation of ‖B − V R‖²_F over codes B ∈ {−1, +1} and orthogonal R.

    Starts from a random orthogonal R (the left singular vectors of a Gaussian matrix), then per iteration
    B = sign(V R), then R = W Uᵀ from the SVD ``Bᵀ V = U Σ Wᵀ`` (the orthogonal Procrustes solution;
    Gong & Lazebnik, 2011). Each update lowers (or keeps) the loss.

    Args:
        projected: V, the centred PCA-projected features ``(N, m)``.
        iterations: number of (B, R) updates.
        generator: draws the initial rotation; ``None`` uses torch's global generator.

    Returns:
        R ``(m, m)`` and the quantization loss ‖B − V R‖²_F after each iteration ``(iterations,)``.
    """
    m = projected.shape[1]
    gaussian = torch.randn(m, m, generator=generator, dtype=torch.float64).to(projected)
    rotation = torch.linalg.svd(gaussian)[0]
    losses = []
    for _ in range(iterations):
        codes = torch.where(projected @ rotation >= 0, 1.0, -1.0).to(projected)
        left, _, right_t = torch.linalg.svd(codes.T @ projected)
        rotation = right_t.T @ left.T
        losses.append(torch.linalg.matrix_norm(codes - projected @ rotation) ** 2)
    return rotation, torch.stack(losses)


def spectral_modes(lower: Tensor, upper: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """Spectral hashing's one-dimensional eigenfunctions of a uniform distribution on the box
    ``[lower, upper]`` (Weiss, Torralba & Fergus, 2008): per bit, the dimension d and the mode k ≥ 1 of
    ``sin(π/2 + kπ (x_d − a_d)/(b_d − a_d))``, the ``bits`` with the smallest eigenvalues, i.e. the smallest
    ``k/(b_d − a_d)`` (ties: lower dimension first, then lower k; the authors' enumeration order).

    Returns:
        dimension ``(bits,)`` long and k ``(bits,)`` long.
    """
    ranges = upper - lower
    max_mode = torch.ceil((bits + 1) * ranges / ranges.max()).long().tolist()
    device = ranges.device
    dimension = torch.cat([torch.full((top - 1,), d, device=device) for d, top in enumerate(max_mode)])
    mode = torch.cat([torch.arange(1, top, device=device) for top in max_mode])
    frequency = mode.to(ranges) / ranges[dimension]
    order = torch.sort(frequency, stable=True).indices[:bits]
    return dimension[order], mode[order]


class FittedHead(HashHead):
    """A hash head fitted from the training features instead of trained: ``fit`` then ``forward``.

    Args:
        bits: code length m (>= 1).
        seed: seed of the head's random draws; ``None`` draws from torch's global generator (so
            ``seed_everything`` sets it).
    """

    fitted: Tensor  # bool scalar
    mean: Tensor  # (F,) the training features' mean

    def __init__(self, bits: int = 64, seed: int | None = None) -> None:
        super().__init__(bits=bits, activation="identity")
        self.seed = seed
        self.register_buffer("fitted", torch.tensor(False))
        self.register_buffer("mean", torch.zeros(0))

    def build(self, in_features: int) -> None:
        """Allocate the buffers for ``in_features`` (so a checkpoint loads into them)."""
        self.mean = torch.zeros(in_features)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def _generator(self) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def _check(self, features: Tensor) -> None:
        if features.ndim != 2 or features.shape[1] != len(self.mean):
            raise ValueError(
                f"{type(self).__name__}: expected features (N, {len(self.mean)}), got {tuple(features.shape)}"
            )
        if len(features) < 2:
            raise UserError(
                f"{type(self).__name__}: fitting needs at least 2 training images, got {len(features)}"
            )

    def fit(self, features: Tensor) -> None:
        """Set the buffers from the training features ``(N, F)`` (no gradient)."""
        self._check(features)
        with torch.no_grad():
            self._fit(features.double())
        self.fitted.fill_(True)

    def _fit(self, features: Tensor) -> None:
        raise NotImplementedError

    def _codes(self, centred: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        if not self.is_fitted:
            raise UserError(
                f"{type(self).__name__} is not fitted: run `hashbench fit` (it fits the head on the training "
                "features), or pass --ckpt_path with a fitted checkpoint"
            )
        u = self._codes(features - self.mean)
        return u, u


def _needs_dimensions(name: str, bits: int, in_features: int) -> None:
    if bits > in_features:
        raise UserError(
            f"{name} projects onto the {bits} leading principal directions, but the backbone has only "
            f"{in_features} features: use at most {in_features} bits (model.head.init_args.bits) or a "
            "backbone with more features"
        )


class LSHHead(FittedHead):
    """Locality-sensitive hashing by random hyperplanes (Charikar's SimHash, STOC 2002): ``u = (x − μ) W``
    with W ``(F, bits)`` standard Gaussian and μ the training mean; sign(u) preserves angles around μ.
    Any number of bits."""

    projection: Tensor  # (F, bits)

    def build(self, in_features: int) -> None:
        super().build(in_features)
        self.register_buffer("projection", torch.zeros(in_features, self.bits))

    def _fit(self, features: Tensor) -> None:
        self.mean.copy_(features.mean(0))
        self.projection.copy_(torch.randn(self.projection.shape, generator=self._generator()))

    def _codes(self, centred: Tensor) -> Tensor:
        return centred @ self.projection


class ITQHead(FittedHead):
    """Iterative quantization (Gong & Lazebnik, CVPR 2011 / TPAMI 2013): PCA of the centred features to
    ``bits`` dimensions, then the rotation R that minimises the quantization loss (:func:`itq_rotation`);
    ``u = (x − μ) P R``. Needs bits ≤ F.

    Args:
        iterations: (B, R) updates (50, as the paper).
    """

    projection: Tensor  # (F, bits): the PCA directions times the rotation

    def __init__(self, bits: int = 64, seed: int | None = None, iterations: int = 50) -> None:
        super().__init__(bits=bits, seed=seed)
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.iterations = iterations

    def build(self, in_features: int) -> None:
        _needs_dimensions("ITQ", self.bits, in_features)
        super().build(in_features)
        self.register_buffer("projection", torch.zeros(in_features, self.bits))

    def _fit(self, features: Tensor) -> None:
        mean = features.mean(0)
        centred = features - mean
        directions = principal_directions(centred, self.bits)
        rotation, _ = itq_rotation(centred @ directions, self.iterations, self._generator())
        self.mean.copy_(mean)
        self.projection.copy_(directions @ rotation)

    def _codes(self, centred: Tensor) -> Tensor:
        return centred @ self.projection


class SpectralHead(FittedHead):
    """Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008): PCA to min(bits, F) dimensions, the box
    ``[a, b]`` of the projected training features, and per bit one eigenfunction
    ``u = sin(π/2 + kπ (x_d − a_d)/(b_d − a_d))`` chosen by :func:`spectral_modes`. No random draws."""

    projection: Tensor  # (F, c), c = min(bits, F) PCA directions
    lower: Tensor  # (c,) the box's lower corner a
    dimension: Tensor  # (bits,) long: the PCA dimension d of each bit
    frequency: Tensor  # (bits,) kπ/(b_d − a_d) of each bit

    def build(self, in_features: int) -> None:
        super().build(in_features)
        components = min(self.bits, in_features)
        self.register_buffer("projection", torch.zeros(in_features, components))
        self.register_buffer("lower", torch.zeros(components))
        self.register_buffer("dimension", torch.zeros(self.bits, dtype=torch.long))
        self.register_buffer("frequency", torch.zeros(self.bits))

    def _fit(self, features: Tensor) -> None:
        mean = features.mean(0)
        directions = principal_directions(features - mean, self.projection.shape[1])
        projected = (features - mean) @ directions
        eps = torch.finfo(projected.dtype).eps  # the authors' margin: the box holds every point strictly
        lower, upper = projected.min(0).values - eps, projected.max(0).values + eps
        dimension, mode = spectral_modes(lower, upper, self.bits)
        self.mean.copy_(mean)
        self.projection.copy_(directions)
        self.lower.copy_(lower)
        self.dimension.copy_(dimension)
        self.frequency.copy_(mode * math.pi / (upper - lower)[dimension])

    def _codes(self, centred: Tensor) -> Tensor:
        projected = centred @ self.projection
        return torch.sin(
            math.pi / 2 + self.frequency * (projected[:, self.dimension] - self.lower[self.dimension])
        )
