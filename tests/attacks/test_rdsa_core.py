"""Tests of the RDSA core search (:mod:`aalearn.attacks.rdsa`)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats

from aalearn.attacks import rdsa
from aalearn.attacks.rdsa import Marginals, RDSAOutput, rdsa_search


def _always(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.ones(len(candidates), dtype=bool)


def _never(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.zeros(len(candidates), dtype=bool)


def _threshold(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return candidates[:, 0] > 1.0


@pytest.fixture
def gaussian() -> np.ndarray:
    """Correlated Gaussian sample, 2000 rows x 5 features."""
    rng = np.random.default_rng(42)
    cov = np.full((5, 5), 0.5) + 0.5 * np.eye(5)
    return rng.multivariate_normal(np.zeros(5), cov, size=2000)


def test_doctests() -> None:
    result = doctest.testmod(rdsa, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_marginals_preserved_and_correlations_broken() -> None:
    n, f, rho = 20000, 6, 0.8
    rng = np.random.default_rng(0)
    cov = np.full((f, f), rho) + (1 - rho) * np.eye(f)
    x = rng.multivariate_normal(np.zeros(f), cov, size=n)
    out = rdsa_search(x, _always, n_features=f, max_tries=1, seed=1)
    assert out.success.all()
    np.testing.assert_array_equal(out.tries, 1)
    assert not np.any(out.x_adv == x)  # every value re-drawn (continuous)
    for j in range(f):
        assert stats.ks_2samp(x[:, j], out.x_adv[:, j]).pvalue > 0.01, j
    corr_before = np.corrcoef(x, rowvar=False)[np.triu_indices(f, 1)]
    corr_after = np.corrcoef(out.x_adv, rowvar=False)[np.triu_indices(f, 1)]
    assert np.all(corr_before > 0.75)
    assert np.all(np.abs(corr_after) < 0.05)


def test_threshold_success_and_failures(gaussian: np.ndarray) -> None:
    x = gaussian[gaussian[:, 0] <= 1.0]
    marginals = Marginals.fit(gaussian)
    kwargs = {"n_features": 2, "max_tries": 5, "marginals": marginals, "seed": 3}
    out = rdsa_search(x, _threshold, **kwargs)
    assert isinstance(out, RDSAOutput)
    assert out.x_adv.shape == x.shape
    assert out.x_adv.dtype == x.dtype
    assert out.success.dtype == np.bool_
    assert 0 < out.success.sum() < len(x)
    assert np.all(out.x_adv[out.success, 0] > 1.0)
    np.testing.assert_array_equal(out.x_adv[~out.success], x[~out.success])
    assert np.all((out.tries >= 1) & (out.tries <= 5))
    np.testing.assert_array_equal(out.tries[~out.success], 5)
    assert set(np.unique(out.tries[out.success])) > {1}

    kept = rdsa_search(x, _threshold, keep_failed=True, **kwargs)
    np.testing.assert_array_equal(kept.success, out.success)
    np.testing.assert_array_equal(kept.tries, out.tries)
    np.testing.assert_array_equal(kept.x_adv[kept.success], out.x_adv[out.success])
    failed = ~kept.success
    changed = np.any(kept.x_adv[failed] != x[failed], axis=1)
    assert changed.all()
    # exactly n_features features differ in a failed draw (continuous features)
    np.testing.assert_array_equal(np.sum(kept.x_adv[failed] != x[failed], axis=1), 2)


def test_successes_stop_at_first_try() -> None:
    """A row is evaluated once per try until its first success, never after."""
    x = np.random.default_rng(0).normal(size=(50, 4))
    calls: list[np.ndarray] = []

    def record(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
        calls.append(rows.copy())
        return candidates[:, 0] > 0.5

    out = rdsa_search(x, record, n_features=2, max_tries=6, seed=0)
    counts = np.bincount(np.concatenate(calls), minlength=len(x))
    np.testing.assert_array_equal(counts, out.tries)


def test_only_mutable_features_change_and_repair_applies(gaussian: np.ndarray) -> None:
    mutable = np.array([True, True, False, True, False])

    def clamp(candidates: np.ndarray, originals: np.ndarray) -> np.ndarray:
        assert candidates.shape == originals.shape
        out = candidates.copy()
        out[:, 1] = np.minimum(out[:, 1], 0.0)
        return out

    out = rdsa_search(
        gaussian, _always, n_features=2, max_tries=3, mutable=mutable, repair=clamp, keep_failed=True, seed=0
    )
    np.testing.assert_array_equal(out.x_adv[:, ~mutable], gaussian[:, ~mutable])
    assert np.all(out.x_adv[:, 1] <= 0.0)
    assert np.any(out.x_adv[:, mutable] != gaussian[:, mutable])


def test_reproducible_and_batch_size_independent(gaussian: np.ndarray) -> None:
    x = gaussian[gaussian[:, 0] <= 1.0]
    kwargs = {"n_features": 2, "max_tries": 8, "marginals": Marginals.fit(gaussian), "keep_failed": True}
    a = rdsa_search(x, _threshold, seed=7, batch_size=4096, **kwargs)
    b = rdsa_search(x, _threshold, seed=7, batch_size=4096, **kwargs)
    c = rdsa_search(x, _threshold, seed=7, batch_size=7, **kwargs)
    d = rdsa_search(x, _threshold, seed=8, batch_size=4096, **kwargs)
    e = rdsa_search(x, _threshold, seed=np.random.SeedSequence(7), batch_size=4096, **kwargs)
    for other in (b, c, e):
        np.testing.assert_array_equal(a.x_adv, other.x_adv)
        np.testing.assert_array_equal(a.success, other.success)
        np.testing.assert_array_equal(a.tries, other.tries)
    assert not np.array_equal(a.x_adv, d.x_adv)


def test_row_results_independent_of_other_rows(gaussian: np.ndarray) -> None:
    """Row i's draws do not depend on which other rows are being attacked."""
    x = gaussian[gaussian[:, 0] <= 1.0]
    kwargs = {"n_features": 2, "max_tries": 8, "marginals": Marginals.fit(gaussian), "seed": 5}
    full = rdsa_search(x, _threshold, **kwargs)
    # Rows that succeed immediately leave the active set; the remaining rows keep their draws.
    first = rdsa_search(x[:10], _threshold, **kwargs)
    np.testing.assert_array_equal(first.x_adv, full.x_adv[:10])
    np.testing.assert_array_equal(first.tries, full.tries[:10])


