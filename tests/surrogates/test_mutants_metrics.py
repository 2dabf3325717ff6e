"""Tests that kill surviving mutants of ``aalearn.surrogates.metrics`` (issue 23, tools/mutation.py).

References: the unbiased MMD² written as a plain double sum over an explicit kernel matrix
(Gretton et al., JMLR 13 (2012) 723), numpy's weighted covariance (``np.cov`` with
``fweights``) for the bootstrap moments, and hand-counted tail fractions. Tolerances are stated
at each assertion.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from scipy.stats import betabinom

import aalearn.surrogates.metrics as metrics_module
from aalearn.surrogates.metrics import (
    _bootstrap_moments,
    kpd,
    mmd_poly_unbiased,
    quantile_regions,
    tail_coverage,
)


def _mmd_reference(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (gamma * a @ b.T + coef) ** degree

    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    sxx = kxx.sum() - np.trace(kxx)
    syy = kyy.sum() - np.trace(kyy)
    return float(sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * k(x, y).sum() / (m * n))


@pytest.mark.parametrize(("m", "n"), [(20, 17), (100, 90)])  # explicit kernel blocks; monomial sums
@pytest.mark.parametrize(("degree", "gamma", "coef"), [(4, None, 1.0), (3, 0.7, 0.5)])
def test_mmd_matches_the_double_sum(
    m: int, n: int, degree: int, gamma: float | None, coef: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(m + degree)
    x = rng.normal(size=(m, 3))
    y = rng.normal(0.3, 1.2, size=(n, 3))
    # tiny chunks and blocks so that every chunked loop runs several times
    monkeypatch.setattr(metrics_module, "_OUTER_CHUNK_BYTES", 8 * 7)
    ref = _mmd_reference(x, y, degree, 1 / 3 if gamma is None else gamma, coef)
    got = mmd_poly_unbiased(x, y, degree=degree, gamma=gamma, coef=coef, block=3)
    # 1e-9 relative: sums of a few thousand kernel values of order 1-100 in another order
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_bootstrap_moments_match_weighted_numpy_covariance(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1.0, 2.0, 0.5] + [5.0, -1.0, 0.0]
    counts = rng.poisson(1.0, size=(4, 40)).astype(float)
    sizes = counts.sum(axis=1)
    monkeypatch.setattr(metrics_module, "_OUTER_CHUNK_BYTES", 8 * 6 * 7)  # chunks of 7 rows
    means, covs = _bootstrap_moments(x, counts, sizes)
    for b in range(4):
        w = counts[b].astype(int)
        # 1e-12: the same sums in another order
        np.testing.assert_allclose(means[b], np.average(x, axis=0, weights=w), rtol=1e-12)
        np.testing.assert_allclose(covs[b], np.cov(x.T, fweights=w, ddof=1), rtol=1e-10, atol=1e-12)


def test_tail_coverage_counts_and_pvalues_by_hand() -> None:
    ref = np.arange(1.0, 101.0)[:, None]  # 1..100
    cand = np.array([0.5, 1.0, 3.0, 50.0, 98.5, 99.0, 100.5, 101.0, 102.0, 60.0])[:, None]
    t = tail_coverage(ref, cand, quantiles=(0.02, 0.98))
    # r = 2: lower threshold the 2nd smallest (2.0), upper the 2nd largest (99.0)
    np.testing.assert_array_equal(t.thresholds, [[2.0, 99.0]])
    # strictly beyond: below 2 -> 0.5, 1.0 (2 of 10); above 99 -> 100.5, 101, 102 (3 of 10), plus the
    # tie at 99 with the share (r - 1 reference value beyond) / (1 reference tie) = 1 -> 4 of 10
    np.testing.assert_allclose(t.candidate_fraction, [[0.2, 0.4]], atol=1e-12)
    np.testing.assert_allclose(t.expected_fraction, [2 / 101, 2 / 101], atol=1e-12)
    for k, p in ((2, t.pvalue[0, 0]), (4, t.pvalue[0, 1])):
        d = betabinom(10, 2, 99)
        assert p == pytest.approx(min(1.0, 2 * min(d.cdf(k), d.sf(k - 1))), rel=1e-9)
    # outside [1, 100]: 0.5, 100.5, 101, 102
    np.testing.assert_allclose(t.outside_range, [0.4], atol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: quantile_regions(x, x, bins=1), "bins must be an integer >= 2, got 1"),
        (lambda x: mmd_poly_unbiased(x, x, degree=0), "degree must be an integer >= 1, got 0"),
        (lambda x: mmd_poly_unbiased(x, x, block=0), "block must be an integer >= 1, got 0"),
        (lambda x: kpd(x, x, num_batches=0), "num_batches must be an integer >= 1, got 0"),
        (lambda x: kpd(x, x, batch_size=1), "batch_size must be an integer >= 2, got 1"),
    ],
)
def test_integer_settings_are_named_in_errors(call: Any, message: str) -> None:
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call(x)
