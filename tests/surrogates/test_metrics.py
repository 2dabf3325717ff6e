"""FPD, KPD (against straightforward re-implementations of jetnet's loops), W1/KS, correlations, tails."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from scipy import linalg, stats
from scipy.optimize import curve_fit

from aalearn.surrogates.metrics import (
    correlation_difference,
    fpd,
    frechet_distance,
    kpd,
    marginal_distances,
    mmd_poly_unbiased,
    normalise_features,
    quantile_regions,
    tail_coverage,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Oversubscribed OpenMP/BLAS threads on a shared 2-core machine are 10-100x slower than one."""
    import sklearn.ensemble  # noqa: F401 - load scikit-learn's OpenMP runtime before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _loop_fpd(x, y, min_samples, max_samples, num_batches, num_points, seed=42):
    """jetnet 0.2.5's FPD loop, written out (gather, np.cov, scipy sqrtm, curve_fit)."""
    x, y = normalise_features(x, y)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for bs in batches:
        points = []
        for _ in range(num_batches):
            a = x[rng.choice(len(x), size=bs)]
            b = y[rng.choice(len(y), size=bs)]
            s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
            covmean = linalg.sqrtm(s1 @ s2).real
            diff = a.mean(0) - b.mean(0)
            points.append(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
        vals.append(np.mean(points))
    params, covs = curve_fit(lambda t, i, s: i + s * t, 1 / batches, vals, bounds=([0, 0], [np.inf, np.inf]))
    return params[0], np.sqrt(covs[0, 0])


def _brute_mmd(x, y, degree=4):
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** degree
    kyy = (y @ y.T / d + 1) ** degree
    kxy = (x @ y.T / d + 1) ** degree
    m, n = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


@pytest.fixture
def skewed() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    mix = np.eye(4) + 0.3 * rng.normal(size=(4, 4))
    return np.exp(0.4 * rng.normal(size=(1500, 4)) @ mix), 1.03 * np.exp(
        0.4 * rng.normal(size=(1200, 4)) @ mix
    )


def test_fpd_equals_the_loop_estimator(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = skewed
    ours = fpd(x, y, min_samples=400, max_samples=1000, num_batches=6, num_points=4, seed=7)
    ref = _loop_fpd(x, y, 400, 1000, 6, 4, seed=7)
    assert ours.value == pytest.approx(ref[0], rel=1e-9)
    assert ours.error == pytest.approx(ref[1], rel=1e-7)
    assert ours.value > 0


def test_fpd_of_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6000, 2))
    y = rng.normal(size=(6000, 2)) * 2.0 + [1.0, 0.0]
    value, error = fpd(x, y, min_samples=2000, max_samples=6000, num_batches=5, normalise=False)
    assert value == pytest.approx(1.0 + 2 * (1 + 4 - 4), abs=5 * error + 0.1)
    assert float(frechet_distance([0.0], [[1.0]], [0.0], [[4.0]])) == pytest.approx(1.0)


def test_kpd_equals_the_brute_force_estimator(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = skewed
    xn, yn = normalise_features(x, y)
    vals = []
    for i in range(4):
        rng = np.random.default_rng(5 + 1000 * i)
        vals.append(_brute_mmd(xn[rng.choice(len(xn), size=300)], yn[rng.choice(len(yn), size=300)]))
    value, error = kpd(x, y, num_batches=4, batch_size=300, seed=5)
    assert value == pytest.approx(np.median(vals), rel=1e-9, abs=1e-15)
    assert error == pytest.approx(stats.iqr(vals, rng=(16.275, 83.725)) / 2, rel=1e-7, abs=1e-15)


@pytest.mark.parametrize("d", [3, 40])  # monomial expansion (small d) and kernel blocks (large d)
def test_mmd_both_code_paths_equal_brute_force(d: int) -> None:
    rng = np.random.default_rng(d)
    x, y = rng.uniform(-1, 1, size=(150, d)), rng.uniform(-1, 1, size=(130, d)) + 0.05
    assert mmd_poly_unbiased(x, y, block=64) == pytest.approx(_brute_mmd(x, y), rel=1e-9, abs=1e-14)
    assert mmd_poly_unbiased(x, y, degree=3) == pytest.approx(_brute_mmd(x, y, 3), rel=1e-9, abs=1e-14)


def test_kpd_separates_a_shift_but_not_a_resample() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 3))
    same = kpd(x, rng.normal(size=(2000, 3)), batch_size=800)
    shifted = kpd(x, rng.normal(size=(2000, 3)) + 0.3, batch_size=800)
    assert abs(same.value) < 3 * same.error + 1e-4
    assert shifted.value > 10 * max(same.error, abs(same.value))


