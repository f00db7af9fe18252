"""Similarity losses: hand-computed values, finite gradients, multi-label behaviour, dataset-level state."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from hashbench.backbones import SmallCNN
from hashbench.distributed import gather_with_grad
from hashbench.heads import HashHead, bihalf
from hashbench.losses import (
    CE,
    CSQ,
    DBDH,
    DCH,
    DPN,
    DPSH,
    DSDH,
    DSH,
    DTSH,
    GreedyHash,
    HashLoss,
    HashNet,
    OrthoHash,
    TrainingContext,
    hash_centers,
)
from hashbench.losses.centers import hadamard, label_centers
from hashbench.losses.dsdh import dsdh_discrete_step, dsdh_objective, dsdh_quantization_weight
from hashbench.losses.pairwise import balance_weights, similarity_matrix
from hashbench.module import HashingModule

ALL_LOSSES = [DPSH, DSH, HashNet, DSDH, DCH, DBDH, DTSH, GreedyHash, CSQ, DPN, OrthoHash, CE]


def ctx(bits: int = 2, classes: int = 2, train: int = 4, multi: bool = False) -> TrainingContext:
    return TrainingContext(bits=bits, num_classes=classes, num_train=train, multi_label=multi)


def ready(loss: HashLoss, context: TrainingContext) -> HashLoss:
    loss.setup(context)
    loss.on_train_epoch_start(0)
    return loss


def onehot(*classes: int, num: int = 2) -> torch.Tensor:
    return F.one_hot(torch.tensor(classes), num).float()


def terms(loss: HashLoss, u: torch.Tensor, h: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    out = loss(u, h, labels, torch.arange(len(u)))
    return {name: value.item() for name, value in out.items()}


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ----------------------------------------------------------------------------- hand-computed values
def test_dpsh_in_batch_value() -> None:
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]])  # Θ = [[1, 0], [0, 1]]
    u = torch.tensor([[0.5, 2.0], [1.0, -1.0]])
    out = terms(ready(DPSH(bank=False), ctx()), u, h, onehot(0, 1))
    expected = (2 * (softplus(1.0) - 1.0) + 2 * math.log(2)) / 4
    assert out["similarity"] == pytest.approx(expected, rel=1e-6)
    assert out["quantization"] == pytest.approx((0.25 + 1.0) / 4)


def test_dpsh_bank_pairs_with_every_seen_code() -> None:
    loss = ready(DPSH(bank=True), ctx(train=4))
    h0 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    loss(h0, h0, onehot(0, 1), torch.tensor([0, 1]))
    h1 = torch.tensor([[2.0, 0.0]])
    out = loss(h1, h1, onehot(0), torch.tensor([3]))["similarity"].item()
    # Θ of h1 with the seen codes [h0_0, h0_1, h1] = [1, 1, 2]; similar to rows 0 and 3
    expected = (softplus(1.0) - 1.0 + softplus(1.0) + softplus(2.0) - 2.0) / 3
    assert out == pytest.approx(expected, rel=1e-6)
    assert loss.code_bank.seen.tolist() == [True, True, False, True]


@pytest.mark.parametrize(("same", "expected"), [(True, 0.3125), (False, 0.6875)])
def test_dsh_value(same: bool, expected: float) -> None:
    h = torch.tensor([[1.0, 0.0], [0.0, 0.5]])  # ‖h0 − h1‖² = 1.25, margin 2m = 4
    labels = onehot(0, 0) if same else onehot(0, 1)
    # the two diagonal pairs are similar at distance 0; the two off-diagonal pairs give
    # ½·1.25 when similar, ½·(4 − 1.25) when dissimilar; mean over 4 pairs
    out = terms(ready(DSH(), ctx()), h, h, labels)
    assert out["similarity"] == pytest.approx(expected)
    assert out["quantization"] == pytest.approx(0.625)  # mean |1 − |u|| = (0 + 1 + 1 + 0.5)/4


def test_hashnet_weighted_value() -> None:
    z = torch.tensor([[0.5, 0.5], [0.5, -0.5]])
    u = torch.atanh(z)  # β = 1 at epoch 0: tanh(βu) = z; D = 0.1·z zᵀ = [[0.05, 0], [0, 0.05]]
    out = terms(ready(HashNet(), ctx()), u, u, onehot(0, 1))
    # |S1| = |S0| = 2, weights 2 each; Σ w ℓ / |S| = ℓ_diag + ℓ_off
    assert out == {"similarity": pytest.approx(softplus(0.05) - 0.05 + math.log(2), rel=1e-6)}


def test_balance_weights_equalise_positives_and_negatives() -> None:
    s = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(balance_weights(s), torch.tensor([[4.0, 4 / 3, 4 / 3, 4 / 3]]))
    torch.testing.assert_close(
        balance_weights(torch.ones(2, 2)), torch.ones(2, 2)
    )  # no negatives: plain mean
    torch.testing.assert_close(balance_weights(torch.zeros(2, 2)), torch.ones(2, 2))


def test_hashnet_beta_follows_the_continuation_schedule() -> None:
    loss = HashNet(continuation_step=20)
    for epoch, beta in [(0, 1.0), (19, 1.0), (20, math.sqrt(2)), (45, math.sqrt(3)), (100, math.sqrt(6))]:
        loss.on_train_epoch_start(epoch)
        assert loss.beta.item() == pytest.approx(beta)
    assert "beta" in loss.state_dict()
    off = HashNet(continuation=False)
    off.on_train_epoch_start(100)
    assert off.beta.item() == 1.0


def test_dch_value() -> None:
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # d = (m/2)(1 − cos) = 1 off the diagonal, 0.01 on it
    out = terms(ready(DCH(gamma=20.0), ctx()), h, h, onehot(0, 1))
    assert out["similarity"] == pytest.approx(math.log1p(0.01 / 20) + math.log(21), rel=1e-5)
    # quantization: cos(|u|, 1) = 1/√2 → d = 1 − 1/√2 per row
    assert out["quantization"] == pytest.approx(math.log1p((1 - 1 / math.sqrt(2)) / 20), rel=1e-5)


def test_dbdh_value_clamps() -> None:
    u = torch.tensor([[2.0, -0.5], [0.3, -3.0]])
    z = [[1.0, -0.5], [0.3, -1.0]]
    theta = [[0.5 * sum(a * b for a, b in zip(zi, zj, strict=True)) for zj in z] for zi in z]
    s = [[1, 0], [0, 1]]
    expected = sum(softplus(theta[i][j]) - s[i][j] * theta[i][j] for i in range(2) for j in range(2)) / 4
    out = terms(ready(DBDH(bank=False), ctx()), u, u, onehot(0, 1))
    assert out["similarity"] == pytest.approx(expected, rel=1e-6)
    assert out["quantization"] == pytest.approx((0.25**2 + 0.35**2) / 2, rel=1e-6)
    unclamped = terms(ready(DBDH(clamp=False, bank=False), ctx()), u, u, onehot(0, 1))
    assert unclamped["quantization"] == pytest.approx((0.75**2 + 1.35**2) / 2, rel=1e-6)


def test_dtsh_value() -> None:
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # labels A, A, B
    out = terms(ready(DTSH(margin=5.0), ctx()), h, h, onehot(0, 0, 1))
    # the paper: triplets (0, 1, 2) and (1, 0, 2); Θ_pos = ½, Θ_neg = 0
    assert out["similarity"] == pytest.approx(softplus(-(0.5 - 0.0 - 5.0)), rel=1e-6)
    assert out["quantization"] == pytest.approx(3 / 6)  # (0 − sign 0)² = 1 on three of six entries
    assert terms(ready(DTSH(), ctx()), h, h, onehot(0, 1, 1))["similarity"] > 0
    no_triplet = terms(ready(DTSH(), ctx()), h[:2], h[:2], onehot(0, 0))
    assert no_triplet["similarity"] == 0.0


def test_dtsh_deephash_form_value() -> None:
    h = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # labels A, A, B
    loss = ready(DTSH(margin=5.0, scale=1.0, reduction="anchor", self_positive=True), ctx())
    # Θ = hhᵀ: Θ00 = 1, Θ01 = 2, Θ11 = 4, Θ22 = 1, Θ02 = Θ12 = 0; each anchor is its own positive
    anchor0 = (softplus(-(1 - 0 - 5.0)) + softplus(-(2 - 0 - 5.0))) / 2  # positives 0, 1; negative 2
    anchor1 = (softplus(-(2 - 0 - 5.0)) + softplus(-(4 - 0 - 5.0))) / 2  # positives 0, 1; negative 2
    anchor2 = (softplus(-(1 - 0 - 5.0)) + softplus(-(1 - 0 - 5.0))) / 2  # positive 2; negatives 0, 1
    out = terms(loss, h, h, onehot(0, 0, 1))
    assert out["similarity"] == pytest.approx((anchor0 + anchor1 + anchor2) / 3, rel=1e-6)
    # the paper on the same codes: triplets (0, 1, 2), (1, 0, 2) with Θ = ½ hhᵀ: Θ01 = 1, Θ02 = Θ12 = 0
    paper = terms(ready(DTSH(margin=5.0), ctx()), h, h, onehot(0, 0, 1))["similarity"]
    assert paper == pytest.approx(softplus(-(1 - 0 - 5.0)), rel=1e-6)


def test_greedyhash_value_and_straight_through() -> None:
    loss = ready(GreedyHash(), ctx(bits=2, classes=2))
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    u = torch.tensor([[0.3, -2.0]], requires_grad=True)  # b = [1, −1]: logits [1, −1]
    out = loss(u, u, onehot(0), torch.arange(1))
    assert out["similarity"].item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)
    assert out["quantization"].item() == pytest.approx((0.7**3 + 1.0) / 2, rel=1e-6)
    out["similarity"].backward()
    p = 1 / (1 + math.exp(-2.0))  # straight through: ∂L/∂u = ∂L/∂b = Wᵀ(softmax − y)
    torch.testing.assert_close(u.grad, torch.tensor([[p - 1, 1 - p]]))


def test_csq_value_and_hadamard_centres() -> None:
    loss = ready(CSQ(), ctx(bits=4, classes=2))
    torch.testing.assert_close(loss.centers, hadamard(4)[:2])
    u = torch.zeros(2, 4)
    out = terms(loss, u, u, onehot(0, 1))
    assert out == {"similarity": pytest.approx(math.log(2)), "quantization": pytest.approx(1.0)}
    # at the centre the BCE is small and the tanh term vanishes with |u| → ∞
    far = terms(loss, 20 * loss.centers, loss.centers, onehot(0, 1))
    assert far["similarity"] < 1e-6 and far["quantization"] < 1e-6


def test_dpn_value() -> None:
    loss = ready(DPN(margin=1.0), ctx(bits=6, classes=3))
    t = loss.centers
    assert (t == -1).sum(dim=1).tolist() == [3, 3, 3]  # bit-balanced targets
    labels = torch.eye(3)
    for scale, expected in [(0.0, 1.0), (1.0, 0.0), (2.0, 0.0), (-1.0, 2.0), (0.5, 0.5)]:
        assert terms(loss, scale * t, scale * t, labels) == {"similarity": pytest.approx(expected)}


@pytest.mark.parametrize("margin_type", ["cos", "arc"])
def test_orthohash_value(margin_type: str) -> None:
    loss = ready(OrthoHash(margin_type=margin_type, codebook="hadamard"), ctx(bits=4, classes=2))
    torch.testing.assert_close(loss.codebook, hadamard(4)[:2])
    h = loss.codebook[:1].double()  # cos = [1, 0]; s = 8
    if margin_type == "cos":
        logits = [8 * (1 - 0.2), 0.0]
    else:
        logits = [8 * math.cos(math.acos(0.99999) + 0.2), 8 * math.cos(math.acos(0.0))]
    expected = -logits[0] + math.log(math.exp(logits[0]) + math.exp(logits[1]))
    out = terms(loss, h, h, onehot(0))
    assert out["similarity"] == pytest.approx(expected, rel=1e-5)
    assert out["quantization"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("bits", "scale", "expected_scale"), [(16, 8.0, 8.0), (16, "sqrt_bits", 4.0)])
def test_orthohash_scale(bits: int, scale: float | str, expected_scale: float) -> None:
    loss = ready(OrthoHash(scale=scale), ctx(bits=bits, classes=10))  # type: ignore[arg-type]
    assert set(loss.codebook.unique().tolist()) == {-1.0, 1.0}
    h = torch.randn(3, bits)
    cos = F.normalize(h, dim=1) @ F.normalize(loss.codebook, dim=1).T
    y = onehot(1, 2, 3, num=10)
    expected = F.cross_entropy(expected_scale * (cos - 0.2 * y), y)
    torch.testing.assert_close(loss(h, h, y, torch.arange(3))["similarity"], expected)
    assert OrthoHash().scale == 8.0  # the authors' code, at every code length


def test_ce_value() -> None:
    loss = ready(CE(), ctx(bits=2, classes=2))
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.eye(2))
        loss.classifier.bias.zero_()
    h = torch.tensor([[1.0, -1.0]])
    assert terms(loss, h, h, onehot(0)) == {"similarity": pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)}


# ------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("cls", ALL_LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("scale", [0.0, 1.0, 100.0])
def test_gradients_are_finite(cls: type[HashLoss], scale: float) -> None:
    torch.manual_seed(0)
    loss = ready(cls(), ctx(bits=12, classes=5, train=16, multi=True))
    u = (scale * torch.randn(8, 12)).requires_grad_()
    labels = (torch.rand(8, 5) < 0.4).float()
    out = loss(u, torch.tanh(u), labels, torch.arange(8))
    total = torch.stack(list(out.values())).sum()
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(u.grad).all()
    assert all(value.ndim == 0 for value in out.values()) and "similarity" in out


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=lambda c: c.__name__)
def test_terms_are_float32_under_mixed_precision(cls: type[HashLoss]) -> None:
    torch.manual_seed(0)
    loss = ready(cls(), ctx(bits=12, classes=5, train=16, multi=True))
    u = torch.randn(8, 12).bfloat16()
    labels = (torch.rand(8, 5) < 0.4).float()
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(u, torch.tanh(u), labels, torch.arange(8))
    torch.manual_seed(1)
    exact = loss(u.float(), torch.tanh(u).float(), labels, torch.arange(8))
    for name, value in mixed.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, exact[name])


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=lambda c: c.__name__)
def test_forward_before_setup_fails_clearly_or_works(cls: type[HashLoss]) -> None:
    u = torch.randn(4, 8)
    stateless = cls in (DSH, HashNet, DCH, DTSH)
    if stateless:
        cls()(u, u, onehot(0, 1, 0, 1), torch.arange(4))
    else:
        with pytest.raises(RuntimeError, match="setup"):
            cls()(u, u, onehot(0, 1, 0, 1), torch.arange(4))


# ---------------------------------------------------------------------------------- multi-label
def test_similarity_is_sharing_any_label() -> None:
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert similarity_matrix(y, y).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_multi_label_centre_is_the_sign_of_the_sum_with_tie_breaker() -> None:
    centers = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    tie = torch.tensor([-1.0, -1.0, -1.0, -1.0])
    y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert label_centers(y, centers, tie).tolist() == [
        [1, 1, -1, -1],
        [1, -1, -1, -1],  # sums [2, 0, 0, −2]: ties from the tie-breaker
        [1, 1, 1, -1],  # sums [3, 1, 1, −1]
    ]


def test_csq_multi_label_targets_the_combined_centre() -> None:
    loss = ready(CSQ(), ctx(bits=8, classes=3, multi=True))
    y = torch.tensor([[1.0, 1.0, 0.0]])
    target = label_centers(y, loss.centers, loss.tie_breaker)
    at_target = terms(loss, 20 * target, target, y)["similarity"]
    at_first_class = terms(loss, 20 * loss.centers[:1], loss.centers[:1], y)["similarity"]
    assert at_target < 1e-6 < at_first_class


def test_orthohash_multi_label_soft_targets() -> None:
    loss = ready(OrthoHash(codebook="hadamard"), ctx(bits=4, classes=2, multi=True))
    h = torch.tensor([[1.0, 0.0, 1.0, 0.0]])  # cos = [1/√2, 1/√2]
    logits = torch.tensor([8 * (1 / math.sqrt(2) - 0.2)] * 2)
    expected = -torch.log_softmax(logits, 0).mean().item()  # targets ½, ½
    assert terms(loss, h, h, torch.tensor([[1.0, 1.0]]))["similarity"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("cls", [GreedyHash, CE])
def test_classifiers_use_sigmoid_cross_entropy_on_multi_label_data(cls: type[HashLoss]) -> None:
    loss = ready(cls(), ctx(bits=2, classes=3, multi=True))
    h = torch.tensor([[0.7, -1.2], [-0.4, 0.9]])
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    codes = torch.sign(h) if cls is GreedyHash else h
    expected = F.binary_cross_entropy_with_logits(loss.classifier(codes), y)
    assert terms(loss, h, h, y)["similarity"] == pytest.approx(expected.item(), rel=1e-6)
    single = ready(cls(), ctx(bits=2, classes=3, multi=False))
    single.load_state_dict(loss.state_dict())
    softmax = F.cross_entropy(single.classifier(codes), onehot(0, 2, num=3))
    assert terms(single, h, h, onehot(0, 2, num=3))["similarity"] == pytest.approx(softmax.item(), rel=1e-6)


# ----------------------------------------------------------------------------------------- state
def test_dsdh_discrete_step_lowers_its_objective() -> None:
    g = torch.Generator().manual_seed(0)
    n, m, c = 60, 12, 5
    codes = torch.randn(n, m, generator=g, dtype=torch.float64)
    labels = F.one_hot(torch.randint(0, c, (n,), generator=g), c).double()
    start = torch.randint(0, 2, (n, m), generator=g).double() * 2 - 1
    mu, nu, eta = 1.0, 1.0, 55.0
    w0 = torch.linalg.solve(start.T @ start + nu / mu * torch.eye(m, dtype=torch.float64), start.T @ labels)
    before = dsdh_objective(codes, labels, start, w0, mu, nu, eta)
    values = []
    b = start
    for _ in range(3):
        b, w = dsdh_discrete_step(codes, labels, b, mu, nu, eta, iterations=1)
        values.append(dsdh_objective(codes, labels, b, w, mu, nu, eta))
    assert values[0] < before and all(x >= y - 1e-9 for x, y in itertools.pairwise(values))
    assert set(b.unique().tolist()) == {-1.0, 1.0}


def test_dsdh_state_updates_per_epoch_and_couples_the_network() -> None:
    torch.manual_seed(0)
    loss = DSDH()
    loss.setup(ctx(bits=8, classes=3, train=12))
    u = torch.randn(12, 8)
    labels = F.one_hot(torch.arange(12) % 3, 3).float()
    loss.on_train_epoch_start(0)
    out = loss(u, u, labels, torch.arange(12))
    # before the first discrete step b = sign(u): the coupling is DPSH's quantization term
    assert out["quantization"].item() == pytest.approx((u - torch.sign(u)).pow(2).mean().item(), rel=1e-6)
    assert loss.b_codes.abs().sum() == 0
    loss.on_train_epoch_start(1)
    assert set(loss.b_codes.unique().tolist()) == {-1.0, 1.0} and loss.w.abs().sum() > 0
    b = loss.b_codes.clone()
    after = loss(u, u, labels, torch.arange(12))["quantization"]
    assert after.item() == pytest.approx((u - b).pow(2).mean().item(), rel=1e-6)
    off = DSDH(discrete_step=False)
    off.setup(ctx(bits=8, classes=3, train=12))
    off(u, u, labels, torch.arange(12))
    off.on_train_epoch_start(1)
    assert off.b_codes.abs().sum() == 0


def test_dsdh_effective_eta_matches_the_paper() -> None:
    """The paper's J = Σ_ij [log(1 + e^Θij) − s_ij Θij] + η Σ_i ‖b_i − u_i‖², Θ = ½ UUᵀ, over the whole
    training set; hashbench with the full set in the batch and the bank holding the same codes."""
    n, m, eta = 5, 3, 55.0
    g = torch.Generator().manual_seed(0)
    u = torch.randn(n, m, generator=g, dtype=torch.float64)
    labels = F.one_hot(torch.tensor([0, 1, 0, 1, 1]), 2).double()
    b = torch.randint(0, 2, (n, m), generator=g).double() * 2 - 1

    def grad(value_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = u.clone().requires_grad_()
        (result,) = torch.autograd.grad(value_of(x), x)
        return result

    def paper_nll(x: torch.Tensor) -> torch.Tensor:
        theta = 0.5 * x @ x.T
        return (F.softplus(theta) - labels @ labels.T * theta).sum()

    paper_likelihood = grad(paper_nll)
    paper_coupling = grad(lambda x: eta * (b - x).pow(2).sum())

    loss = DSDH(eta=eta)
    loss.setup(ctx(bits=m, classes=2, train=n))
    loss.b_codes.copy_(b)
    weight = dsdh_quantization_weight(eta, m, n)
    ours_likelihood = grad(lambda x: loss(x, x, labels, torch.arange(n))["similarity"])
    ours_coupling = grad(lambda x: weight * loss(x, x, labels, torch.arange(n))["quantization"])
    # the bank is detached: the likelihood gets half the paper's gradient, 1/(2n²) after the means;
    # λ = η·m/(2n) gives the coupling the same factor, so the ratio of the two parts is the paper's
    torch.testing.assert_close(ours_likelihood, paper_likelihood / (2 * n * n))
    torch.testing.assert_close(ours_coupling, paper_coupling / (2 * n * n))
    assert weight == pytest.approx(55 * 3 / 10)


@pytest.mark.parametrize("classes", [10, 21])
@pytest.mark.parametrize("bits", [12, 16, 24, 32, 48, 64, 128])
def test_csq_centres_are_far_apart(bits: int, classes: int) -> None:
    loss = ready(CSQ(), ctx(bits=bits, classes=classes))
    centers = loss.centers
    assert centers.shape == (classes, bits) and set(centers.unique().tolist()) == {-1.0, 1.0}
    distance = (bits - centers @ centers.T) / 2
    off_diagonal = distance[~torch.eye(classes, dtype=torch.bool)]
    assert off_diagonal.min() > bits / 4  # CSQ's criterion
    assert off_diagonal.mean() >= bits / 2
    if bits & (bits - 1) == 0 and classes <= 2 * bits:  # Hadamard rows
        assert off_diagonal.min() >= bits / 2


def test_centres_are_deterministic_and_cover_many_classes() -> None:
    torch.testing.assert_close(
        hash_centers(80, 24, "hadamard", seed=3), hash_centers(80, 24, "hadamard", seed=3)
    )
    many = hash_centers(100, 48, "balanced")
    distance = (48 - many @ many.T) / 2
    assert distance[~torch.eye(100, dtype=torch.bool)].min() >= 48 / 4


@pytest.mark.parametrize("cls", [DPSH, DSDH, DBDH, CSQ, DPN, OrthoHash, GreedyHash, CE, HashNet])
def test_state_is_checkpointed_and_survives_a_second_setup(cls: type[HashLoss]) -> None:
    torch.manual_seed(0)
    context = ctx(bits=8, classes=3, train=10, multi=True)
    loss = cls()
    loss.setup(context)
    u = torch.randn(10, 8)
    labels = (torch.rand(10, 3) < 0.5).float()
    for epoch in range(3):
        loss.on_train_epoch_start(epoch)
        loss(u, u, labels, torch.arange(10))
    state = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.setup(context)  # fit, then test: the state stays
    for key, value in loss.state_dict().items():
        torch.testing.assert_close(value, state[key])
    restored = cls()
    restored.setup(context)
    restored.load_state_dict(state)
    torch.manual_seed(1)
    torch.testing.assert_close(restored(u, u, labels, torch.arange(10)), loss(u, u, labels, torch.arange(10)))


# ----------------------------------------------------------------------------------- evaluation
class _Recorder:
    """Stands in for the retrieval metric: keeps the codes evaluation hands it."""

    def __init__(self) -> None:
        self.codes: list[torch.Tensor] = []

    def update(self, h: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, role: str) -> None:
        self.codes.append(h)


def test_evaluation_measures_what_hashnet_binarises() -> None:
    torch.manual_seed(0)
    loss = HashNet(continuation_step=20)
    head = HashHead(bits=6, activation="tanh")
    module = HashingModule(backbone=SmallCNN(in_channels=1, width=4), head=head, loss=loss).eval()
    loss.on_train_epoch_start(40)  # β = √3
    images = torch.randn(3, 1, 8, 8)
    recorder = _Recorder()
    with torch.no_grad():
        module._update_metric(recorder, (images, onehot(0, 1, 0), torch.arange(3)), 1)  # type: ignore[arg-type]
        u, h = module(images)
    # the diagnostics see tanh(βu), not the head's tanh(u)
    torch.testing.assert_close(recorder.codes[0], torch.tanh(math.sqrt(3) * u))
    assert not torch.allclose(recorder.codes[0], h)
    assert DPSH().codes(u, h) is h  # the default: the head's activated output
    assert GreedyHash().codes(u, h) is u and DBDH().codes(2 * u, h).abs().max() <= 1


# ---------------------------------------------------------------------------------------- heads
def test_bihalf_splits_each_bit_at_the_batch_median_with_straight_through() -> None:
    u = torch.tensor([[0.3, -2.0], [0.1, 5.0], [-0.4, 1.0], [2.0, 0.0]], requires_grad=True)
    b = bihalf(u, gamma=0.0)
    assert b.tolist() == [[1, -1], [-1, 1], [-1, 1], [1, -1]]
    b.sum().backward()
    torch.testing.assert_close(u.grad, torch.ones_like(u))
    head = HashHead(bits=3, activation="bihalf")
    head.build(5)
    x = torch.randn(7, 5)
    _, h = head(x)
    assert (h == 1).sum(0).tolist() == [3, 3, 3]  # ⌊7/2⌋ ones per bit
    head.eval()
    u_eval, h_eval = head(x)
    torch.testing.assert_close(h_eval, u_eval)


def test_gather_is_the_identity_without_ddp() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
