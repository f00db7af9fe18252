"""Functional retrieval metrics against a plain brute-force reference (Python loops)."""

from __future__ import annotations

import fractions
import itertools
import math

import pytest
import torch

from hashbench.metrics import (
    bit_balance,
    bit_correlation,
    bit_entropy,
    code_usage,
    graded_metrics,
    hamming_distance,
    mean_average_precision,
    pack_codes,
    pr_curve,
    precision_at_k,
    precision_within_radius,
    quantization_error,
    rank,
    unpack_codes,
)

# ----------------------------------------------------------------------------- brute-force reference


def _bits(codes):
    return [[1 if v >= 0 else 0 for v in row] for row in codes.tolist()]


def _relevant(yq, yx):
    if isinstance(yq, int):
        return yq == yx
    return any(a and b for a, b in zip(yq, yx, strict=True))


_PAIRS_CACHE: dict = {}


def _dists_rels(qc, ql, xc, xl):
    """Per query: (Hamming distance to each database item, relevance of each item), by plain loops."""
    key = tuple(hash(tuple(t.flatten().tolist())) for t in (qc, ql, xc, xl))
    if key in _PAIRS_CACHE:
        return _PAIRS_CACHE[key]
    qb, xb, qy, xy = _bits(qc), _bits(xc), ql.tolist(), xl.tolist()
    out = []
    for i in range(len(qb)):
        d = [sum(a != b for a, b in zip(qb[i], xb[j], strict=True)) for j in range(len(xb))]
        r = [_relevant(qy[i], xy[j]) for j in range(len(xb))]
        out.append((d, r))
    _PAIRS_CACHE[key] = out
    return out


def _ap_of_ranking(rels, k):
    hits, total = 0, 0.0
    for pos, rel in enumerate(rels[:k], start=1):
        if rel:
            hits += 1
            total += hits / pos
    return total / hits if hits else 0.0


def ref_map(qc, ql, xc, xl, k=None):
    aps = []
    for d, r in _dists_rels(qc, ql, xc, xl):
        kk = len(d) if k is None else min(k, len(d))
        order = sorted(range(len(d)), key=lambda j: (d[j], j))  # ties by database index
        aps.append(_ap_of_ranking([r[j] for j in order], kk))
    return sum(aps) / len(aps)


def ref_precision_at_k(qc, ql, xc, xl, k):
    ps = []
    for d, r in _dists_rels(qc, ql, xc, xl):
        kk = min(k, len(d))
        order = sorted(range(len(d)), key=lambda j: (d[j], j))
        ps.append(sum(r[j] for j in order[:kk]) / kk)
    return sum(ps) / len(ps)


def ref_radius(qc, ql, xc, xl, radius):
    ps, empty = [], 0
    for d, r in _dists_rels(qc, ql, xc, xl):
        ball = [j for j in range(len(d)) if d[j] <= radius]
        if not ball:
            empty += 1
            ps.append(0.0)
        else:
            ps.append(sum(r[j] for j in ball) / len(ball))
    return sum(ps) / len(ps), empty / len(ps)


def ref_pr(qc, ql, xc, xl, m):
    pairs = _dists_rels(qc, ql, xc, xl)
    total_rel = sum(sum(r) for _, r in pairs)
    prec, rec = [], []
    for radius in range(m + 1):
        got = sum(1 for d, _ in pairs for dj in d if dj <= radius)
        hit = sum(1 for d, r in pairs for dj, rj in zip(d, r, strict=True) if dj <= radius and rj)
        prec.append(hit / got if got else 0.0)
        rec.append(hit / total_rel if total_rel else 0.0)
    return prec, rec


def ref_expected_ap(d, r, k):
    """Average of AP@k over every order of the items at equal distance (all tie permutations)."""
    buckets = [[j for j in range(len(d)) if d[j] == v] for v in sorted(set(d))]
    total, count = 0.0, 0
    for perms in itertools.product(*(itertools.permutations(b) for b in buckets)):
        order = [j for p in perms for j in p]
        total += _ap_of_ranking([r[j] for j in order], min(k, len(d)))
        count += 1
    return total / count


# ----------------------------------------------------------------------------- data


@pytest.fixture(params=["compiled", "torch"])
def engine(request):
    """Ranking tests run on both engines: the compiled CPU pass and the torch pass (the CUDA path)."""
    return request.param


