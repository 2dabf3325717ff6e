"""Tests of aalearn.validation.checks: statistics, verdicts, reports and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from aalearn.validation import (
    KNOWN_CHECKS,
    ValidationConfig,
    ValidationReport,
    adjust_pvalues,
    chi2_unequal_totals,
    correlation_matrix,
    histogram_jsd,
    validate_samples,
)

N_ROWS = 4000
N_FEATURES = 5
RHO = 0.8
# At the default 50 bins the JSD of two 4000-row samples of one distribution is about
# 0.068 from statistical noise alone (above the default max_jsd = 0.06, see
# test_jsd_noise_floor_at_default_binning); the marginal-agreement tests use 10 bins.
COARSE = ValidationConfig(bins=10)


def _correlated_gaussian(rng: np.random.Generator, n: int = N_ROWS) -> npt.NDArray[np.float64]:
    """``(n, 5)`` standard normals with all pairwise correlations equal to RHO."""
    cov = np.full((N_FEATURES, N_FEATURES), RHO)
    np.fill_diagonal(cov, 1.0)
    out: npt.NDArray[np.float64] = rng.standard_normal((n, N_FEATURES)) @ np.linalg.cholesky(cov).T
    return out


@pytest.fixture
def samples() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    return _correlated_gaussian(rng), _correlated_gaussian(rng)


# --------------------------------------------------------------------------- verdicts
def test_same_distribution_passes(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    report = validate_samples(reference, candidate, config=COARSE)
    assert report.passed, report.failures
    assert report.failures == []
    assert all(f.passed and f.failed_checks == [] for f in report.features)
    assert report.correlation.passed
    assert report.correlation.n_pairs == N_FEATURES * (N_FEATURES - 1) // 2
    assert report.n_reference == report.n_candidate == N_ROWS
    assert all(f.jsd <= COARSE.max_jsd + f.jsd_noise for f in report.features)


def test_mean_shift_fails_ks_and_chi2_for_that_feature_only(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    candidate = candidate.copy()
    candidate[:, 2] += 0.3  # 0.3 σ
    names = ["pt", "eta", "phi", "mass", "width"]
    report = validate_samples(reference, candidate, feature_names=names)
    assert not report.passed
    for check in ("ks", "chi2"):
        assert [f.name for f in report.features if check in f.failed_checks] == ["phi"]
    phi = report.feature("phi")
    assert phi.ks_pvalue_corrected < 1e-10
    assert phi.chi2_pvalue_corrected < 1e-10
    assert any(msg.startswith("phi: KS p=") and "(holm)" in msg for msg in report.failures)
    assert any(msg.startswith("phi: chi2/ndf=") for msg in report.failures)
    # a pure shift leaves the correlations alone
    assert report.correlation.passed


def test_shuffled_column_keeps_marginals_but_fails_correlation(
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    reference, candidate = samples
    candidate = candidate.copy()
    candidate[:, 1] = np.random.default_rng(1).permutation(candidate[:, 1])
    report = validate_samples(reference, candidate, config=COARSE)
    assert all(f.passed for f in report.features), report.failures
    corr = report.correlation
    assert not corr.passed
    assert not report.passed
    assert corr.n_significant == N_FEATURES - 1  # every pair with feature 1
    assert corr.rel_frobenius > 10 * corr.rel_frobenius_noise
    assert corr.rel_frobenius > COARSE.max_rel_corr_change
    assert corr.max_abs_change == pytest.approx(RHO, abs=0.06)
    assert all(msg.startswith("correlation:") for msg in report.failures)
    assert any("feature_1" in msg for msg in report.failures)

    # the correlation check only decides the verdict when configured
    marginal_only = ValidationConfig(bins=10, checks=("ks", "chi2", "jsd"))
    relaxed = validate_samples(reference, candidate, config=marginal_only)
    assert relaxed.passed
    assert not relaxed.correlation.passed


def test_jsd_noise_floor_at_default_binning(samples: tuple[np.ndarray, np.ndarray]) -> None:
    """Two samples of one distribution: the reported noise estimate matches the JSD seen."""
    reference, candidate = samples
    report = validate_samples(reference, candidate)
    jsd = np.array([f.jsd for f in report.features])
    noise = np.array([f.jsd_noise for f in report.features])
    assert np.mean(jsd) == pytest.approx(np.mean(noise), rel=0.2)
    assert np.all(noise > 0.05)
    failed = [msg for msg in report.failures if "JSD=" in msg]
    assert all("statistical noise alone" in msg for msg in failed)


def test_correlation_noise_estimate() -> None:
    rng = np.random.default_rng(3)
    reference, candidate = rng.normal(size=(3000, 20)), rng.normal(size=(3000, 20))
    corr = validate_samples(reference, candidate).correlation
    assert corr.rel_frobenius == pytest.approx(corr.rel_frobenius_noise, rel=0.25)
    assert corr.n_significant == 0


def test_identical_arrays_give_zero_distances() -> None:
    x = np.random.default_rng(2).normal(size=(500, 3))
    report = validate_samples(x, x.copy())
    assert report.passed
    for f in report.features:
        assert f.ks_statistic == 0.0
        assert f.ks_pvalue == pytest.approx(1.0)
        assert f.chi2 == pytest.approx(0.0)
        assert f.jsd == pytest.approx(0.0, abs=1e-7)
    assert report.correlation.rel_frobenius == pytest.approx(0.0, abs=1e-12)


def test_constant_features() -> None:
    rng = np.random.default_rng(4)
    reference, candidate = rng.normal(size=(800, 4)), rng.normal(size=(800, 4))
    reference[:, 1] = candidate[:, 1] = 0.0  # constant and equal in both
    reference[:, 3] = 2.0  # constant in the reference only
    report = validate_samples(reference, candidate, feature_names=["a", "const", "c", "half"])
    const = report.feature("const")
    assert (const.ks_pvalue, const.chi2_pvalue, const.jsd) == (1.0, 1.0, 0.0)
    assert const.ks_pvalue_corrected == const.chi2_pvalue_corrected == 1.0
    assert const.passed
    assert not report.feature("half").passed
    assert report.correlation.excluded == ["const", "half"]
    assert report.correlation.n_pairs == 1
    assert math.isfinite(report.correlation.rel_frobenius)
    for name in ("a", "c"):  # (800 rows at 50 bins: the JSD is at its noise floor)
        assert not {"ks", "chi2"} & set(report.feature(name).failed_checks)

    # constant in both, but at different values: a real difference
    shifted = candidate.copy()
    shifted[:, 1] = 1.0
    other = validate_samples(reference, shifted, feature_names=["a", "const", "c", "half"])
    assert set(other.feature("const").failed_checks) == {"ks", "chi2", "jsd"}
    assert other.feature("const").jsd == pytest.approx(1.0)


def test_candidate_outside_reference_range_counts() -> None:
    rng = np.random.default_rng(5)
    reference = rng.uniform(0.0, 1.0, size=(2000, 1))
    candidate = rng.uniform(0.0, 1.0, size=(2000, 1))
    candidate[:300, 0] += 5.0  # far beyond the reference's maximum: the overflow bin
    report = validate_samples(reference, candidate, config=COARSE)
    assert report.features[0].failed_checks == ["ks", "chi2", "jsd"]


def test_checks_subset_decides_verdict(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    report = validate_samples(reference, candidate, config=ValidationConfig(checks=("ks",)))
    assert report.passed  # the JSD noise floor at 50 bins does not count
    assert report.max_jsd > 0.06


# --------------------------------------------------------------------------- statistics
def test_chi2_hand_example() -> None:
    # N1 = 60, N2 = 30; the third bin is empty in both and does not count.
    # bin 1: (10·30 − 5·60)² / (60·30·15) = 0
    # bin 2: (20·30 − 15·60)² / (60·30·35) = 90000 / 63000
    # bin 4: (30·30 − 10·60)² / (60·30·40) = 90000 / 72000
    chi2, ndf, p = chi2_unequal_totals([10, 20, 0, 30], [5, 15, 0, 10])
    expected = 90000 / 63000 + 90000 / 72000
    assert float(chi2) == pytest.approx(expected)
    assert int(ndf) == 2
    assert float(p) == pytest.approx(math.exp(-expected / 2))  # χ² survival function, 2 dof


def test_chi2_vectorised_and_degenerate() -> None:
    n1 = np.array([[10, 20, 30], [0, 7, 0]])
    n2 = np.array([[5, 15, 10], [0, 3, 0]])
    chi2, ndf, p = chi2_unequal_totals(n1, n2)
    assert chi2.shape == ndf.shape == p.shape == (2,)
    assert chi2[0] == pytest.approx(float(chi2_unequal_totals(n1[0], n2[0])[0]))
    assert (chi2[1], ndf[1], p[1]) == (0.0, 0, 1.0)  # one populated bin: nothing to compare
    # identical shapes at different totals agree perfectly
    chi2, _, p = chi2_unequal_totals([4, 8, 12], [1, 2, 3])
    assert float(chi2) == pytest.approx(0.0)
    assert float(p) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same non-scalar shape"):
        chi2_unequal_totals([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one entry"):
        chi2_unequal_totals([0, 0], [1, 2])


def test_holm_hand_example() -> None:
    adjusted = adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_nan() -> None:
    adjusted = adjust_pvalues([0.5, np.nan, 0.2], "holm")
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.5, 0.4])
    np.testing.assert_allclose(adjust_pvalues([0.6, 0.7], "holm"), [1.0, 1.0])


def test_by_matches_scipy() -> None:
    p = np.random.default_rng(6).uniform(0, 0.2, size=30)
    np.testing.assert_allclose(adjust_pvalues(p, "by"), stats.false_discovery_control(p, method="by"))


def test_no_correction_and_bad_method() -> None:
    p = np.array([0.01, 0.2])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)
    assert adjust_pvalues([], "holm").shape == (0,)
    with pytest.raises(ValueError, match="'holm', 'by', 'none'"):
        adjust_pvalues(p, "bonferroni")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([1.5], "holm")


def test_jsd_identical_and_disjoint() -> None:
    assert float(histogram_jsd([3, 5, 0, 2], [3, 5, 0, 2])) == pytest.approx(0.0, abs=1e-7)
    assert float(histogram_jsd([3, 5, 0, 2], [6, 10, 0, 4])) == pytest.approx(0.0, abs=1e-7)
    assert float(histogram_jsd([3, 5, 0, 0], [0, 0, 1, 9])) == pytest.approx(1.0)
    both = histogram_jsd([[1, 0], [1, 1]], [[0, 1], [1, 1]])
    np.testing.assert_allclose(both, [1.0, 0.0], atol=1e-7)


def test_correlation_matrix_nan_for_constant() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))
    x[:, 2] = 1.5
    c = correlation_matrix(x)
    np.testing.assert_allclose(c[:2, :2], np.corrcoef(x[:, :2], rowvar=False))
    assert np.all(np.isnan(c[2]))
    assert np.all(np.isnan(c[:, 2]))


def test_benjamini_yekutieli_in_report(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    report = validate_samples(reference, candidate, config=ValidationConfig(bins=10, correction="by"))
    raw = np.array([f.ks_pvalue for f in report.features])
    np.testing.assert_allclose(
        [f.ks_pvalue_corrected for f in report.features], stats.false_discovery_control(raw, method="by")
    )


# --------------------------------------------------------------------------- per class
def test_per_class_catches_class_dependent_shift() -> None:
    """Swapping the classes' distributions leaves the pooled sample unchanged."""
    rng = np.random.default_rng(8)
    n = 3000
    labels_ref = np.repeat([0, 1], n)
    labels_cand = np.repeat([0, 1], n)
    mean_ref = np.where(labels_ref == 0, -1.0, 1.0)
    reference = rng.normal(size=(2 * n, 3))
    candidate = rng.normal(size=(2 * n, 3))
    reference[:, 0] += mean_ref
    candidate[:, 0] -= mean_ref  # the classes swap their feature-0 distribution

    pooled = validate_samples(reference, candidate, config=COARSE)
    assert pooled.passed, pooled.failures
    assert pooled.per_class == {}

    config = ValidationConfig(bins=10, per_class=True)
    report = validate_samples(
        reference, candidate, labels_reference=labels_ref, labels_candidate=labels_cand, config=config
    )
    assert not report.passed
    assert set(report.per_class) == {0, 1}
    for cls in (0, 1):
        sub = report.per_class[cls]
        assert not sub.passed
        assert [f.name for f in sub.features if not f.passed] == ["feature_0"]
        assert sub.n_reference == sub.n_candidate == n
        assert sub.per_class == {}
        assert not sub.config.per_class
    assert any(msg.startswith("class 1: feature_0: KS") for msg in report.failures)


