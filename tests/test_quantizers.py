"""Mathematical properties of the quantization regularizers in hashbench.quantizers."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from hashbench.codes import cosine_to_sign, quantization_angles, sign_pm1
from hashbench.quantizers import (
    HSWD,
    OT,
    SWD,
    BitBalance,
    Cauchy,
    CosineToSign,
    Cubic,
    LogCosh,
    Quantizer,
    SignL2,
    TanhSquared,
    UnitL1,
    hswd_exact,
    hswd_sampled,
    ot_loss,
    random_directions,
    sample_target,
    sliced_w2,
    sorted_rows,
)
from hashbench.quantizers.wasserstein import _hswd_sampled_by_sort

# one instance of every class (and every option that changes the computation)
ALL = {
    "hswd_sampled": lambda: HSWD(),
    "hswd_exact": lambda: HSWD(target="exact"),
    "hswd_exact_root": lambda: HSWD(target="exact", squared=False),
    "hswd_sampled_root": lambda: HSWD(squared=False),
    "swd": lambda: SWD(num_projections=64),
    "ot": lambda: OT(),
    "sign_l2": lambda: SignL2(),
    "unit_l1": lambda: UnitL1(),
    "cubic": lambda: Cubic(),
    "cauchy": lambda: Cauchy(),
    "tanh_squared": lambda: TanhSquared(),
    "tanh_squared_noact": lambda: TanhSquared(apply_tanh=False),
    "bit_balance": lambda: BitBalance(),
    "bit_balance_batch": lambda: BitBalance(p=1, over="batch"),
    "log_cosh": lambda: LogCosh(),
    "cosine_to_sign": lambda: CosineToSign(),
}
DISTRIBUTIONAL = ["hswd_sampled", "hswd_exact", "hswd_exact_root", "swd", "ot"]


# ---------------------------------------------------------------------------------------------
# brute-force references, written plainly from the definitions
# ---------------------------------------------------------------------------------------------


def w2sq_quantiles(sample: list[float], target_quantile) -> float:
    """∫_0^1 (F_h^{-1}(t) − F_B^{-1}(t))² dt, integrating exactly over the pieces between breakpoints.

    F_h^{-1} is the empirical quantile function of ``sample`` (value h_(i) on [(i−1)/N, i/N));
    ``target_quantile(t)`` is the target's quantile function, piecewise constant with breakpoints
    among the multiples of 1/(2N) (true for both targets used here).
    """
    xs = sorted(sample)
    n = len(xs)
    cuts = sorted({Fraction(j, 2 * n) for j in range(2 * n + 1)})
    total = 0.0
    for a, b in itertools.pairwise(cuts):
        mid = (a + b) / 2
        q_h = xs[math.floor(mid * n)]
        total += float(b - a) * (q_h - target_quantile(mid)) ** 2
    return total


def exact_target_quantile(t) -> float:
    """Quantile function of Bernoulli(½) on {−1, +1}: −1 on [0, ½), +1 on [½, 1]."""
    return -1.0 if t < Fraction(1, 2) else 1.0


def sampled_target_quantile(n: int, ones: int):
    """Quantile function of an empirical ±1 sample of size n with ``ones`` entries +1."""
    return lambda t: -1.0 if t < Fraction(n - ones, n) else 1.0


def quantization_error(h: torch.Tensor) -> float:
    """Mean angle (radians) between each code and its sign."""
    b = torch.where(h >= 0, 1.0, -1.0)
    cos = F.cosine_similarity(h.double(), b.double(), dim=1).clamp(-1, 1)
    return torch.arccos(cos).mean().item()


def bit_entropy(h: torch.Tensor) -> float:
    """Mean over bits of the entropy (in bits) of sign(h) over the batch: 1 = perfectly balanced."""
    p = (h >= 0).double().mean(dim=0).clamp(1e-12, 1 - 1e-12)
    return (-(p * p.log2()) - (1 - p) * (1 - p).log2()).mean().item()


# ---------------------------------------------------------------------------------------------
# HSWD, exact target
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4, 10, 64])
def test_exact_hswd_is_zero_on_balanced_codes(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    m = 5
    col = torch.tensor([-1.0] * (n // 2) + [1.0] * (n // 2))
    h = torch.stack([col[torch.randperm(n, generator=g)] for _ in range(m)], dim=1)
    assert HSWD(target="exact")(h).item() == 0.0
    assert HSWD(target="exact", squared=False)(h).item() < 1e-18


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9])
def test_exact_hswd_is_one_on_zeros(n: int) -> None:
    assert HSWD(target="exact")(torch.zeros(n, 4)).item() == pytest.approx(1.0, abs=0)
    assert HSWD(target="exact", squared=False)(torch.zeros(n, 4)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 11, 12])
def test_exact_hswd_equals_quantile_bruteforce(n: int) -> None:
    g = torch.Generator().manual_seed(100 + n)
    m = 4
    h = torch.randn(n, m, generator=g, dtype=torch.float64)
    h[:, 3] = torch.round(h[:, 3])  # a column with ties
    expected = sum(w2sq_quantiles(h[:, j].tolist(), exact_target_quantile) for j in range(m)) / m
    assert HSWD(target="exact")(h).item() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert HSWD(target="exact", squared=False)(h).item() == pytest.approx(math.sqrt(expected), rel=1e-12)


@pytest.mark.parametrize("n", [6, 7])
def test_exact_hswd_gradient_equals_sorted_formula(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    h = torch.randn(n, 3, generator=g, dtype=torch.float64, requires_grad=True)
    hswd_exact(h).backward()
    grad = h.grad.clone()

    # the sorted formula of methods.md, written with a full sort, as reference
    h2 = h.detach().clone().requires_grad_(True)
    xs = h2.sort(dim=0).values
    i = torch.arange(1, n + 1, dtype=torch.float64)
    a = ((0.5 - (i - 1) / n).clamp(0, 1.0 / n) * n)[:, None]  # share of [(i−1)/N, i/N) below ½
    ref = (a * (xs + 1) ** 2 + (1 - a) * (xs - 1) ** 2).mean(dim=0).mean()
    ref.backward()
    assert hswd_exact(h.detach()).item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(grad, h2.grad, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# HSWD, sampled target
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5])
def test_hswd_sampled_with_given_target_equals_bruteforce(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    h = torch.randn(n, 3, generator=g, dtype=torch.float64)
    target = torch.tensor([[1.0, -1.0, 1.0]] * (n - 1) + [[-1.0, -1.0, 1.0]], dtype=torch.float64)
    expected = 0.0
    for j in range(3):
        ones = int((target[:, j] > 0).sum())
        expected += w2sq_quantiles(h[:, j].tolist(), sampled_target_quantile(n, ones)) / 3
    assert hswd_sampled(h, target).item() == pytest.approx(expected, rel=1e-12)
    assert sliced_w2(h, target).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 64])
def test_hswd_sampled_equals_sorting_both_columns(n: int) -> None:
    # hswd_sampled avoids the full sort; sliced_w2 sorts h and the target: same value and gradient
    g = torch.Generator().manual_seed(n)
    m = 7
    h = torch.randn(n, m, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.where(torch.rand(n, m, generator=g) < 0.5, -1.0, 1.0).double()
    target[:, 0], target[:, 1] = 1.0, -1.0  # the extreme counts k = N and k = 0
    (g_sort,) = torch.autograd.grad(sliced_w2(h, target), h)
    ties = h.detach().round()
    for fn in (hswd_sampled, _hswd_sampled_by_sort):  # the CPU path and the path for other devices
        (grad,) = torch.autograd.grad(fn(h, target), h)
        assert fn(h, target).item() == pytest.approx(sliced_w2(h, target).item(), rel=1e-12)
        torch.testing.assert_close(grad, g_sort, rtol=1e-12, atol=1e-14)
        assert fn(ties, target).item() == pytest.approx(sliced_w2(ties, target).item(), rel=1e-12)


@pytest.mark.parametrize("n", [4, 5])
def test_hswd_sampled_averages_to_its_expectation(n: int) -> None:
    g = torch.Generator().manual_seed(7 * n)
    m = 3
    h = torch.randn(n, m, generator=g, dtype=torch.float64)
    # exact expectation: the number of +1 in a target column is Binomial(n, ½)
    expected = 0.0
    for j in range(m):
        for k in range(n + 1):
            w = math.comb(n, k) / 2**n
            expected += w * w2sq_quantiles(h[:, j].tolist(), sampled_target_quantile(n, k)) / m
    q = HSWD()
    torch.manual_seed(0)
    draws = torch.tensor([q(h).item() for _ in range(3000)], dtype=torch.float64)
    se = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - expected) < 4.5 * se
    # and the draws really vary (a fresh target each call)
    assert draws.std().item() > 0.01


def test_hswd_sampled_on_balanced_codes_scores_about_0_2_at_n64() -> None:
    # methods.md: even perfectly balanced ±1 codes score about 0.2 at N = 64 with the sampled target
    n = 64
    expected = sum(math.comb(n, k) / 2**n * 4 * abs(k - n // 2) / n for k in range(n + 1))
    assert 0.18 < expected < 0.22
    h = torch.tensor([-1.0, 1.0]).repeat(n // 2)[:, None].repeat(1, 256)
    torch.manual_seed(1)
    assert HSWD()(h).item() == pytest.approx(expected, rel=0.1)


def test_sampled_target_uses_global_rng_and_is_fair() -> None:
    h = torch.randn(16, 8)
    torch.manual_seed(3)
    a = HSWD()(h)
    torch.manual_seed(3)
    b = HSWD()(h)
    assert a.item() == b.item()
    # HSWD draws exactly sample_target(h.shape, ...) from the global RNG, and nothing before it
    torch.manual_seed(3)
    target = sample_target(h.shape, h.device, h.dtype)
    assert hswd_sampled(h, target).item() == pytest.approx(a.item(), rel=1e-6)
    torch.manual_seed(4)
    big = sample_target((20000, 5), torch.device("cpu"), torch.float32)
    assert set(big.unique().tolist()) == {-1.0, 1.0}
    assert abs(big.mean().item()) < 0.02


# ---------------------------------------------------------------------------------------------
# SWD and OT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 8])
def test_swd_on_the_coordinate_axes_equals_hswd(n: int) -> None:
    m = 6
    h = torch.randn(n, m, dtype=torch.float64)
    target = sample_target(h.shape, h.device, h.dtype)
    axes = torch.eye(m, dtype=torch.float64)
    swd_axes = sliced_w2(h, target, axes)
    assert swd_axes.item() == pytest.approx(hswd_sampled(h, target).item(), rel=1e-12)
    # a permutation of the slices only reorders the terms of the mean
    perm = axes[:, torch.randperm(m)]
    assert sliced_w2(h, target, perm).item() == pytest.approx(swd_axes.item(), rel=1e-12)


def test_swd_class_draws_target_then_unit_directions() -> None:
    h = torch.randn(10, 4)
    torch.manual_seed(5)
    value = SWD(num_projections=300)(h)
    torch.manual_seed(5)
    target = sample_target(h.shape, h.device, h.dtype)
    directions = random_directions(4, 300, h.device, h.dtype)
    assert value.item() == pytest.approx(sliced_w2(h, target, directions).item(), rel=1e-5)
    torch.testing.assert_close(directions.norm(dim=0), torch.ones(300))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sorted_rows_equals_torch_sort_with_its_gradient(dtype: torch.dtype) -> None:
    """The CPU fast paths (numpy's sort without a gradient, its argsort with one) give torch.sort's
    values and gradient; bfloat16 (which numpy lacks) goes to torch.sort."""
    x = torch.randn(7, 50, dtype=torch.float64).to(dtype)
    weights = torch.randn(7, 50, dtype=torch.float64).to(dtype)
    with torch.no_grad():
        assert torch.equal(sorted_rows(x), torch.sort(x, dim=1).values)
    grads = []
    for sort in (sorted_rows, lambda t: torch.sort(t, dim=1).values):
        leaf = x.clone().requires_grad_(True)
        values = sort(leaf)
        assert values.dtype == dtype and torch.equal(values.detach(), torch.sort(x, dim=1).values)
        (values * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("n", [1, 2, 4, 5, 6])
def test_ot_equals_bruteforce_over_permutations(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    m = 3
    h = torch.randn(n, m, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.where(torch.rand(n, m, generator=g) < 0.5, -1.0, 1.0).double()
    best, best_perm = math.inf, None
    for perm in itertools.permutations(range(n)):
        cost = sum(((h[i] - target[perm[i]]) ** 2).sum().item() for i in range(n)) / (n * m)
        if cost < best - 1e-12:
            best, best_perm = cost, perm
    value = ot_loss(h, target)
    assert value.item() == pytest.approx(best, rel=1e-12)
    value.backward()
    # gradient of the matched cost: 2 (h_i − B_π(i)) / (N m)
    expected_grad = 2 * (h.detach() - target[list(best_perm)]) / (n * m)
    torch.testing.assert_close(h.grad, expected_grad)
    # the class draws its target exactly like sample_target
    torch.manual_seed(11)
    t2 = sample_target(h.shape, h.device, h.dtype)
    torch.manual_seed(11)
    assert OT()(h).item() == pytest.approx(ot_loss(h, t2).item(), rel=1e-12)


def test_ot_is_zero_for_a_batch_equal_to_its_target_up_to_order() -> None:
    h = torch.randn(7, 5)
    torch.manual_seed(2)
    target = sample_target(h.shape, h.device, h.dtype)
    shuffled = target[torch.randperm(7)]
    assert ot_loss(shuffled, target).item() == 0.0


# ---------------------------------------------------------------------------------------------
# the original terms: values against their one-line formulas
# ---------------------------------------------------------------------------------------------


def test_original_terms_match_their_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    u = 2 * torch.randn(9, 6, generator=g, dtype=torch.float64)
    u[0, 0] = 0.0  # sign(0) = +1
    s = torch.where(u >= 0, 1.0, -1.0).double()
    m = u.shape[1]
    cos = F.cosine_similarity(u.abs(), torch.ones_like(u), dim=1)
    cases = {
        SignL2(): ((u - s) ** 2).mean(),
        UnitL1(): (1 - u.abs()).abs().mean(),
        Cubic(): ((u.abs() - 1).abs() ** 3).mean(),
        Cauchy(): torch.log(1 + (m / 2) * (1 - cos) / 20).mean(),
        Cauchy(gamma=2.0): torch.log(1 + (m / 2) * (1 - cos) / 2).mean(),
        TanhSquared(): ((torch.tanh(u).abs() - 1) ** 2).mean(),
        TanhSquared(apply_tanh=False): ((u.abs() - 1) ** 2).mean(),
        BitBalance(): (u.mean(dim=1) ** 2).mean(),
        BitBalance(p=1): u.mean(dim=1).abs().mean(),
        BitBalance(over="batch"): (u.mean(dim=0) ** 2).mean(),
        LogCosh(): torch.log(torch.cosh(u.abs() - 1)).mean(),
        CosineToSign(): (1 - F.cosine_similarity(u, s, dim=1)).mean(),
    }
    for q, expected in cases.items():
        assert q(u).item() == pytest.approx(expected.item(), rel=1e-12), q
    assert SignL2()(torch.zeros(2, 3)).item() == 1.0  # sign(0) = +1: distance 1 from every zero


def test_log_cosh_is_stable_for_large_inputs() -> None:
    u = torch.tensor([[1e4, -1e4, 200.0]], requires_grad=True)
    value = LogCosh()(u)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(u.grad).all()
    assert value.item() == pytest.approx((1e4 - 1 + 1e4 - 1 + 199 - 3 * math.log(2)) / 3, rel=1e-6)


def test_all_terms_vanish_on_binary_codes_where_they_should() -> None:
    b = torch.tensor([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])
    for q in [SignL2(), UnitL1(), Cubic(), Cauchy(), TanhSquared(apply_tanh=False), BitBalance(), LogCosh()]:
        assert q(b).item() == pytest.approx(0.0, abs=1e-7), q
    assert CosineToSign()(b).item() == pytest.approx(0.0, abs=1e-6)
    assert BitBalance(over="batch")(b).item() == 0.0
    assert HSWD(target="exact")(b).item() == 0.0


# ---------------------------------------------------------------------------------------------
# gradients point towards ±1 and towards balance
# ---------------------------------------------------------------------------------------------


def _descend(q: Quantizer, h0: torch.Tensor, steps: int = 40, lr: float = 0.1) -> torch.Tensor:
    """Gradient descent with a normalised step (scale-free across the terms), decaying linearly to 0."""
    h = h0.clone().requires_grad_(True)
    for t in range(steps):
        (grad,) = torch.autograd.grad(q(h), h)
        with torch.no_grad():
            h -= lr * (1 - t / steps) * grad / grad.pow(2).mean().sqrt().clamp_min(1e-12)
    return h.detach()


@pytest.mark.parametrize("name", DISTRIBUTIONAL)
def test_distributional_gradients_improve_balance_and_quantization(name: str) -> None:
    torch.manual_seed(0)
    h0 = 0.3 + 0.25 * torch.randn(64, 16)  # mostly positive: unbalanced, far from ±1
    h = _descend(ALL[name](), h0)
    assert bit_entropy(h) > bit_entropy(h0) + 0.4
    if name.startswith("hswd"):
        assert quantization_error(h) < quantization_error(h0) - 0.3
    # in low dimension (the batch covers all 2^m corners) every one of them pulls to the corners
    h0 = 0.3 + 0.25 * torch.randn(64, 3)
    h = _descend(ALL[name](), h0)
    assert bit_entropy(h) > bit_entropy(h0) + 0.3
    assert quantization_error(h) < quantization_error(h0) - 0.1


def test_only_hswd_pulls_to_corners_in_high_dimension() -> None:
    # The paper's point (sec. 3.3, fig. 3): random slices of a ±1 target look Gaussian in high
    # dimension, so SWD balances bits but hardly pulls codes to the corners; exact OT to a fresh
    # 64-point sample of 2^16 corners drags each code to a different random corner every step.
    # HSWD compares the marginals bit by bit and does pull to the corners.
    torch.manual_seed(0)
    h0 = 0.3 + 0.25 * torch.randn(64, 16)
    err = {name: quantization_error(_descend(ALL[name](), h0)) for name in ["hswd_sampled", "swd", "ot"]}
    assert err["hswd_sampled"] < err["swd"] - 0.2
    assert err["hswd_sampled"] < err["ot"] - 0.2


@pytest.mark.parametrize(
    "name", ["sign_l2", "unit_l1", "cubic", "cauchy", "tanh_squared", "log_cosh", "cosine_to_sign"]
)
def test_original_terms_reduce_quantization_error(name: str) -> None:
    torch.manual_seed(0)
    h0 = 0.3 + 0.5 * torch.randn(64, 16)
    h = _descend(ALL[name](), h0)
    assert quantization_error(h) < quantization_error(h0) - 0.1


def test_bit_balance_balances() -> None:
    torch.manual_seed(0)
    h0 = 0.3 + 0.25 * torch.randn(64, 16)
    h = _descend(BitBalance(over="batch"), h0)
    assert bit_entropy(h) > bit_entropy(h0) + 0.2
    h = _descend(BitBalance(), h0)
    code_balance = lambda x: (x >= 0).float().mean(dim=1).sub(0.5).abs().mean().item()  # noqa: E731
    assert code_balance(h) < code_balance(h0) - 0.1


# ---------------------------------------------------------------------------------------------
# every class: dtype, device, autocast, edge shapes, construction by name
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL))
def test_bf16_autocast_gives_finite_values_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(12, 16)
    x = 3 * torch.randn(32, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u = layer(x)
        assert u.dtype == torch.bfloat16
        value = ALL[name]()(u)
    assert value.dim() == 0 and value.dtype == torch.float32
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize(
    ("dtype", "out"),
    [(torch.float32, torch.float32), (torch.float64, torch.float64), (torch.float16, torch.float32)],
)
def test_dtype_and_device_are_followed(name: str, dtype: torch.dtype, out: torch.dtype) -> None:
    h = torch.randn(9, 8).to(dtype).requires_grad_(True)
    value = ALL[name]()(h)
    assert value.dtype == out and value.device == h.device and value.dim() == 0
    value.backward()
    assert h.grad.dtype == dtype and torch.isfinite(h.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(ALL))
def test_cuda(name: str) -> None:
    h = torch.randn(33, 16, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.float16):
        value = ALL[name]()(h.half())
    assert value.device == h.device and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(h.grad).all()


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("shape", [(1, 8), (7, 8), (8, 1), (7, 1), (1, 1)])
def test_edge_shapes(name: str, shape: tuple[int, int]) -> None:
    q = ALL[name]()
    n, m = shape
    h = torch.randn(*shape, requires_grad=True)
    if name == "bit_balance" and m == 1:
        with pytest.raises(ValueError, match="at least 2 bits"):
            q(h)
        return
    if name == "bit_balance_batch" and n == 1:
        with pytest.raises(ValueError, match="at least 2 codes"):
            q(h)
        return
    value = q(h)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(h.grad).all()


def test_documented_edge_values() -> None:
    h = torch.tensor([[0.5, -2.0, 0.0]])
    # N = 1, exact target: one point against the two atoms ±1 → h² + 1 per bit
    assert HSWD(target="exact")(h).item() == pytest.approx(((h**2) + 1).mean().item())
    # m = 1: a nonzero scalar is parallel to its sign
    col = torch.tensor([[0.3], [-2.0], [5.0]])
    assert Cauchy()(col).item() == pytest.approx(0.0, abs=1e-7)
    assert CosineToSign()(col).item() == pytest.approx(0.0, abs=1e-7)
    # a zero code has no direction: cos counts as 0
    assert CosineToSign()(torch.zeros(2, 4)).item() == 1.0
    # the root has a zero (not NaN) gradient at an exact zero
    b = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], requires_grad=True)
    HSWD(target="exact", squared=False)(b).backward()
    assert torch.equal(b.grad, torch.zeros_like(b))


@pytest.mark.parametrize("name", list(ALL))
def test_bad_inputs_raise_clear_errors(name: str) -> None:
    q = ALL[name]()
    with pytest.raises(ValueError, match=r"2-D batch of codes \(N, m\)"):
        q(torch.randn(8))
    with pytest.raises(ValueError, match=r"2-D batch of codes \(N, m\)"):
        q(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="N=0"):
        q(torch.randn(0, 4))
    with pytest.raises(TypeError, match="floating-point"):
        q(torch.ones(4, 4, dtype=torch.long))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        HSWD(target="approx")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SWD(num_projections=0)
    with pytest.raises(ValueError):
        Cauchy(gamma=0.0)
    with pytest.raises(ValueError):
        BitBalance(p=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "cls", "attrs"),
    [
        (["HSWD", "--q.target", "exact"], HSWD, {"target": "exact", "squared": True}),
        (["HSWD", "--q.squared", "false"], HSWD, {"target": "sampled", "squared": False}),
        (["SWD", "--q.num_projections", "10000"], SWD, {"num_projections": 10000}),
        (["OT"], OT, {}),
        (["SignL2"], SignL2, {}),
        (["UnitL1"], UnitL1, {}),
        (["Cubic"], Cubic, {}),
        (["Cauchy", "--q.gamma", "5"], Cauchy, {"gamma": 5.0}),
        (["TanhSquared", "--q.apply_tanh", "false"], TanhSquared, {"apply_tanh": False}),
        (["BitBalance", "--q.p", "1", "--q.over", "batch"], BitBalance, {"p": 1, "over": "batch"}),
        (["LogCosh"], LogCosh, {}),
        (["CosineToSign"], CosineToSign, {}),
    ],
)
def test_constructible_by_name_with_jsonargparse(args: list[str], cls: type, attrs: dict) -> None:
    from jsonargparse import ArgumentParser

    p = ArgumentParser(exit_on_error=False)
    p.add_argument("--q", type=Quantizer)
    cfg = p.parse_args(["--q", *args])
    q = p.instantiate_classes(cfg).q
    assert type(q) is cls
    for key, value in attrs.items():
        assert getattr(q, key) == value
    assert torch.isfinite(q(torch.randn(6, 4)))


def test_jsonargparse_rejects_bad_choices() -> None:
    from jsonargparse import ArgumentParser

    p = ArgumentParser(exit_on_error=False)
    p.add_argument("--q", type=Quantizer)
    with pytest.raises(Exception, match="target"):
        p.parse_args(["--q", "HSWD", "--q.target", "approx"])


class _Model:
    """Stands in for the training module: a typed ``quantizer`` argument, as LightningCLI sees it."""

    def __init__(self, quantizer: Quantizer | None = None, quantization_weight: float = 0.1) -> None:
        self.quantizer = quantizer
        self.quantization_weight = quantization_weight


def test_nested_cli_form_model_quantizer() -> None:
    from jsonargparse import ArgumentParser

    p = ArgumentParser(exit_on_error=False)
    p.add_class_arguments(_Model, "model")
    cfg = p.parse_args(["--model.quantizer", "HSWD", "--model.quantizer.target", "exact"])
    model = p.instantiate_classes(cfg).model
    assert isinstance(model.quantizer, HSWD) and model.quantizer.target == "exact"
    yaml_text = "model:\n  quantizer:\n    class_path: SWD\n    init_args:\n      num_projections: 50\n"
    yaml_cfg = p.parse_string(yaml_text)
    model = p.instantiate_classes(yaml_cfg).model
    assert isinstance(model.quantizer, SWD) and model.quantizer.num_projections == 50


def test_sign_convention_and_angle_to_the_binary_code() -> None:
    x = torch.tensor([[0.0, -2.0], [3.0, 4.0], [0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    assert sign_pm1(x).tolist() == [[1, -1], [1, 1], [1, 1], [1, -1]]  # sign(0) = +1
    # cos θ = ‖x‖₁ / (‖x‖₂ √m): 2/(2√2), 7/(5√2), a zero row π/2, a binary code 0
    expected = [math.acos(1 / math.sqrt(2)), math.acos(7 / (5 * math.sqrt(2))), math.pi / 2, 0.0]
    torch.testing.assert_close(quantization_angles(x), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(cosine_to_sign(x), F.cosine_similarity(x.abs(), torch.ones_like(x), dim=1))
