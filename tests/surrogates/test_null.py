"""Reference-versus-reference nulls: partitions, p-values, significance, calibration under the null."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

from aalearn.surrogates.metrics import correlation_difference, kpd, tail_coverage
from aalearn.surrogates.null import (
    NullTest,
    empirical_pvalue,
    null_distribution,
    pvalue_to_sigma,
    reference_partitions,
    split_sizes,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Oversubscribed OpenMP/BLAS threads on a shared 2-core machine are 10-100x slower than one."""
    import sklearn.ensemble  # noqa: F401 - load scikit-learn's OpenMP runtime before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def test_empirical_pvalue_counts_and_never_returns_zero() -> None:
    null = np.arange(1.0, 10.0)  # 9 values
    assert empirical_pvalue(5.0, null) == pytest.approx(6 / 10)
    assert empirical_pvalue(0.0, null) == 1.0
    assert empirical_pvalue(100.0, null, tail="none") == pytest.approx(0.1)
    assert empirical_pvalue(100.0, null) == pytest.approx(0.1)  # n_null < 41: no tail fit


def test_tail_beyond_the_null_is_extrapolated_and_monotone() -> None:
    null = np.random.default_rng(0).normal(size=200)
    limit = 1 / 201
    p_near = empirical_pvalue(float(null.max()) + 0.1, null)
    p_far = empirical_pvalue(8.0, null)
    assert p_far < p_near <= limit
    assert p_far > 0
    assert empirical_pvalue(8.0, null, tail="gauss") == pytest.approx(
        stats.norm.sf((8 - null.mean()) / null.std(ddof=1))
    )


def test_bad_null_input() -> None:
    with pytest.raises(ValueError, match="at least 2 finite"):
        empirical_pvalue(1.0, [np.nan, 1.0])
    with pytest.raises(ValueError, match="tail"):
        empirical_pvalue(1.0, [0.0, 1.0], tail="pareto")
    with pytest.raises(ValueError, match="NaN"):
        empirical_pvalue(np.nan, [0.0, 1.0])
    with pytest.raises(ValueError, match="n_null"):
        null_distribution(np.zeros((10, 1)), lambda a, b: 0.0, m=5, k=5, n_null=1)


def test_significance() -> None:
    assert pvalue_to_sigma(stats.norm.sf(3.0)) == pytest.approx(3.0)
    assert pvalue_to_sigma(0.0) == pytest.approx(37.0, abs=1.0)  # clipped, finite
    assert np.isnan(pvalue_to_sigma(np.nan))
    t = NullTest.from_null("x", 3.0, [0.0, 1.0, 2.0, 1.0], error=0.1)
    assert t.z == pytest.approx((3.0 - 1.0) / np.std([0.0, 1.0, 2.0, 1.0], ddof=1))
    assert t.to_dict()["n_null"] == 4


def test_split_sizes_and_partitions() -> None:
    assert split_sizes(1000, 1000) == (500, 500)
    assert split_sizes(1000, 100) == (900, 100)
    with pytest.raises(ValueError, match="too few rows"):
        split_sizes(30, 100, min_rows=20)
    parts = list(reference_partitions(50, 30, 20, 3, seed=1))
    assert len(parts) == 3
    for a, b in parts:
        assert len(a) == 30
        assert len(b) == 20
        assert not set(a) & set(b)
    assert not np.array_equal(parts[0][0], parts[1][0])
    with pytest.raises(ValueError, match="disjoint"):
        next(reference_partitions(10, 8, 4, 1))


def test_null_distribution_shapes() -> None:
    ref = np.random.default_rng(0).normal(size=(60, 2))
    scalar = null_distribution(ref, lambda a, b: float(a.mean() - b.mean()), m=40, k=20, n_null=4, seed=0)
    vector = null_distribution(ref, lambda a, b: a.mean(0) - b.mean(0), m=40, k=20, n_null=4, seed=0)
    assert scalar.shape == (4,)
    assert vector.shape == (4, 2)
    assert scalar == pytest.approx(vector.sum(axis=1) / 2)


@pytest.mark.slow
def test_pvalues_are_uniform_under_the_null() -> None:
    """Fresh reference and candidate from one distribution: the p-values must be ~U(0, 1)."""
    from aalearn.surrogates.metrics import _w1

    rng = np.random.default_rng(2024)
    p_w1, p_corr, p_kpd, p_tail = [], [], [], []
    for _ in range(50):
        ref = rng.gamma(2.0, size=(240, 2))
        cand = rng.gamma(2.0, size=(120, 2))
        m, k = split_sizes(len(ref), len(cand))
        ref_obs = ref[:m]

        def stat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.array(
                [
                    _w1(a, b)[0],
                    correlation_difference(a, b),
                    kpd(a, b, num_batches=3, batch_size=60, seed=1).value,
                ]
            )

        null = null_distribution(ref, stat, m=m, k=k, n_null=29, seed=int(rng.integers(1 << 31)))
        obs = stat(ref_obs, cand)
        p_w1.append(empirical_pvalue(obs[0], null[:, 0]))
        p_corr.append(empirical_pvalue(obs[1], null[:, 1]))
        p_kpd.append(empirical_pvalue(obs[2], null[:, 2]))
        p_tail.append(tail_coverage(ref, cand, quantiles=(0.05, 0.95)).pvalue[0, 1])
    for name, p in (("w1", p_w1), ("corr", p_corr), ("kpd", p_kpd)):
        assert stats.kstest(p, "uniform").pvalue > 0.01, name
    # the beta-binomial tail test is discrete and two-sided: valid (not anti-conservative)
    assert np.mean(np.array(p_tail) < 0.1) <= 0.2