def make_case(q=25, n=300, m=12, c=5, multi=False, seed=0, continuous=False):
    """Random codes with few bits (many ties); some queries with no relevant database item."""
    g = torch.Generator().manual_seed(seed)
    if continuous:
        qc, xc = torch.randn(q, m, generator=g), torch.randn(n, m, generator=g)
    else:
        qc = torch.randint(0, 2, (q, m), generator=g).float() * 2 - 1
        xc = torch.randint(0, 2, (n, m), generator=g).float() * 2 - 1
    if multi:
        ql = (torch.rand(q, c, generator=g) < 0.3).float()
        xl = (torch.rand(n, c, generator=g) < 0.3).float()
        ql[0] = 0  # a query without labels: no relevant item
        ql[1] = 0
        ql[1, c - 1] = 1
        xl[:, c - 1] = 0  # label c-1 never occurs in the database
    else:
        ql = torch.randint(0, c, (q,), generator=g)
        xl = torch.randint(0, c - 1, (n,), generator=g)
        ql[0] = c - 1  # a class absent from the database
    return qc, ql, xc, xl


CASES = [
    dict(m=5, multi=False),
    dict(m=12, multi=False, continuous=True),
    dict(m=5, multi=True),
    dict(m=12, multi=True),
    dict(m=16, multi=True, c=3),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("k", [None, 1, 37, 300, 10_000])
def test_map_matches_bruteforce(case, k, engine):
    qc, ql, xc, xl = make_case(**case)
    got = mean_average_precision(qc, ql, xc, xl, top_k=k, engine=engine)
    assert got.dim() == 0
    assert float(got) == pytest.approx(ref_map(qc, ql, xc, xl, k), abs=1e-6)


def ref_graded(qc, ql, xc, xl, k):
    """Per query (ACG@k, NDCG@k, WAP@k) with grades = shared labels, ranking by (distance, index)."""
    out = []
    all_grades = (ql.double() @ xl.double().T).long().tolist()  # shared labels of every pair
    for (d, _), grades in zip(_dists_rels(qc, ql, xc, xl), all_grades, strict=True):
        kk = len(d) if k is None else min(k, len(d))
        order = sorted(range(len(d)), key=lambda j: (d[j], j))
        top = [grades[j] for j in order[:kk]]
        ideal = sorted(grades, reverse=True)[:kk]
        dcg = sum((2**g - 1) / math.log2(1 + i) for i, g in enumerate(top, start=1))
        idcg = sum((2**g - 1) / math.log2(1 + i) for i, g in enumerate(ideal, start=1))
        acg_at = [sum(top[:i]) / i for i in range(1, kk + 1)]
        n_rel = sum(g > 0 for g in top)
        wap = sum(a for a, g in zip(acg_at, top, strict=True) if g > 0) / n_rel if n_rel else 0.0
        out.append((sum(top) / kk, dcg / idcg if idcg else 0.0, wap))
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c["multi"]])
@pytest.mark.parametrize("k", [None, 1, 37, 10_000])
def test_graded_metrics_match_bruteforce(case, k, engine):
    """ACG, NDCG and WAP (multi-label, grades = shared labels) per query equal the brute force."""
    qc, ql, xc, xl = make_case(**case)
    res = rank(qc, ql, xc, xl, top_k=k, precision_k=1, graded=True, engine=engine)
    ref = ref_graded(qc, ql, xc, xl, k)
    for i, name in enumerate(("acg", "ndcg", "wap")):
        assert getattr(res, name).tolist() == pytest.approx([r[i] for r in ref], abs=1e-12), name
    means = graded_metrics(qc, ql, xc, xl, top_k=k, engine=engine)
    assert [float(v) for v in means] == pytest.approx([sum(r[i] for r in ref) / len(ref) for i in range(3)])
    assert float(means[1]) > 0 and ref[0] == (0.0, 0.0, 0.0)  # the query without labels scores 0


def test_graded_metrics_need_multi_hot_labels_and_index_ties():
    qc, ql, xc, xl = make_case(m=5, multi=False)
    with pytest.raises(ValueError, match="multi-hot"):
        graded_metrics(qc, ql, xc, xl)
    qc, ql, xc, xl = make_case(m=5, multi=True)
    with pytest.raises(ValueError, match="ties='index'"):
        rank(qc, ql, xc, xl, ties="expected", graded=True)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("k", [1, 10, 150, 5000])
