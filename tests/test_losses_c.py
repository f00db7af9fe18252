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
from hashbench.losses import DHD, JMLH, MDSH, SDHC, HyP2, TrainingContext
from hashbench.losses.centers import hash_centers
from hashbench.losses.hyp2 import code_distance_bound, hyp2_threshold
from hashbench.losses.jmlh import stochastic_binary
from hashbench.losses.mdsh import (
    gilbert_varshamov_distance,
    pairwise_distances,
    separated_centers,
    softmax_bce,
)
from hashbench.losses.psldh import label_code_objective, learn_label_codes, partial_softmax_loss
from hashbench.quantizers import BernoulliKL, GaussianBCE

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


# ------------------------------------------------------------------------------------------ JMLH
def bernoulli_kl(q: float) -> float:
    """KL(Bern(q) ‖ Bern(½)) by its definition."""
    return q * math.log(2 * q) + (1 - q) * math.log(2 * (1 - q))


def with_identity_classifier(loss: JMLH | SDHC) -> JMLH | SDHC:
    loss.setup(ctx(2, 2))
    assert loss.classifier is not None
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.eye(2))
        if loss.classifier.bias is not None:
            loss.classifier.bias.zero_()
    return loss


def test_bernoulli_kl_by_hand() -> None:
    u = torch.tensor([[0.0, math.log(3)]], dtype=torch.float64)  # q = ½ (KL 0) and q = ¾
    assert BernoulliKL()(u).item() == pytest.approx(bernoulli_kl(0.75))
    q = torch.tensor([[0.5, 0.75]], dtype=torch.float64)
    assert BernoulliKL(apply_sigmoid=False)(q).item() == pytest.approx(bernoulli_kl(0.75))


def test_jmlh_deterministic_codes_and_terms() -> None:
    loss = with_identity_classifier(JMLH(stochastic=False))
    u = torch.tensor([[1.0, -1.0]])  # float32, as the classifier
    out = loss(u, u, torch.tensor([[1.0, 0.0]]), torch.arange(1))
    # b = (1, 0) → logits (1, 0), class 0: log(1 + e^{−1}); both bits have q = σ(±1), the same KL
    assert out["similarity"].item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert out["quantization"].item() == pytest.approx(2 * bernoulli_kl(1 / (1 + math.exp(-1))), rel=1e-5)


def test_jmlh_stochastic_codes_are_bernoulli_with_sigmoid_gradient() -> None:
    torch.manual_seed(0)
    u = torch.full((20000, 1), math.log(3), dtype=torch.float64, requires_grad=True)  # q = ¾
    b = stochastic_binary(u, stochastic=True)
    assert set(b.unique().tolist()) == {0.0, 1.0}
    assert b.mean().item() == pytest.approx(0.75, abs=0.015)  # 5 standard errors
    b.sum().backward()
    assert u.grad is not None
    assert torch.allclose(u.grad, torch.full_like(u, 0.75 * 0.25))  # σ'(u) = q(1 − q)


# ----------------------------------------------------------------------------------------- SDH-C
def test_sdhc_terms() -> None:
    loss = with_identity_classifier(SDHC(alpha=1.0, variance_weight=0.1))
    h = torch.tensor([[0.5, -0.5]])
    out = loss(h, h, torch.tensor([[1.0, 0.0]]), torch.arange(1))
    assert out["similarity"].item() == pytest.approx(math.log(1 + math.exp(-1)))  # logits (½, −½)
    assert out["variance"].item() == pytest.approx(-0.1 * 0.5 * (0.25 + 0.25))
    assert out["quantization"].item() == pytest.approx(0.25)  # (½ − 1)² and (−½ + 1)²


# ------------------------------------------------------------------------------------------ MDSH
def test_gilbert_varshamov_distance_by_hand() -> None:
    # 4 bits, 2 classes: 2·(1 + 4) = 10 < 16 ≤ 2·(1 + 4 + 6) = 22 → d = 3
    assert gilbert_varshamov_distance(4, 2) == 3
    assert gilbert_varshamov_distance(3, 8) == 1  # 8·1 ≥ 2³: distinct codes suffice


def test_separated_centers_reach_the_target() -> None:
    start = hash_centers(8, 3, "hadamard", 0)  # balanced 3-bit rows: only 3 distinct ones, duplicates
    assert pairwise_distances(start.double()).min() == 0
    centers = separated_centers(8, 3)
    assert pairwise_distances(centers.double()).min() >= 1  # all 8 codes of 3 bits, each once
    assert set(centers.abs().unique().tolist()) == {1.0}
    assert torch.equal(separated_centers(10, 32), hash_centers(10, 32, "hadamard", 0))  # Hadamard: kept


def test_softmax_bce_by_hand() -> None:
    logits = torch.tensor([[math.log(3), 0.0]], dtype=torch.float64)  # p = (¾, ¼), y = (1, 0)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert softmax_bce(logits, y).item() == pytest.approx(-(math.log(0.75) + math.log(0.75)) / 2)


def test_mdsh_pair_term_starts_at_its_epoch() -> None:
    loss = MDSH(beta=1.0, pair_start_epoch=1)
    loss.setup(ctx(2, 2))
    codes, labels = [[1, 0], [1, 1]], [[1, 0], [1, 0]]
    loss.on_train_epoch_start(0)
    assert terms(loss, codes, labels)["pair"].item() == 0
    loss.on_train_epoch_start(1)
    out = terms(loss, codes, labels)
    # all four (row, bank) pairs are positives: two with cos 1, two with cos 1/√2; softplus(½(1 − cos))
    expected = (2 * math.log(2) + 2 * math.log1p(math.exp(0.5 * (1 - R2)))) / 4
    assert out["pair"].item() == pytest.approx(expected)
    assert out["quantization"].item() == pytest.approx((0 + 1 + 0 + 0) / 4)  # mean((|h| − 1)²)


# ----------------------------------------------------------------------------------------- PSLDH
def test_partial_softmax_leaves_the_other_positives_out() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    # γ = 1, margin ½: each positive against the one negative (z = 0) only
    log_p0 = 1.5 - math.log(math.exp(1.5) + 1)
    log_p2 = 0.5 - math.log(math.exp(0.5) + 1)
    assert partial_softmax_loss(logits, labels, 1.0, 0.5).item() == pytest.approx(-(log_p0 + log_p2) / 2)


def test_label_code_objective_by_hand() -> None:
    codes = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    # relu(CCᵀ − 2I) = [[0, 1], [1, 0]] → 2/4; column sums 1.5, 1.5 → 4.5/2; (sign C − C)²: 0.5/2
    expected = 2 / 4 + 0.05 * 4.5 / 2 + 0.01 * 0.5 / 2
    assert label_code_objective(codes, 0.05, 0.01).item() == pytest.approx(expected)


def test_learned_label_codes_are_distinct_and_leave_the_global_rng() -> None:
    state = torch.get_rng_state()
    codes = learn_label_codes(4, 8, seed=0, steps=50)
    assert torch.equal(torch.get_rng_state(), state)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert pairwise_distances(codes.double()).min() >= 1
    assert torch.equal(codes, learn_label_codes(4, 8, seed=0, steps=50))


# ------------------------------------------------------------------------------------ digits fits
TERMS = {  # the terms each method logs with its original quantization term
    "hyp2": {"similarity", "pair"},
    "dhd": {"similarity", "quantization"},
    "jmlh": {"similarity", "quantization"},
    "sdhc": {"similarity", "variance", "quantization"},
    "mdsh": {"similarity", "pair", "quantization"},
    "psldh": {"similarity", "quantization"},
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
