"""Second-round methods (DHN, IDHN, ADSH, ...): hand-computed values on tiny inputs, their discrete
steps, and a short fit of each digits overlay."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import EXPERIMENTS
from test_losses import ctx, onehot, ready, softplus, terms

from hashbench.cli import main
from hashbench.losses import ADSH, DFH, DHN, DSHSD, IDHN, LCDSH
from hashbench.losses import adsh as adsh_module
from hashbench.losses.adsh import adsh_discrete_step, adsh_objective, adsh_similarity
from hashbench.losses.dfh import dfh_binary_codes, dfh_center_objective, dfh_center_step
from hashbench.losses.pairwise import similarity_matrix
from hashbench.quantizers import LocalityConstrained, SoftsignUnitL1


# ------------------------------------------------------------------------------------------- DHN
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_dhn_value(scale: float) -> None:
    h = torch.tensor([[0.5, 1.0], [1.0, -0.5]])  # ⟨h_i, h_j⟩ = [[1.25, 0], [0, 1.25]]
    out = terms(ready(DHN(scale=scale), ctx()), h, h, onehot(0, 1))
    theta = 1.25 * scale  # the two similar pairs are the diagonal; the off-diagonal Θ = 0
    assert out["similarity"] == pytest.approx((2 * (softplus(theta) - theta) + 2 * math.log(2)) / 4, rel=1e-6)
    # log cosh(|h| − 1): only the two 0.5 entries are off ±1
    assert out["quantization"] == pytest.approx(2 * math.log(math.cosh(0.5)) / 4, rel=1e-6)


# ------------------------------------------------------------------------------------------ IDHN
def test_idhn_value_hard_and_soft_pairs() -> None:
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0], [3.0, -3.0]])  # softsign: ±0.5, ±0.75
    labels = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # cosines: s_01 = 1/√2 (soft), s_02 = s_12 = 0, diagonal 1. z·z: 0.5, 0, 0, 0.5, 0.75, 1.125
    out = terms(ready(IDHN(beta=5.0, gamma=0.1), ctx(classes=3, multi=True)), u, u, labels)
    hard = 2 * (softplus(1.25) - 1.25) + softplus(2.8125) - 2.8125 + 2 * math.log(2) + 2 * softplus(1.875)
    soft = 2 * 0.1 * 2 * (0.5 - 1 / math.sqrt(2)) ** 2  # γ·m·((0 + m)/2m − s)², both orders
    assert out["similarity"] == pytest.approx((hard + soft) / 9, rel=1e-6)
    assert out["quantization"] == pytest.approx((4 * 0.5 + 2 * 0.25) / 6, rel=1e-6)  # 1/(1 + |u|)


def test_idhn_single_label_has_only_hard_pairs() -> None:
    u = torch.tensor([[0.3, -1.2], [2.0, 0.1], [-0.4, 0.8]])
    labels = onehot(0, 0, 1)
    values = [terms(ready(IDHN(gamma=gamma), ctx()), u, u, labels)["similarity"] for gamma in (0.0, 10.0)]
    assert values[0] == values[1]


def test_softsign_unit_l1_value() -> None:
    value = SoftsignUnitL1()(torch.tensor([[0.0, 1.0, -3.0]])).item()
    assert value == pytest.approx((1 + 0.5 + 0.25) / 3)  # |1 − |u/(1 + |u|)||


# ------------------------------------------------------------------------------------------ ADSH
def test_adsh_value_before_and_after_v_is_set() -> None:
    loss = ADSH()
    ready(loss, ctx(bits=2, train=2))
    h = torch.tensor([[0.5, -0.5], [1.0, 1.0]])
    out = terms(loss, h, h, onehot(0, 1))
    assert out == {"similarity": pytest.approx(4.0), "quantization": pytest.approx(0.625)}  # V = 0: (c·S)²
    loss.v.copy_(torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
    out = terms(loss, h, h, onehot(0, 1))
    # h Vᵀ = [[1, 0], [0, 2]] against c·S = [[2, −2], [−2, 2]]: (1 + 4 + 4 + 0)/4
    assert out == {"similarity": pytest.approx(9 / 4), "quantization": pytest.approx(0.5 / 4)}


def test_adsh_similarity_targets() -> None:
    shared = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(adsh_similarity(shared, "pm1"), torch.tensor([[1.0, -1.0, -1.0, -1.0]]))
    balanced = torch.tensor([[1.0, -1 / 3, -1 / 3, -1 / 3]])  # r = 1 similar / 3 dissimilar
    torch.testing.assert_close(adsh_similarity(shared, "balanced"), balanced)


@pytest.mark.parametrize("kind", ["pm1", "balanced"])
def test_adsh_discrete_step_solves_each_bit_exactly(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adsh_module, "CHUNK_ROWS", 2)  # S U assembled from several row chunks
    generator = torch.Generator().manual_seed(0)
    n, c = 5, 3
    codes = torch.rand(n, c, generator=generator, dtype=torch.float64) * 2 - 1
    labels = F.one_hot(torch.tensor([0, 1, 0, 2, 1]), 3).double()
    s = adsh_similarity(similarity_matrix(labels, labels), kind)  # type: ignore[arg-type]
    start = torch.where(torch.rand(n, c, generator=generator) > 0.5, 1.0, -1.0).double()
    v = adsh_discrete_step(codes, labels, start, 200.0, kind)  # type: ignore[arg-type]
    assert adsh_objective(codes, v, s, 200.0) <= adsh_objective(codes, start, s, 200.0)
    # the last bit is the exact minimiser over all 2^n columns, the others fixed
    best = min(
        adsh_objective(codes, torch.cat([v[:, :-1], torch.tensor(column).double()[:, None]], 1), s, 200.0)
        for column in itertools.product((-1.0, 1.0), repeat=n)
    )
    assert adsh_objective(codes, v, s, 200.0).item() == pytest.approx(best.item())


def test_adsh_steps_from_the_bank_at_epoch_starts() -> None:
    loss = ADSH(step_every=2)
    ready(loss, ctx(bits=2, train=3))
    h = torch.tensor([[0.5, -0.2], [0.4, -0.3]])
    loss(h, h, onehot(0, 0), torch.tensor([0, 2]))
    loss.on_train_epoch_start(1)
    assert not loss.v.any()  # step_every = 2: no step at epoch 1
    loss.on_train_epoch_start(2)
    assert loss.v[[0, 2]].abs().eq(1).all() and not loss.v[1].any()  # seen rows coded, the unseen one not
    assert set(loss.state_dict()) >= {"v", "code_bank.codes"}


# ----------------------------------------------------------------------------------------- LCDSH
def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_lcdsh_value() -> None:
    u = torch.tensor(
        [[0.5, 1.0], [1.0, -0.5]]
    )  # ½ u uᵀ = [[0.625, 0], [0, 0.625]]; ½ b bᵀ = [[1, 0], [0, 1]]
    out = terms(ready(LCDSH(), ctx()), u, u, onehot(0, 1))
    assert out["similarity"] == pytest.approx((2 * (softplus(0.625) - 0.625) + 2 * math.log(2)) / 4, rel=1e-6)
    assert out["quantization"] == pytest.approx(2 * (sigmoid(0.625) - sigmoid(1.0)) ** 2 / 4, rel=1e-6)
    assert LocalityConstrained()(u).item() == pytest.approx(out["quantization"], rel=1e-6)


# ----------------------------------------------------------------------------------------- DSHSD
@pytest.mark.parametrize("multi", [False, True])
def test_dshsd_value(multi: bool) -> None:
    loss = DSHSD(alpha=0.05)
    ready(loss, ctx(multi=multi))
    assert loss.classifier is not None
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.eye(2))  # logits = h
    h = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])  # ‖h0 − h1‖² = 2, margin 2m = 4
    labels = torch.tensor([[1.0, 1.0], [0.0, 1.0]]) if multi else onehot(0, 1)
    out = terms(loss, h, h, labels)
    # off-diagonal: similar ½·2 = 1 (multi-label: they share class 1), dissimilar ½·(4 − 2) = 1; diagonal 0
    assert out["similarity"] == pytest.approx(0.05 * 2 / 4)
    if (
        multi
    ):  # per-class sigmoid cross-entropy summed over classes: softplus(−x) for y = 1, softplus(x) for 0
        expected = (softplus(-0.5) + softplus(0.5) + 2 * softplus(-0.5)) / 2
    else:
        expected = math.log1p(math.exp(-1.0))  # both rows: logits ±0.5 with the right class on top
    assert out["classification"] == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------------- DFH
def test_dfh_value_before_the_first_centre_step() -> None:
    u = torch.tensor([[0.5, 1.0], [1.0, -0.5]])  # Θ = [[0.625, 0], [0, 0.625]]; b = sign u (C = 0)
    out = terms(ready(DFH(margin=1.0), ctx(train=2)), u, u, onehot(0, 1))
    expected = (2 * softplus(1.0 - 0.625) + 2 * softplus(1.0 + 0.0)) / 4  # similar pairs: the diagonal
    assert out["similarity"] == pytest.approx(expected, rel=1e-6)
    assert out["quantization"] == pytest.approx((0.25 + 0.25) / 4)


@pytest.mark.parametrize(("mu", "expected"), [(1.0, (0.25 + 1.44) / 2), (0.1, (0.25 + 0.64) / 2)])
def test_dfh_codes_follow_the_class_centre(mu: float, expected: float) -> None:
    loss = DFH(mu=mu)
    ready(loss, ctx(train=1))
    loss.centers.copy_(torch.tensor([[1.0, -1.0], [1.0, -1.0]]))  # class 0's centre is [1, 1]
    u = torch.tensor([[0.5, -0.2]])  # μ·[1, 1] + u: μ = 1 → b = [1, 1]; μ = 0.1 → b = [1, −1]
    assert terms(loss, u, u, onehot(0))["quantization"] == pytest.approx(expected, rel=1e-6)


def test_dfh_centre_step_separates_the_classes() -> None:
    codes = torch.tensor([[0.9, 0.8], [0.7, 0.9], [-0.8, -0.9], [-0.9, -0.6]])
    labels = onehot(0, 0, 1, 1)
    b = dfh_binary_codes(codes, labels, torch.zeros(2, 2), mu=1.0)
    start = torch.zeros(2, 2)
    relaxed = dfh_center_step(start, labels, b, nu=1.0, center_quantization=1.0)
    objective = [dfh_center_objective(v, labels, b, 1.0, 1.0) for v in (start, relaxed)]
    assert objective[1] < objective[0]
    separated = torch.tensor([[1.0, -1.0], [1.0, -1.0]])  # columns are the centres: [1, 1] and [−1, −1]
    torch.testing.assert_close(torch.sign(relaxed), separated)
    loss = DFH()
    ready(loss, ctx(train=4))
    loss(codes, codes, labels, torch.arange(4))
    loss.on_train_epoch_start(1)
    torch.testing.assert_close(loss.centers, separated)


# -------------------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("method", ["dhn", "idhn", "adsh", "dfh", "lcdsh", "dshsd"])
def test_overlay_fits(method: str, tmp_path: Path) -> None:
    args = [
        "fit",
        "--config", str(EXPERIMENTS / "demo.yaml"),
        "--config", str(EXPERIMENTS / "digits" / f"{method}.yaml"),
        "--trainer.fast_dev_run", "2",
        "--trainer.logger", "false",
        "--trainer.callbacks", "null",
        "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            main(args)
        except SystemExit as error:  # main exits on a config or run error
            raise AssertionError(f"{method} failed ({error.code}):\n{output.getvalue()[-3000:]}") from None
    assert "mAP@all" in output.getvalue()