def test_precision_at_k_matches_bruteforce(case, k, engine):
    qc, ql, xc, xl = make_case(**case)
    assert float(precision_at_k(qc, ql, xc, xl, k=k, engine=engine)) == pytest.approx(
        ref_precision_at_k(qc, ql, xc, xl, k), abs=1e-6
    )


def test_query_without_relevant_items_scores_zero(engine):
    qc, ql, xc, xl = make_case(m=12, multi=True)
    # the first two queries have no relevant database item: AP 0 but they count in the mean
    res = rank(qc, ql, xc, xl, top_k=None, engine=engine)
    assert res.ap[0] == 0 and res.ap[1] == 0
    assert float(res.ap.mean()) == pytest.approx(ref_map(qc, ql, xc, xl), abs=1e-6)
    single = mean_average_precision(qc[:1], ql[:1], xc, xl, engine=engine)
    assert float(single) == 0.0


@pytest.mark.parametrize("m", [5, 12])
def test_packed_and_unpacked_inputs_agree(m, engine):
    qc, ql, xc, xl = make_case(m=m, multi=True, continuous=True)
    qp, xp = pack_codes(qc), pack_codes(xc)
    assert qp.dtype == torch.uint8 and qp.shape == (qc.shape[0], math.ceil(m / 8))
    for fn, kw in [
        (mean_average_precision, dict(top_k=40)),
        (mean_average_precision, dict(top_k=None, ties="expected")),
        (precision_at_k, dict(k=17)),
        (precision_within_radius, dict(radius=2)),
    ]:
        kw["engine"] = engine
        a = fn(qc, ql, xc, xl, **kw)
        assert torch.equal(a, fn(qp, ql, xp, xl, bits=m, **kw))
        assert torch.equal(a, fn(qp, ql, xc, xl, bits=m, **kw))  # mixed forms
    pa, ra = pr_curve(qc, ql, xc, xl, engine=engine)
    pb, rb = pr_curve(qp, ql, xp, xl, bits=m, engine=engine)
    assert torch.equal(pa, pb) and torch.equal(ra, rb)


def test_labels_as_indices_or_one_hot_agree(engine):
    qc, ql, xc, xl = make_case(m=12, multi=False)
    c = int(max(ql.max(), xl.max())) + 1
    qh, xh = torch.nn.functional.one_hot(ql, c), torch.nn.functional.one_hot(xl, c)
    for k in (None, 50):
        a = mean_average_precision(qc, ql, xc, xl, top_k=k, engine=engine)
        assert torch.equal(a, mean_average_precision(qc, qh, xc, xh, top_k=k, engine=engine))
        assert torch.equal(a, mean_average_precision(qc, ql, xc, xh, top_k=k, engine=engine))


def test_packing_roundtrip_and_sign_of_zero():
    codes = torch.tensor([[0.0, -0.0, -1e-8, 3.0, -2.0, 1.0, 0.5, -0.5, 7.0, -7.0, 0.0]])
    packed = pack_codes(codes)
    # ≥ 0 (including -0.0, which compares equal to 0) is bit 1, MSB first, padding zero
    assert packed.tolist() == [[0b11010110, 0b10100000]]
    assert unpack_codes(packed, 11).tolist() == [[1, 1, -1, 1, -1, 1, 1, -1, 1, -1, 1]]
    g = torch.Generator().manual_seed(3)
    for m in (1, 7, 8, 9, 64, 70):
        x = torch.randn(40, m, generator=g)
        assert torch.equal(unpack_codes(pack_codes(x), m), torch.where(x >= 0, 1.0, -1.0))
    with pytest.raises(ValueError, match="bits"):
        mean_average_precision(packed, torch.tensor([0]), packed, torch.tensor([0]))
    with pytest.raises(ValueError, match="bytes"):
        mean_average_precision(packed, torch.tensor([0]), packed, torch.tensor([0]), bits=20)


