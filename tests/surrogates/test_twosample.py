"""Classifier two-sample test: power, its Mann-Whitney null, the weight map of where it fails."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

from aalearn.surrogates.twosample import C2STResult, WeightRegion, c2st, classifier_weights, weight_regions


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Oversubscribed OpenMP/BLAS threads on a shared 2-core machine are 10-100x slower than one."""
    import sklearn.ensemble  # noqa: F401 - load scikit-learn's OpenMP runtime before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def test_c2st_detects_a_wider_feature_and_locates_it() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1000, 3))
    cand = rng.normal(size=(1000, 3)) * [1.0, 1.0, 1.7]
    result = c2st(ref, cand, feature_names=["a", "b", "c"], seed=0, max_iter=50)
    assert result.auc > 0.55
    assert result.pvalue < 1e-6
    assert result.significance > 5
    top = result.top_regions(3)
    assert top
    assert all(r.feature == "c" for r in top)
    # the candidate over-populates the outer bins of c (w < 1) and under-populates the core (w > 1)
    outer = [r for r in result.regions if r.feature == "c" and not np.isfinite(r.lo * r.hi)]
    assert all(r.mean_weight < 1 for r in outer)
    assert result.to_dict()["top_regions"][0]["feature"] == "c"


def test_c2st_on_one_distribution_is_compatible() -> None:
    rng = np.random.default_rng(1)
    result = c2st(rng.normal(size=(800, 2)), rng.normal(size=(800, 2)), seed=1, max_iter=30)
    assert abs(result.auc - 0.5) < 4 * result.auc_null_std
    assert result.pvalue > 1e-3
    assert result.auc_null_std == pytest.approx(np.sqrt((801) / (12 * 400 * 400)), rel=1e-6)


def test_mlp_classifier_works() -> None:
    rng = np.random.default_rng(2)
    shifted = rng.normal(size=(600, 2)) + np.array([0.0, 0.8])
    result = c2st(rng.normal(size=(600, 2)), shifted, classifier="mlp", seed=0)
    assert result.classifier == "mlp"
    assert result.auc > 0.6


def test_bad_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    with pytest.raises(ValueError, match="classifier"):
        c2st(x, x, classifier="svm")
    with pytest.raises(ValueError, match="test_fraction"):
        c2st(x, x, test_fraction=1.0)
    with pytest.raises(ValueError, match="at least 20"):
        c2st(x[:10], x)
    with pytest.raises(ValueError, match="same features"):
        c2st(x, rng.normal(size=(100, 3)))
    with pytest.raises(ValueError, match="weights must have shape"):
        weight_regions(x, x, np.ones(5))


def test_weights_and_regions() -> None:
    assert classifier_weights([0.5, 0.2, 0.8]) == pytest.approx([1.0, 4.0, 0.25])
    assert classifier_weights([0.5], class_ratio=2.0) == pytest.approx([2.0])
    rng = np.random.default_rng(0)
    ref, cand = rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1))
    w = np.where(cand[:, 0] > 1.3, 2.0, 1.0) * rng.uniform(0.9, 1.1, size=2000)
    regions = weight_regions(ref, cand, w, feature_names=["m"], bins=10)
    assert regions[0].lo > 1.0
    assert regions[0].mean_weight == pytest.approx(2.0, rel=0.05)
    assert "under-populates" in regions[0].describe()
    empty = C2STResult(0.5, 0.5, 0.0, 0.01, 10, 10, "hgb", (WeightRegion("m", 0.0, 1.0, 20, 1.01, 0.5),))
    assert empty.top_regions() == []


@pytest.mark.slow
def test_c2st_pvalues_are_uniform_under_the_null() -> None:
    rng = np.random.default_rng(7)
    pvalues = [
        c2st(rng.normal(size=(150, 2)), rng.normal(size=(150, 2)), seed=s, max_iter=10).pvalue
        for s in range(30)
    ]
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01
