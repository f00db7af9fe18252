"""Second-round methods (losses-c): hand-computed values on tiny inputs, and one short fit each on digits."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import EXPERIMENTS

from hashbench.cli import main
from hashbench.losses import DHD, HyP2, TrainingContext
from hashbench.losses.hyp2 import code_distance_bound, hyp2_threshold
from hashbench.quantizers import GaussianBCE

R2 = math.sqrt(0.5)  # cos 45°


def ctx(bits: int = 2, classes: int = 2, multi: bool = False) -> TrainingContext:
    return TrainingContext(bits=bits, num_classes=classes, num_train=4, multi_label=multi)


def with_proxies(loss: HyP2 | DHD, proxies: list[list[float]]) -> HyP2 | DHD:
    loss.setup(ctx(len(proxies[0]), len(proxies)))
    assert loss.proxies is not None
    with torch.no_grad():
        loss.proxies.copy_(torch.tensor(proxies))
    return loss


def terms(loss: HyP2 | DHD, codes: list[list[float]], labels: list[list[float]]) -> dict[str, torch.Tensor]:
    u = torch.tensor(codes, dtype=torch.float64)
    return loss(u, u, torch.tensor(labels, dtype=torch.float64), torch.arange(len(codes)))


# ------------------------------------------------------------------------------------------ HyP²
def test_hyp2_threshold_from_the_griesmer_bound() -> None:
    # [7, 4]: 3 + ⌈3/2⌉ + ⌈3/4⌉ + ⌈3/8⌉ = 7 ≤ 7, d = 4 gives 8 (the Hamming code, d = 3)
    assert code_distance_bound(7, 4) == 3
    # 32 bits, 10 classes → k = 4: 16 + 8 + 4 + 2 = 30 ≤ 32, 17 + 9 + 5 + 3 = 34 > 32 → d = 16, δ = 0
    assert code_distance_bound(32, 4) == 16
    assert hyp2_threshold(32, 10) == 0.0
    assert hyp2_threshold(8, 2) == -1.0  # k = 1: the two codewords can be opposite


def test_hyp2_proxy_and_pair_terms() -> None:
    loss = with_proxies(HyP2(beta=0.5, threshold=0.5, pair_samples="all"), [[1, 0], [0, 1]])
    out = terms(loss, [[1, 0], [1, 1]], [[1, 0], [0, 1]])
    # positives: 1 − cos = 0 and 1 − 1/√2; negatives: relu(0 − ½) = 0 and relu(1/√2 − ½)
    assert out["similarity"].item() == pytest.approx((1 - R2) / 2 + (R2 - 0.5) / 2)
    # the one label-disjoint pair, both orders: β·relu(1/√2 − ½)
    assert out["pair"].item() == pytest.approx(0.5 * (R2 - 0.5))


def test_hyp2_pairs_only_multi_label_samples_by_default() -> None:
    codes = [[1, 0], [1, 1], [0, 1]]
    labels = [[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0]]  # the third sample has one label
    proxies = [[1, 0], [0, 1], [1, 1], [1, -1]]
    multi = terms(with_proxies(HyP2(beta=1.0, threshold=0.0), proxies), codes, labels)
    every = terms(with_proxies(HyP2(beta=1.0, threshold=0.0, pair_samples="all"), proxies), codes, labels)
    assert multi["pair"].item() == pytest.approx(R2)  # (1, 2) and (2, 1): cos 1/√2
    assert every["pair"].item() == pytest.approx((2 * R2 + 2 * 0.0) / 4)  # also (1, 3), (3, 1): cos 0


def test_hyp2_trains_its_proxies() -> None:
    loss = HyP2(threshold=0.0)
    loss.setup(ctx(4, 3))
    u = torch.randn(5, 4, requires_grad=True)
    labels = torch.eye(3)[[0, 1, 2, 0, 1]]
    sum(loss(u, u, labels, torch.arange(5)).values()).backward()
    assert loss.proxies is not None and loss.proxies.grad is not None
    assert loss.proxies.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------- DHD
def test_gaussian_bce_by_hand() -> None:
    # σ = ½ → 2σ² = ½. h = 1: near 0, far −log(1 − e^{−4/½}); h = −½: near (½)²/½, far −log(1 − e^{−(3/2)²/½})
    h = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    far = -math.log(1 - math.exp(-8)) - math.log(1 - math.exp(-4.5))
    assert GaussianBCE(0.5)(h).item() == pytest.approx(0.25 / 2 * 2 + far / 2)
    zero = torch.zeros(1, 1, dtype=torch.float64)  # sign(0) = +1: near (0 − 1)²/½ = 2, far −log(1 − e^{−2})
    assert GaussianBCE(0.5)(zero).item() == pytest.approx(2 - math.log(1 - math.exp(-2)))


def test_dhd_proxy_cross_entropy() -> None:
    loss = with_proxies(DHD(temperature=0.5), [[1, 0], [0, 1]])
    out = terms(loss, [[1, 0], [1, 1]], [[1, 0], [1, 1]])
    # sample 1: logits (2, 0), target class 0 → log(1 + e^{−2}); sample 2: equal logits, target (½, ½) → log 2
    assert out["similarity"].item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    h = torch.tensor([[1.0, 0], [1, 1]])
    assert out["quantization"].item() == pytest.approx(GaussianBCE(0.5)(h).item())


# ------------------------------------------------------------------------------------ digits fits
TERMS = {  # the terms each method logs with its original quantization term
    "hyp2": {"similarity", "pair"},
    "dhd": {"similarity", "quantization"},
}


@pytest.mark.parametrize("method", list(TERMS))
def test_method_fits_on_digits(method: str, tmp_path: Path) -> None:
    args = [
        "fit",
        "--config", str(EXPERIMENTS / "demo.yaml"),
        "--config", str(EXPERIMENTS / "digits" / f"{method}.yaml"),
        "--trainer.fast_dev_run", "2",
        "--trainer.logger", "false",
        "--trainer.callbacks", "null",
        "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    (metrics_file,) = tmp_path.glob("*/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    logged = {key.removeprefix("train/loss/") for key in metrics if key.startswith("train/loss/")}
    assert logged == TERMS[method]
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["val/mAP@all"])