@pytest.mark.parametrize("m", [5, 12, 64, 70])
def test_hamming_distance_bruteforce(m):
    g = torch.Generator().manual_seed(m)
    a, b = torch.randn(9, m, generator=g), torch.randn(13, m, generator=g)
    a[0, : m // 2] = 0.0  # sign(0) = +1
    ab, bb = _bits(a), _bits(b)
    ref = [[sum(x != y for x, y in zip(r, s, strict=True)) for s in bb] for r in ab]
    got = hamming_distance(pack_codes(a), pack_codes(b), bits=m)
    assert got.dtype in (torch.int32, torch.int64)
    assert got.tolist() == ref
    assert hamming_distance(a, b).tolist() == ref  # real inputs are packed on the fly


def test_expected_ties_equal_average_over_all_permutations(engine):
    # database of 7 items, 3 bits: buckets of tied items; enumerate every order of the ties
    xc = torch.tensor(
        [[1, 1, 1], [1, 1, -1], [1, 1, 1], [-1, 1, -1], [1, 1, -1], [1, -1, 1], [1, 1, 1]], dtype=torch.float
    )
    xl = torch.tensor([0, 1, 1, 0, 0, 1, 0])
    qc = torch.tensor([[1, 1, 1], [1, 1, -1], [-1, -1, -1], [1, -1, 1]], dtype=torch.float)
    ql = torch.tensor([0, 1, 0, 2])  # the last query has no relevant item
    pairs = _dists_rels(qc, ql, xc, xl)
    for k in range(1, 9):
        ref = [ref_expected_ap(d, r, k) for d, r in pairs]
        got = rank(qc, ql, xc, xl, top_k=k, ties="expected", engine=engine).ap
        assert got.tolist() == pytest.approx(ref, abs=1e-12), k
        assert float(
            mean_average_precision(qc, ql, xc, xl, top_k=k, ties="expected", engine=engine)
        ) == pytest.approx(sum(ref) / len(ref), abs=1e-6)
        # expected P@k is the average over the permutations, too
        exp_p = float(precision_at_k(qc, ql, xc, xl, k=k, ties="expected", engine=engine))
        assert exp_p == pytest.approx(
            sum(
                sum(r[j] for j in range(len(d)) if d[j] < sorted(d)[min(k, 7) - 1])
                + (min(k, 7) - sum(dj < sorted(d)[min(k, 7) - 1] for dj in d))
                * sum(r[j] for j in range(len(d)) if d[j] == sorted(d)[min(k, 7) - 1])
                / sum(dj == sorted(d)[min(k, 7) - 1] for dj in d)
                for d, r in pairs
            )
            / len(pairs)
            / min(k, 7),
            abs=1e-6,
        )
    # ties matter here: index tie-breaking gives a different AP than the expectation
    assert not torch.allclose(
        rank(qc, ql, xc, xl, ties="index", engine=engine).ap,
        rank(qc, ql, xc, xl, ties="expected", engine=engine).ap,
    )


def test_expected_ties_on_random_multilabel_case(engine):
    g = torch.Generator().manual_seed(11)
    xc = torch.randint(0, 2, (8, 2), generator=g).float() * 2 - 1
    qc = torch.randint(0, 2, (5, 2), generator=g).float() * 2 - 1
    xl = (torch.rand(8, 3, generator=g) < 0.4).float()
    ql = (torch.rand(5, 3, generator=g) < 0.5).float()
    pairs = _dists_rels(qc, ql, xc, xl)
    for k in (1, 3, 5, 8):
        ref = [ref_expected_ap(d, r, k) for d, r in pairs]
        assert rank(qc, ql, xc, xl, top_k=k, ties="expected", engine=engine).ap.tolist() == pytest.approx(
            ref, abs=1e-12
        )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_precision_within_radius_matches_bruteforce(case, radius, engine):
    qc, ql, xc, xl = make_case(**case)
    prec, empty = precision_within_radius(
        qc, ql, xc, xl, radius=radius, return_empty_fraction=True, engine=engine
    )
    ref_p, ref_e = ref_radius(qc, ql, xc, xl, radius)
    assert float(prec) == pytest.approx(ref_p, abs=1e-6)
    assert float(empty) == pytest.approx(ref_e, abs=1e-6)


def test_precision_within_radius_empty_balls(engine):
    m = 12
    xc = torch.ones(6, m)  # every database code is all +1
    qc = torch.ones(3, m)
    qc[1] = -1  # distance 12 from everything: empty ball
    qc[2, :3] = -1  # distance 3: empty at radius 2
    xl = torch.tensor([0, 0, 1, 1, 1, 2])
    ql = torch.tensor([1, 1, 1])
    prec, empty = precision_within_radius(qc, ql, xc, xl, radius=2, return_empty_fraction=True, engine=engine)
    assert float(prec) == pytest.approx((3 / 6 + 0 + 0) / 3)
    assert float(empty) == pytest.approx(2 / 3)
    assert float(precision_within_radius(qc, ql, xc, xl, radius=3, engine=engine)) == pytest.approx(
        (0.5 + 0 + 0.5) / 3
    )


@pytest.mark.parametrize("case", CASES)
def test_pr_curve_matches_bruteforce(case, engine):
    qc, ql, xc, xl = make_case(**case)
    m = qc.shape[1]
    prec, rec = pr_curve(qc, ql, xc, xl, engine=engine)
    ref_p, ref_r = ref_pr(qc, ql, xc, xl, m)
    assert prec.shape == rec.shape == (m + 1,)
    assert prec.tolist() == pytest.approx(ref_p, abs=1e-6)
    assert rec.tolist() == pytest.approx(ref_r, abs=1e-6)
    assert rec[-1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- diagnostics


def test_quantization_error_hand_made():
    assert float(quantization_error(torch.tensor([[1.0, -1.0], [-2.0, 2.0]]))) == pytest.approx(0.0, abs=1e-6)
    # (1, 0) vs sign = (1, 1): 45°; (0, 0) has no direction: 90°; (3, -1) vs (1, -1): cos = 4/(√10 √2)
    h = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, -1.0]])
    expected = (math.pi / 4 + math.pi / 2 + math.acos(4 / (math.sqrt(10) * math.sqrt(2)))) / 3
    assert float(quantization_error(h)) == pytest.approx(expected, abs=1e-6)
    assert float(quantization_error(h.to(torch.bfloat16))) == pytest.approx(expected, abs=1e-3)
    assert float(quantization_error(pack_codes(h), bits=2)) == 0.0


