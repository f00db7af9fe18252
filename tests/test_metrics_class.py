"""RetrievalMetric (torchmetrics) in one process: keys, values, dedup, order independence, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from hashbench.metrics import (
    RetrievalMetric,
    bit_correlation,
    bit_entropy,
    code_usage,
    graded_metrics,
    mean_average_precision,
    pr_curve,
    precision_at_k,
    precision_within_radius,
    quantization_error,
)


def data(nq=40, nx=500, m=16, c=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    hq, hx = torch.randn(nq, m, generator=g), torch.randn(nx, m, generator=g)
    hx[:7] = hx[7:14]  # duplicated codes: code_usage < 1
    hx[0, :3] = 0.0  # sign(0) = +1
    yq = (torch.rand(nq, c, generator=g) < 0.25).float()
    yx = (torch.rand(nx, c, generator=g) < 0.25).float()
    yq[0] = 0  # no relevant item
    return hq, yq, hx, yx


def keys(bits, top_k, pk=1000, r=2):
    return {
        "mAP@all" if top_k is None else f"mAP@{top_k}",
        f"P@{pk}",
        f"P@H<={r}",
        f"empty_ball@H<={r}",
        "quantization_error",
        "bit_entropy",
        "bit_correlation",
        "code_usage",
        "curve/pr_precision",
        "curve/pr_recall",
        "curve/bit_balance",
        "curve/hamming_hist_relevant",
        "curve/hamming_hist_irrelevant",
    }


def feed(metric, hq, yq, hx, yx, batch=64, perm_q=None, perm_x=None):
    iq = torch.arange(len(hq)) if perm_q is None else perm_q
    ix = torch.arange(len(hx)) if perm_x is None else perm_x
    for s in range(0, len(ix), batch):
        j = ix[s : s + batch]
        metric.update(hx[j], yx[j], j, role="database")
    for s in range(0, len(iq), batch):
        j = iq[s : s + batch]
        metric.update(hq[j], yq[j], j, role="query")


@pytest.mark.parametrize("top_k", [None, 100, 100_000])
@pytest.mark.parametrize("ties", ["index", "expected"])
def test_metric_matches_functional(top_k, ties):
    hq, yq, hx, yx = data()
    m = hq.shape[1]
    metric = RetrievalMetric(bits=m, top_k=top_k, precision_k=50, radius=2, ties=ties)
    feed(metric, hq, yq, hx, yx)
    out = metric.compute()
    assert set(out) == keys(m, top_k, 50, 2)
    map_key = "mAP@all" if top_k is None else f"mAP@{top_k}"
    for k, v in out.items():
        assert isinstance(v, torch.Tensor)
        assert v.dim() == (1 if k.startswith("curve/") else 0), k
    assert torch.equal(out[map_key], mean_average_precision(hq, yq, hx, yx, top_k=top_k, ties=ties))
    assert torch.equal(out["P@50"], precision_at_k(hq, yq, hx, yx, k=50, ties=ties))
    prec, empty = precision_within_radius(hq, yq, hx, yx, radius=2, return_empty_fraction=True)
    assert torch.equal(out["P@H<=2"], prec) and torch.equal(out["empty_ball@H<=2"], empty)
    assert 0 < float(empty) < 1
    p, r = pr_curve(hq, yq, hx, yx)
    assert torch.equal(out["curve/pr_precision"], p) and torch.equal(out["curve/pr_recall"], r)
    assert float(out["quantization_error"]) == pytest.approx(float(quantization_error(hx)), abs=1e-6)
    assert torch.equal(out["bit_entropy"], bit_entropy(hx))
    assert torch.equal(out["bit_correlation"], bit_correlation(hx))
    assert float(out["code_usage"]) == pytest.approx(float(code_usage(hx))) and float(out["code_usage"]) < 1
    assert out["curve/bit_balance"].tolist() == pytest.approx((hx >= 0).float().mean(0).tolist())
    rel, irr = out["curve/hamming_hist_relevant"], out["curve/hamming_hist_irrelevant"]
    assert rel.shape == irr.shape == (m + 1,)
    assert int(rel.sum() + irr.sum()) == len(hq) * len(hx)
    n_rel = int(((yq @ yx.t()) > 0).sum())
    assert int(rel.sum()) == n_rel


@pytest.mark.parametrize("top_k", [None, 100])
def test_multi_label_adds_graded_metrics(top_k):
    """``multi_label=True`` adds ACG, NDCG and WAP at K, equal to the functional ones; the rest unchanged."""
    hq, yq, hx, yx = data(seed=4)
    plain = RetrievalMetric(bits=16, top_k=top_k)
    graded = RetrievalMetric(bits=16, top_k=top_k, multi_label=True)
    for metric in (plain, graded):
        feed(metric, hq, yq, hx, yx)
    a, b = plain.compute(), graded.compute()
    k = "all" if top_k is None else top_k
    names = [f"ACG@{k}", f"NDCG@{k}", f"WAP@{k}"]
    assert set(b) == set(a) | set(names)
    for name, value in zip(names, graded_metrics(hq, yq, hx, yx, top_k=top_k), strict=True):
        assert torch.equal(b[name], value), name
    assert all(torch.equal(a[key], b[key]) for key in a)
    with pytest.raises(ValueError, match="ties='index'"):
        RetrievalMetric(bits=16, top_k=10, ties="expected", multi_label=True)


def test_engines_agree():
    """The torch engine (the CUDA path), chosen by ``engine=``, gives the compiled engine's figures."""
    hq, yq, hx, yx = data(seed=3)
    out = {}
    for engine in ("compiled", "torch"):
        for ties, multi_label in (("expected", False), ("index", True)):
            metric = RetrievalMetric(bits=16, top_k=64, ties=ties, engine=engine, multi_label=multi_label)
            feed(metric, hq, yq, hx, yx)
            out[engine] = {f"{ties}/{k}": v for k, v in metric.compute().items()} | out.get(engine, {})
    for k, v in out["compiled"].items():
        assert torch.allclose(v, out["torch"][k], atol=1e-6, rtol=0), k