def test_per_class_only_one_class_shifted() -> None:
    rng = np.random.default_rng(9)
    labels = np.repeat([0, 1], 2000)
    reference, candidate = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    candidate[labels == 1, 1] += 0.4
    report = validate_samples(
        reference,
        candidate,
        labels_reference=labels,
        labels_candidate=labels.astype(np.float64),
        config=ValidationConfig(bins=10, per_class=True),
    )
    assert report.per_class[0].passed
    assert not report.per_class[1].passed
    assert not report.passed


def test_per_class_errors() -> None:
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))
    config = ValidationConfig(per_class=True)
    with pytest.raises(ValueError, match="missing labels_candidate"):
        validate_samples(x, y, labels_reference=np.zeros(100), config=config)
    with pytest.raises(ValueError, match="labels_reference has 99 entries"):
        validate_samples(x, y, labels_reference=np.zeros(99), labels_candidate=np.zeros(100), config=config)
    lonely = np.zeros(100)
    lonely[0] = 1
    with pytest.raises(ValueError, match="class 1 has 1 reference and 0 candidate rows"):
        validate_samples(x, y, labels_reference=lonely, labels_candidate=np.zeros(100), config=config)
    with pytest.raises(ValueError, match="integer class labels"):
        validate_samples(
            x, y, labels_reference=np.full(100, 0.5), labels_candidate=np.zeros(100), config=config
        )