def test_bit_entropy_and_balance_hand_made():
    codes = torch.tensor([[1, 1, -1], [1, -1, -1], [1, 1, -1], [1, -1, -1]], dtype=torch.float)
    assert bit_balance(codes).tolist() == [1.0, 0.5, 0.0]
    assert float(bit_entropy(codes)) == pytest.approx(1 / 3)
    p = 0.25
    skew = torch.tensor([[1.0], [-1.0], [-1.0], [-1.0]])
    assert float(bit_entropy(skew)) == pytest.approx(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))
    assert float(bit_entropy(pack_codes(codes), bits=3)) == pytest.approx(1 / 3)


def test_bit_correlation_hand_made():
    independent = torch.tensor([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=torch.float)
    assert float(bit_correlation(independent)) == pytest.approx(0.0, abs=1e-7)
    copy = torch.tensor([[1, 1, -1], [-1, -1, 1], [1, 1, -1], [-1, -1, 1]], dtype=torch.float)
    assert float(bit_correlation(copy)) == pytest.approx(1.0)  # ±copies: |corr| = 1 everywhere
    partial = torch.tensor([[1, 1, 1], [1, 1, 1], [-1, 1, 1], [-1, -1, 1]], dtype=torch.float)
    # bits 0,1: corr = 1/√3; bit 2 is constant: its pairs count as 0 -> mean over 6 off-diagonals
    assert float(bit_correlation(partial)) == pytest.approx(2 * (1 / math.sqrt(3)) / 6, abs=1e-6)
    assert float(bit_correlation(pack_codes(partial), bits=3)) == pytest.approx(
        2 / math.sqrt(3) / 6, abs=1e-6
    )


@pytest.mark.parametrize("m", [3, 64, 70])
def test_code_usage_hand_made(m):
    base = torch.ones(5, m)
    base[1, 0] = -1
    base[2, m - 1] = -1
    base[3, 0] = -1  # = row 1
    # rows: all+1, {0}, {m-1}, {0} (dup), all+1 (dup) -> 3 distinct of 5
    assert float(code_usage(base)) == pytest.approx(3 / 5)
    assert float(code_usage(pack_codes(base), bits=m)) == pytest.approx(3 / 5)


# ----------------------------------------------------------------------------- internal paths


def _per_query_ref(qc, ql, xc, xl, k, pk):
    aps, hits = [], []
    for d, r in _dists_rels(qc, ql, xc, xl):
        order = sorted(range(len(d)), key=lambda j: (d[j], j))
        aps.append(_ap_of_ranking([r[j] for j in order], min(k, len(d))))
        hits.append(sum(r[j] for j in order[: min(pk, len(d))]))
    return aps, hits


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "case",
    [
        dict(q=7, n=2503, m=5, multi=True, seed=4),  # several 1,024-item blocks, a ragged last one
        dict(q=70, n=211, m=70, c=70, multi=True, seed=5),  # two 64-bit code words, two label words
        dict(q=70, n=211, m=130, c=12, multi=False, seed=6),  # three code words, class indices
    ],
)
def test_ranking_blocks_words_and_threads(workers, case, engine):
    """Database blocks, multi-word codes and labels, many queries on several threads: per-query AP and
    hits equal the brute force."""
    from hashbench.metrics.packing import normalize_labels
    from hashbench.metrics.ranking import ranking_pass

    qc, ql, xc, xl = make_case(**case)
    qp, xp = pack_codes(qc), pack_codes(xc)
    yq, yx, single = normalize_labels(ql, xl)
    n, m = case["n"], case["m"]
    for k, pk in [(30, 7), (5, 60), (n, 10), (None, n - 1)]:
        res = ranking_pass(
            qp, yq, xp, yx, single, m, k, pk, workers=workers, engine=engine, graded=not single
        )
        ref_ap, ref_hits = _per_query_ref(qc, ql, xc, xl, k or n, pk)
        assert res.ap.tolist() == pytest.approx(ref_ap, abs=1e-12)
        assert res.hits.tolist() == ref_hits
        if not single:  # both passes (K < N/2) and the single pass (K >= N/2) with grades
            ref = ref_graded(qc, ql, xc, xl, k)
            assert res.wap.tolist() == pytest.approx([r[2] for r in ref], abs=1e-12)
            assert res.ndcg.tolist() == pytest.approx([r[1] for r in ref], abs=1e-12)