def test_discrete_feature_stays_in_its_values() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4))
    x[:, 2] = rng.choice([-1.0, 0.0, 2.5], size=len(x), p=[0.2, 0.5, 0.3])
    x[:, 3] = 7.0  # constant feature
    marginals = Marginals.fit(x)
    assert marginals.values[0] is None
    np.testing.assert_array_equal(marginals.values[2], [-1.0, 0.0, 2.5])
    np.testing.assert_array_equal(marginals.values[3], [7.0])
    np.testing.assert_array_equal(marginals.discrete, [False, False, True, True])
    out = rdsa_search(x, _always, n_features=4, max_tries=1, seed=0)
    assert set(np.unique(out.x_adv[:, 2])) == {-1.0, 0.0, 2.5}
    np.testing.assert_array_equal(out.x_adv[:, 3], 7.0)
    freq = np.array([np.mean(out.x_adv[:, 2] == v) for v in (-1.0, 0.0, 2.5)])
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.03)


def test_marginals_fit_and_sample() -> None:
    x = np.linspace(0.0, 1.0, 101)[:, None] * np.array([1.0, 10.0])
    m = Marginals.fit(x, bins=4)
    assert m.n_features == 2
    np.testing.assert_allclose(m.edges[0], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(m.edges[1], [0.0, 2.5, 5.0, 7.5, 10.0])
    for p in m.probs:
        assert p.sum() == pytest.approx(1.0)
    # inverse CDF: bin probabilities 26/101, 25/101, 25/101, 25/101
    feat = np.array([[0, 1], [0, 1], [1, 0]])
    u_bin = np.array([[0.0, 0.3], [0.999999, 0.5], [0.26, 0.9]])
    u_pos = np.array([[0.5, 0.0], [0.0, 0.5], [0.25, 0.999]])
    got = m.sample(feat, u_bin, u_pos)
    np.testing.assert_allclose(got, [[0.125, 2.5], [0.75, 6.25], [3.125, 0.75 + 0.999 * 0.25]])
    # u_bin just below 1 stays inside the feature's own bins
    top = m.sample(np.array([[0, 1]]), np.array([[np.nextafter(1.0, 0.0)] * 2]), np.zeros((1, 2)))
    np.testing.assert_allclose(top, [[0.75, 7.5]])


def test_empty_bins_never_sampled() -> None:
    x = np.concatenate([np.zeros(500), np.ones(500), np.linspace(0.0, 1.0, 60)])[:, None]
    m = Marginals.fit(x, bins=10)
    u = np.random.default_rng(0).random((20000, 1))
    values = m.sample(np.zeros((20000, 1), dtype=np.int64), u, u[::-1])
    assert values.min() >= 0.0
    assert values.max() <= 1.0
    # the two extreme bins carry (500 + 6) / 1060 of the mass each
    assert np.mean(values < 0.1) == pytest.approx(506 / 1060, abs=0.02)


def test_input_not_modified(gaussian: np.ndarray) -> None:
    x = gaussian.astype(np.float32)
    before = x.copy()
    out = rdsa_search(x, _always, n_features=3, max_tries=2, seed=0)
    np.testing.assert_array_equal(x, before)
    assert out.x_adv.dtype == np.float32
    assert not np.shares_memory(out.x_adv, x)


def test_integer_input_becomes_float() -> None:
    x = np.arange(40).reshape(20, 2)
    out = rdsa_search(x, _always, n_features=1, max_tries=1, seed=0)
    assert out.x_adv.dtype == np.float64


def test_no_rows() -> None:
    out = rdsa_search(np.empty((0, 3)), _never, n_features=2)
    assert out.x_adv.shape == (0, 3)
    assert out.success.shape == (0,)
    assert out.tries.shape == (0,)


def test_progress_bar_runs(gaussian: np.ndarray) -> None:
    out = rdsa_search(gaussian[:50], _never, n_features=2, max_tries=2, progress=True)
    np.testing.assert_array_equal(out.tries, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": np.zeros(5)}, ValueError, "2-D"),
        ({"x": np.array([[0.0, np.nan]])}, ValueError, "NaN"),
        ({"x": np.array([[0.0, np.inf]])}, ValueError, "NaN/inf"),
        ({"x": np.array([["a", "b"]])}, TypeError, "numeric"),
        ({"n_features": 0}, ValueError, "n_features"),
        ({"n_features": 5}, ValueError, "mutable"),
        ({"n_features": 2.0}, TypeError, "n_features"),
        ({"max_tries": 0}, ValueError, "max_tries"),
        ({"bins": 1}, ValueError, "bins"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"mutable": np.ones(3, dtype=bool)}, ValueError, "shape"),
        ({"mutable": np.ones(4, dtype=int)}, TypeError, "bool"),
        ({"mutable": np.array([True, False, False, False]), "n_features": 2}, ValueError, "mutable"),
        ({"marginals": Marginals.fit(np.zeros((3, 2)))}, ValueError, "marginals"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"is_success": lambda c, r: np.ones(len(c))}, TypeError, "bool"),
        ({"is_success": lambda c, r: np.ones(1, dtype=bool)}, ValueError, "shape"),
        ({"repair": lambda c, o: c[:, :2]}, ValueError, "repair"),
        ({"repair": lambda c, o: c * np.nan}, ValueError, "NaN"),
    ],
)
def test_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"x": np.random.default_rng(0).normal(size=(10, 4)), "is_success": _never, "n_features": 2}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        rdsa_search(**args)


