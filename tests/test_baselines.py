"""Shallow baselines (LSH, ITQ, spectral hashing): hand-checked fits on tiny inputs, and a CLI fit each."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from conftest import EXPERIMENTS

from hashbench.baselines import ITQHead, LSHHead, SpectralHead, itq_rotation, spectral_modes
from hashbench.cli import main
from hashbench.codes import sign_pm1
from hashbench.errors import UserError
from hashbench.tracking.describe import describe_run


def fitted(
    head: LSHHead | ITQHead | SpectralHead, features: torch.Tensor
) -> LSHHead | ITQHead | SpectralHead:
    head.build(features.shape[1])
    head.fit(features)
    return head


def test_lsh_projects_the_centred_features_on_seeded_gaussians() -> None:
    # 8 rows of integers: the mean (multiples of 1/8) is exact in float
    features = torch.randint(-4, 5, (8, 5), generator=torch.Generator().manual_seed(1)).float()
    head = fitted(LSHHead(bits=7, seed=3), features)
    projection = torch.randn(5, 7, generator=torch.Generator().manual_seed(3))
    u, h = head(features)
    torch.testing.assert_close(u, (features - features.mean(0)) @ projection)
    assert h is u
    torch.testing.assert_close(fitted(LSHHead(bits=7, seed=3), features).projection, head.projection)
    assert not torch.equal(fitted(LSHHead(bits=7, seed=4), features).projection, head.projection)
    # the training mean lies on every hyperplane: u = 0, and its code is all +1 (sign(0) = +1)
    assert torch.equal(sign_pm1(head(features.mean(0, keepdim=True))[1]), torch.ones(1, 7))


def test_itq_rotation_is_orthogonal_and_lowers_the_quantization_loss() -> None:
    projected = torch.randn(60, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rotation, losses = itq_rotation(projected, 20, torch.Generator().manual_seed(0))
    torch.testing.assert_close(rotation.T @ rotation, torch.eye(6, dtype=torch.float64))
    assert bool((losses[1:] <= losses[:-1] + 1e-9).all())
    codes = sign_pm1(projected @ rotation)
    torch.testing.assert_close(losses[-1], torch.linalg.matrix_norm(codes - projected @ rotation) ** 2)


def test_itq_aligns_rotated_hypercube_vertices_with_their_codes() -> None:
    vertices = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    angle = math.radians(20)
    turn = torch.tensor(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64
    )
    _, losses = itq_rotation(vertices @ turn, 10, torch.Generator().manual_seed(0))
    assert float(losses[-1]) < 1e-12  # V R lands exactly on the vertices {−1, +1}²


def test_spectral_modes_on_a_two_by_one_box() -> None:
    # box [0, 2] × [0, 1]: frequencies k/(b − a) are 0.5, 1, 1.5 along d0 and 1 along d1; the tie at 1
    # goes to the lower dimension
    dimension, mode = spectral_modes(torch.zeros(2), torch.tensor([2.0, 1.0]), bits=3)
    assert dimension.tolist() == [0, 0, 1]
    assert mode.tolist() == [1, 2, 1]


def test_spectral_codes_on_a_line() -> None:
    features = torch.tensor([[0.0], [0.9], [1.5], [2.5], [3.1], [4.0]])
    codes = sign_pm1(fitted(SpectralHead(bits=2), features)(features)[1])
    # t = position in the box [0, 4]: bit 1 = sign cos(πt) halves the line, bit 2 = sign cos(2πt) keeps the
    # quarters at both ends (PCA may mirror the line: bit 1 then flips, bit 2 is symmetric)
    halves = torch.tensor([1.0, 1, 1, -1, -1, -1])
    assert torch.equal(codes[:, 0], halves) or torch.equal(codes[:, 0], -halves)
    assert torch.equal(codes[:, 1], torch.tensor([1.0, 1, -1, -1, 1, 1]))


def test_fitted_buffers_travel_in_the_state_dict() -> None:
    features = torch.randn(30, 8, generator=torch.Generator().manual_seed(2))
    head = fitted(ITQHead(bits=4, seed=0), features)
    restored = ITQHead(bits=4)
    restored.build(8)
    restored.load_state_dict(head.state_dict())
    assert restored.is_fitted
    torch.testing.assert_close(restored(features)[0], head(features)[0])


def test_itq_needs_bits_at_most_features_and_a_fit() -> None:
    with pytest.raises(UserError, match="at most 4 bits"):
        ITQHead(bits=8).build(4)
    head = LSHHead(bits=8)
    head.build(4)
    with pytest.raises(UserError, match="not fitted"):
        head(torch.zeros(1, 4))


# validation mAP@all of the seed-0 runs of experiments/tables/baselines.yaml (the demo's seed_everything 0)
MEASURED = {"lsh": 0.5526, "itq": 0.6603, "sh": 0.4124}
MARGIN = 0.05


@pytest.mark.parametrize("name", list(MEASURED))
def test_baseline_fits_through_the_cli(name: str, tmp_path: Path) -> None:
    args = [
        "fit",
        "--config", str(EXPERIMENTS / "demo.yaml"),
        "--config", str(EXPERIMENTS / "digits" / f"{name}.yaml"),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false",
        "--trainer.callbacks", "null",
        "--trainer.enable_checkpointing", "false",
        "--trainer.limit_train_batches", "2",
    ]  # fmt: skip
    output = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(output):
        warnings.simplefilter("always")
        main(args)
    assert not [w for w in caught if "UNTRAINED" in str(w.message)]
    assert "final metrics" in output.getvalue()
    (run_dir,) = (p for p in tmp_path.glob("*/*") if p.is_dir())
    mean_ap = json.loads((run_dir / "metrics.json").read_text())["val/mAP@all"]
    assert mean_ap == pytest.approx(MEASURED[name], abs=MARGIN)


def test_a_baseline_run_is_named_by_its_head() -> None:
    model = {
        "head": {"class_path": "hashbench.baselines.ITQHead", "init_args": {"bits": 32}},
        "loss": {"class_path": "hashbench.losses.DPSH"},
    }
    assert describe_run({"model": model})["method"] == "ITQHead"
    assert describe_run({"model": {**model, "head": {"bits": 32}}})["method"] == "DPSH"