def _expected_ap_by_bucket(d, r, k):
    """Tie-aware AP@k, written out: exact hypergeometric weights (integers) for the bucket cut by rank k
    and, inside a bucket, the expectation position by position (no harmonic numbers)."""

    def bucket(nb, rb, size, rel):
        if rel == 0:
            return 0.0
        frac = (rel - 1) / (size - 1) if size > 1 else 0.0
        return sum(rel / size * (rb + 1 + (p - 1) * frac) / (nb + p) for p in range(1, size + 1))

    k = min(k, len(d))
    nb = rb = 0
    a_full = 0.0
    for v in sorted(set(d)):
        n_d = sum(1 for x in d if x == v)
        r_d = sum(1 for x, y in zip(d, r, strict=True) if x == v and y)
        if nb + n_d < k:
            a_full += bucket(nb, rb, n_d, r_d)
            nb, rb = nb + n_d, rb + r_d
            continue
        t = k - nb
        total = 0.0
        for j in range(max(0, t - (n_d - r_d)), min(r_d, t) + 1):
            p = fractions.Fraction(math.comb(r_d, j) * math.comb(n_d - r_d, t - j), math.comb(n_d, t))
            if rb + j:
                total += float(p) * (a_full + bucket(nb, rb, t, j)) / (rb + j)
        return total
    raise AssertionError("unreachable: rank k lies in some bucket")


@pytest.mark.parametrize("k", [1, 37, 300, 1000, 1999])
def test_expected_ties_with_large_buckets(k, engine):
    """Tie-aware AP when rank K cuts a bucket of hundreds of tied items (3 bits, 2,000 items): equal
    to the bucket-by-bucket expectation, itself checked against all permutations on small cases."""
    qc, ql, xc, xl = make_case(q=6, n=2000, m=3, c=4, multi=True, seed=12)
    ref = [_expected_ap_by_bucket(d, r, k) for d, r in _dists_rels(qc, ql, xc, xl)]
    assert rank(qc, ql, xc, xl, top_k=k, ties="expected", engine=engine).ap.tolist() == pytest.approx(
        ref, abs=1e-12
    )


def test_bucket_expectation_reference_equals_all_permutations():
    """The reference above agrees with the average over every order of tied items."""
    qc, ql, xc, xl = make_case(q=4, n=8, m=2, c=3, multi=True, seed=13)
    for d, r in _dists_rels(qc, ql, xc, xl):
        for k in range(1, 9):
            assert _expected_ap_by_bucket(d, r, k) == pytest.approx(ref_expected_ap(d, r, k), abs=1e-12)