@pytest.mark.parametrize(
    ("x", "kwargs", "error"),
    [
        (np.zeros((0, 3)), {}, ValueError),
        (np.zeros(3), {}, ValueError),
        (np.zeros((3, 2)), {"bins": 1}, ValueError),
        (np.zeros((3, 2)), {"discrete_threshold": -1}, ValueError),
    ],
)
def test_marginals_fit_errors(x: np.ndarray, kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        Marginals.fit(x, **kwargs)


def test_marginals_sample_errors() -> None:
    m = Marginals.fit(np.random.default_rng(0).normal(size=(100, 2)))
    with pytest.raises(ValueError, match="feature_idx"):
        m.sample(np.array([[2]]), np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="same shape"):
        m.sample(np.array([[0, 1]]), np.zeros((1, 1)), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="integer"):
        m.sample(np.array([[0.0]]), np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="edges"):
        Marginals(edges=[np.array([0.0, 1.0])], probs=[np.array([0.5, 0.5])], values=[None])


def _naive_sample(m: Marginals, feat: np.ndarray, u_bin: np.ndarray, u_pos: np.ndarray) -> np.ndarray:
    """Per-entry inverse CDF with a plain searchsorted on that feature's cumulative probabilities."""
    out = np.empty(feat.shape)
    for pos in np.ndindex(feat.shape):
        f = int(feat[pos])
        cdf = np.cumsum(m.probs[f])
        b = min(int(np.searchsorted(cdf / cdf[-1], u_bin[pos], side="right")), len(cdf) - 1)
        if m.values[f] is not None:
            out[pos] = m.values[f][b]
        else:
            left, right = m.edges[f][b], m.edges[f][b + 1]
            out[pos] = left + u_pos[pos] * (right - left)
    return out


def test_sample_matches_plain_inverse_cdf() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 6)) ** 3  # heavy tails: many empty bins
    x[:, 4] = rng.integers(0, 5, size=500)
    m = Marginals.fit(x, bins=40)
    feat = rng.integers(0, 6, size=(400, 5))
    u_bin = rng.random((400, 5))
    # keys on and next to the bin boundaries
    cdfs = [np.cumsum(p) / np.sum(p) for p in m.probs]
    u_bin[:100, 0] = [min(rng.choice(cdfs[f][:-1]), np.nextafter(1.0, 0.0)) for f in feat[:100, 0]]
    u_bin[100:200, 0] = np.nextafter(u_bin[:100, 0], 0.0)
    u_bin[200, :] = 0.0
    u_bin[201, :] = np.nextafter(1.0, 0.0)
    u_pos = rng.random((400, 5))
    got = m.sample(feat, u_bin, u_pos)
    np.testing.assert_allclose(got, _naive_sample(m, feat, u_bin, u_pos), rtol=1e-12, atol=0)
    assert got.shape == (400, 5)


@pytest.mark.parametrize(("n", "k"), [(10, 3), (87, 15), (100, 80), (6, 6)])
def test_random_subsets_distinct_and_uniform(n: int, k: int) -> None:
    rows = 20000
    u = np.random.default_rng(0).random((rows, rdsa._subset_uniforms(n, k)))
    sel = rdsa._random_subsets(u, n, k)
    assert sel.shape == (rows, k)
    assert np.all(np.sort(sel, axis=1)[:, 1:] != np.sort(sel, axis=1)[:, :-1])  # distinct
    assert sel.min() >= 0
    assert sel.max() < n
    counts = np.bincount(sel.ravel(), minlength=n)
    expected = rows * k / n
    if k < n:
        assert stats.chisquare(counts, np.full(n, expected)).pvalue > 0.001
    if n == 10:  # pairs are uniform too
        pairs = np.zeros((n, n))
        for a in range(k):
            for b in range(k):
                if a != b:
                    np.add.at(pairs, (sel[:, a], sel[:, b]), 1)
        off = pairs[~np.eye(n, dtype=bool)]
        assert stats.chisquare(off).pvalue > 0.001