# --------------------------------------------------------------------------- report
def test_to_dict_is_json_serialisable() -> None:
    rng = np.random.default_rng(11)
    reference, candidate = rng.normal(size=(600, 3)), rng.normal(size=(600, 3))
    reference[:, 2] = candidate[:, 2] = 0.0
    labels = np.repeat([0, 1], 300)
    report = validate_samples(
        reference,
        candidate,
        feature_names=["x", "y", "z"],
        labels_reference=labels,
        labels_candidate=labels,
        config=ValidationConfig(per_class=True),
    )
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["n_reference"] == 600
    assert [f["name"] for f in back["features"]] == ["x", "y", "z"]
    assert set(back["per_class"]) == {"0", "1"}
    assert back["config"]["checks"] == list(KNOWN_CHECKS)
    assert back["correlation"]["excluded"] == ["z"]
    assert back["max_jsd"] == pytest.approx(report.max_jsd)


def test_table_sorted_by_jsd() -> None:
    rng = np.random.default_rng(12)
    reference, candidate = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    candidate[:, 1] += 0.5
    candidate[:, 3] *= 1.5
    report = validate_samples(reference, candidate, feature_names=["a", "b", "c", "d"])
    rows = report.table()
    jsd = [row["jsd"] for row in rows]
    assert jsd == sorted(jsd, reverse=True)
    assert {row["feature"] for row in rows[:2]} == {"b", "d"}
    assert rows[0]["jsd"] == report.max_jsd
    assert rows[0]["status"].startswith("FAIL: ")
    assert set(rows[0]) == {
        "feature",
        "jsd",
        "ks_statistic",
        "ks_p_corrected",
        "chi2/ndf",
        "chi2_p_corrected",
        "status",
    }
    assert len(report.table(top=2)) == 2
    with pytest.raises(ValueError, match="top"):
        report.table(top=-1)
    with pytest.raises(KeyError, match="did you mean 'a'"):
        report.feature("A")