def test_order_and_duplicates_do_not_matter():
    hq, yq, hx, yx = data(seed=1)
    ref = RetrievalMetric(bits=16, top_k=64)
    feed(ref, hq, yq, hx, yx)
    expected = ref.compute()

    g = torch.Generator().manual_seed(5)
    metric = RetrievalMetric(bits=16, top_k=64)
    perm_q, perm_x = torch.randperm(len(hq), generator=g), torch.randperm(len(hx), generator=g)
    # DistributedSampler-like padding: some indices are fed twice
    perm_q = torch.cat([perm_q, perm_q[:3]])
    perm_x = torch.cat([perm_x, perm_x[:11]])
    feed(metric, hq, yq, hx, yx, batch=37, perm_q=perm_q, perm_x=perm_x)
    out = metric.compute()
    assert out.keys() == expected.keys()
    for k in out:
        assert torch.allclose(out[k], expected[k], atol=1e-6, rtol=0), k
        if k != "quantization_error":  # float mean over a permuted set may differ in the last ulp
            assert torch.equal(out[k], expected[k]), k


def test_low_precision_inputs_and_reset():
    hq, yq, hx, yx = data(seed=2)
    metric = RetrievalMetric(bits=16, top_k=None)
    feed(metric, hq.to(torch.bfloat16), yq.half(), hx.to(torch.bfloat16), yx.half())
    out = metric.compute()
    # the sign of a bf16 value equals the sign of the float value it was rounded from
    assert torch.equal(out["mAP@all"], mean_average_precision(hq, yq, hx, yx))
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"), pytest.raises(ValueError, match="query"):
        metric.compute()


def test_missing_role_and_bad_arguments():
    hq, yq, hx, yx = data()
    metric = RetrievalMetric(bits=16, top_k=10)
    metric.update(hx, yx, torch.arange(len(hx)), role="database")
    with pytest.raises(ValueError, match="no query data"):
        metric.compute()
    metric = RetrievalMetric(bits=16, top_k=10)
    metric.update(hq, yq, torch.arange(len(hq)), role="query")
    with pytest.raises(ValueError, match="no database data"):
        metric.compute()
    with pytest.raises(ValueError, match="role"):
        metric.update(hq, yq, torch.arange(len(hq)), role="train")
    with pytest.raises(ValueError, match="bits"):
        RetrievalMetric(bits=16, top_k=10).update(hq[:, :8], yq, torch.arange(len(hq)), role="query")
    with pytest.raises(ValueError, match="ties"):
        RetrievalMetric(bits=16, top_k=10, ties="random")
    with pytest.raises(ValueError, match="engine"):
        RetrievalMetric(bits=16, top_k=10, engine="gpu")


def test_states_are_packed():
    hq, yq, hx, yx = data(m=70)
    metric = RetrievalMetric(bits=70, top_k=None)
    feed(metric, hq, yq, hx, yx)
    assert all(t.dtype == torch.uint8 and t.shape[1] == 9 for t in metric.database_codes)
    assert float(metric.compute()["mAP@all"]) == pytest.approx(float(mean_average_precision(hq, yq, hx, yx)))


def test_import_does_not_load_torchmetrics_or_lightning():
    """``import hashbench.metrics`` (the functional metrics) does not import torchmetrics or Lightning;
    ``RetrievalMetric`` is imported on first access (as the other tests here do)."""
    loaded = "[m for m in ('torchmetrics', 'lightning') if m in sys.modules]"
    code = f"import sys, hashbench.metrics; print({loaded})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