def test_cuda_path_agrees_with_compiled_path_on_cpu():
    """The torch engine (used on CUDA) and the compiled CPU engine give the same per-query figures."""
    from hashbench.metrics import ranking

    qc, ql, xc, xl = make_case(q=31, n=700, m=12, multi=True, seed=9)
    qp, xp = pack_codes(qc), pack_codes(xc)
    for ties in ("index", "expected"):
        a, b = (
            ranking.ranking_pass(qp, ql, xp, xl, False, 12, 90, 40, ties=ties, engine=engine)
            for engine in ("compiled", "torch")
        )
        assert torch.equal(a.hist, b.hist)
        assert a.ap.tolist() == pytest.approx(b.ap.tolist(), abs=1e-12)
        assert torch.equal(a.hits, b.hits)


def test_auto_engine_ranks_small_cpu_problems_with_torch(monkeypatch: pytest.MonkeyPatch):
    """On the CPU, ``engine="auto"`` ranks up to SMALL_PROBLEM_PAIRS query-item pairs with torch (no
    numba start-up) and larger problems with the compiled engine."""
    from hashbench.metrics import ranking, ranking_cpu, ranking_torch

    qc, ql, xc, xl = make_case(q=4, n=30, m=8, seed=3)
    qp, xp = pack_codes(qc), pack_codes(xc)
    used = []
    for module, name in ((ranking_cpu, "rank_cpu"), (ranking_torch, "rank_torch")):
        engine = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _e=engine, _n=name: used.append(_n) or _e(*a))
    for pairs in (120, 119):  # the problem has 4 × 30 = 120 pairs
        monkeypatch.setattr(ranking, "SMALL_PROBLEM_PAIRS", pairs)
        ranking.ranking_pass(qp, ql, xp, xl, True, 8, None, 10)
    assert used == ["rank_torch", "rank_cpu"]


def test_engine_argument_is_checked():
    """``engine="compiled"`` outside the compiled engine's limits, or an unknown engine, is refused."""
    wide = torch.ones(3, 32_767)
    labels = torch.tensor([0, 0, 0])
    assert float(mean_average_precision(wide, labels, wide, labels, engine="auto")) == 1.0  # torch engine
    with pytest.raises(ValueError, match="engine='torch'"):
        mean_average_precision(wide, labels, wide, labels, engine="compiled")
    with pytest.raises(ValueError, match="engine must be"):
        mean_average_precision(wide[:, :8], labels, wide[:, :8], labels, engine="numba")


def test_degenerate_sizes(engine):
    one = torch.tensor([[1.0, -1.0, 1.0]])
    # one query, one database item
    assert float(mean_average_precision(one, torch.tensor([0]), one, torch.tensor([0]), engine=engine)) == 1.0
    assert (
        float(mean_average_precision(one, torch.tensor([0]), -one, torch.tensor([1]), engine=engine)) == 0.0
    )
    assert float(precision_at_k(one, torch.tensor([0]), one, torch.tensor([0]), k=1000, engine=engine)) == 1.0
    p, r = pr_curve(one, torch.tensor([0]), -one, torch.tensor([0]), engine=engine)
    assert p.tolist() == [0, 0, 0, 1] and r.tolist() == [0, 0, 0, 1]
    # one bit
    qc, ql, xc, xl = make_case(q=4, n=9, m=1, multi=False)
    assert float(mean_average_precision(qc, ql, xc, xl, engine=engine)) == pytest.approx(
        ref_map(qc, ql, xc, xl)
    )
    with pytest.raises(ValueError, match=">= 1"):
        mean_average_precision(qc, ql, xc, xl, top_k=0, engine=engine)
    with pytest.raises(ValueError, match="same number of rows"):
        mean_average_precision(qc, ql[:2], xc, xl, engine=engine)


def test_worker_threads_under_inference_mode():
    """Lightning evaluates under torch.inference_mode; the worker threads must not trip over it."""
    from hashbench.metrics import ranking

    qc, ql, xc, xl = make_case(q=23, n=300, m=12, multi=True, seed=8)
    qp, xp = pack_codes(qc), pack_codes(xc)
    with torch.inference_mode():
        for ties in ("index", "expected"):
            res = ranking.ranking_pass(qp, ql, xp, xl, False, 12, 50, 10, ties=ties, workers=2)
            assert res.ap.shape == (23,)
    assert res.ap.tolist() == pytest.approx(
        ranking.ranking_pass(qp, ql, xp, xl, False, 12, 50, 10, ties="expected").ap.tolist(), abs=1e-12
    )