def test_report_type(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    report = validate_samples(reference[:50], candidate[:60])
    assert isinstance(report, ValidationReport)
    assert report.config == ValidationConfig()
    assert [f.name for f in report.features] == [f"feature_{i}" for i in range(N_FEATURES)]


# --------------------------------------------------------------------------- errors
def test_nan_input_names_array_and_count() -> None:
    x = np.zeros((10, 2))
    y = np.ones((10, 2))
    y[3, 1] = np.nan
    y[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"candidate contains 2 NaN/inf value\(s\)"):
        validate_samples(x, y)
    with pytest.raises(ValueError, match=r"reference contains 2 NaN/inf"):
        validate_samples(y, x)


@pytest.mark.parametrize(
    ("reference", "candidate", "match"),
    [
        (np.zeros(10), np.zeros((10, 1)), "reference must have 2 dimensions"),
        (np.zeros((10, 2)), np.zeros((10, 2, 1)), "candidate must have 2 dimensions"),
        (np.zeros((10, 2)), np.zeros((10, 3)), "reference has 2 features but candidate has 3"),
        (np.zeros((1, 2)), np.zeros((10, 2)), "reference needs at least 2 rows"),
        (np.zeros((10, 2)), np.zeros((0, 2)), "candidate needs at least 2 rows"),
        (np.zeros((10, 0)), np.zeros((10, 0)), "at least one feature"),
    ],
)
def test_bad_shapes(reference: np.ndarray, candidate: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_samples(reference, candidate)


def test_bad_feature_names_and_types() -> None:
    x = np.random.default_rng(13).normal(size=(20, 2))
    with pytest.raises(ValueError, match="feature_names has 3 names but the samples have 2"):
        validate_samples(x, x, feature_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        validate_samples(x, x, feature_names=["a", "a"])
    with pytest.raises(TypeError, match="numeric"):
        validate_samples(np.array([["a", "b"], ["c", "d"]]), x)
    with pytest.raises(TypeError, match="real-valued"):
        validate_samples(x.astype(np.complex128), x)
    with pytest.raises(TypeError, match="ValidationConfig"):
        validate_samples(x, x, config={"bins": 10})  # type: ignore[arg-type]


def test_unknown_check_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown check name\(s\) 'kl'.*'ks', 'chi2', 'jsd', 'corr'"):
        ValidationConfig(checks=("ks", "kl"))
    with pytest.raises(ValueError, match="tuple of check names"):
        ValidationConfig(checks="ks")  # type: ignore[arg-type]
    assert ValidationConfig(checks=("ks", "ks")).checks == ("ks",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bins": 1}, "bins must be an integer >= 2"),
        ({"bins": 2.5}, "bins must be an integer >= 2"),
        ({"ks_alpha": 0.0}, "ks_alpha must lie strictly between 0 and 1"),
        ({"chi2_alpha": 1.0}, "chi2_alpha"),
        ({"corr_alpha": float("nan")}, "corr_alpha"),
        ({"max_jsd": -0.1}, "max_jsd must be a non-negative number"),
        ({"max_rel_corr_change": float("nan")}, "max_rel_corr_change"),
        ({"correction": "bonferroni"}, "correction must be one of 'holm', 'by', 'none'"),
    ],
)
def test_config_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ValidationConfig(**kwargs)  # type: ignore[arg-type]