def test_too_few_samples_for_the_batches_is_a_clear_error() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    with pytest.raises(ValueError, match=r"max_samples=50000.*pass max_samples <= 500"):
        fpd(x, y)
    with pytest.raises(ValueError, match="batch_size=5000"):
        kpd(x, y)
    with pytest.raises(ValueError, match="must not exceed"):
        fpd(x, y, min_samples=400, max_samples=300)
    with pytest.raises(ValueError, match="num_points"):
        fpd(x, y, min_samples=100, max_samples=300, num_points=1)


def test_bad_inputs_are_clear_errors() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fpd(x, bad, min_samples=100, max_samples=300)
    with pytest.raises(ValueError, match="same features"):
        kpd(x, rng.normal(size=(300, 3)), batch_size=100)
    with pytest.raises(TypeError, match="numeric"):
        marginal_distances(x, np.array([["a", "b"]] * 3))


def test_marginals_flag_the_shifted_feature_only() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(3000, 3))
    cand = rng.normal(size=(3000, 3)) + np.array([0.0, 0.2, 0.0])
    cand[:, 2] = ref[:, 2] = 1.0  # constant: no test
    m = marginal_distances(ref, cand)
    assert m.ks_pvalue[1] < 1e-6 < m.ks_pvalue[0]
    assert np.isnan(m.ks_pvalue[2])
    assert np.isnan(m.w1_scaled[2])
    assert m.w1[1] == pytest.approx(0.2, abs=0.05)


def test_correlation_difference() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert correlation_difference(a, a) == pytest.approx(0.0, abs=1e-12)
    b = a.copy()
    b[:, 1] = 0.6 * b[:, 0] + 0.8 * b[:, 1]
    assert correlation_difference(a, b) > 0.7


def test_tail_coverage_flags_a_removed_tail_and_passes_the_same_distribution() -> None:
    rng = np.random.default_rng(4)
    ref = rng.exponential(size=(20_000, 1))
    same = tail_coverage(ref, rng.exponential(size=(20_000, 1)))
    assert same.pvalue.min() > 1e-3
    no_tail = rng.exponential(size=20_000)
    no_tail = no_tail[no_tail < np.quantile(ref, 0.995)][:15_000, None]
    t = tail_coverage(ref, no_tail)
    upper = list(t.quantiles).index(0.999)
    assert t.candidate_fraction[0, upper] == 0.0
    assert t.pvalue[0, upper] < 1e-4  # 0 of 15,000 where ~15 are expected
    assert t.expected_fraction[upper] == pytest.approx(0.001, rel=0.01)
    with pytest.raises(ValueError, match="quantiles"):
        tail_coverage(ref, ref, quantiles=(0.5,))


def test_tail_coverage_of_a_discrete_feature_counts_ties_fairly() -> None:
    rng = np.random.default_rng(0)
    ref = rng.poisson(5, size=(5000, 1)).astype(float)
    t = tail_coverage(ref, rng.poisson(5, size=(5000, 1)).astype(float), quantiles=(0.01, 0.99))
    assert np.all(t.pvalue > 1e-3)
    assert t.candidate_fraction[0] == pytest.approx([0.01, 0.01], abs=0.006)


def test_quantile_regions_name_the_deviating_region() -> None:
    rng = np.random.default_rng(0)
    ref, cand = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    cand = cand[cand[:, 1] > -1.3]  # the lower tail of feature 1 is missing
    regions = quantile_regions(ref, cand)
    assert regions[1]["lo"] == -np.inf
    assert regions[1]["z"] < -5
    assert abs(regions[0]["z"]) < 4
