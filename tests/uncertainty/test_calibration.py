"""Calibration metrics versus hand values, sklearn and synthetic scores; temperature scaling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import brier_score_loss, log_loss

from aalearn.uncertainty import (
    ReliabilityCurve,
    TemperatureScaling,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)

# Small hand example, 5 equal-width bins (0, .2, .4, .6, .8, 1]:
#   p      0.9  0.9  0.1  0.3  0.65 0.55
#   label  1    0    0    1    1    0
#   conf   0.9  0.9  0.9  0.7  0.65 0.55
#   right  1    0    1    0    1    0
# bin (.8, 1]: conf 0.9, acc 2/3, weight 3/6; bin (.6, .8]: conf 0.675, acc 1/2, weight 2/6;
# bin (.4, .6]: conf 0.55, acc 0, weight 1/6.
HAND_P = np.array([0.9, 0.9, 0.1, 0.3, 0.65, 0.55])
HAND_Y = np.array([1, 0, 0, 1, 1, 0])
HAND_GAPS = np.array([0.9 - 2 / 3, 0.675 - 0.5, 0.55])
HAND_W = np.array([3, 2, 1]) / 6


def _calibrated(n: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(np.int64)
    return y, p


def test_ece_hand_example_all_norms() -> None:
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=5) == pytest.approx(np.sum(HAND_W * HAND_GAPS))
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=5, norm="l2") == pytest.approx(
        math.sqrt(np.sum(HAND_W * HAND_GAPS**2))
    )
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=5, norm="max") == pytest.approx(0.55)


def test_ece_hand_example_quantile_bins() -> None:
    # confidences sorted: .55 .65 .7 | .9 .9 .9 -> edges [.55, .8, .9]
    # bin 1: conf mean 0.63333, acc 1/3; bin 2: conf 0.9, acc 2/3
    expected = 0.5 * abs(1 / 3 - (0.55 + 0.65 + 0.7) / 3) + 0.5 * abs(2 / 3 - 0.9)
    got = expected_calibration_error(HAND_Y, HAND_P, n_bins=2, strategy="quantile")
    assert got == pytest.approx(expected)


def test_ece_small_for_calibrated_scores_and_large_for_miscalibrated() -> None:
    y, p = _calibrated()
    for strategy in ("uniform", "quantile"):
        assert expected_calibration_error(y, p, strategy=strategy) < 0.01
    miscal = p**3  # systematically under-predicts P(label=1)
    assert expected_calibration_error(y, miscal) > 0.1
    assert expected_calibration_error(y, miscal, strategy="quantile") > 0.1
    assert expected_calibration_error(y, miscal, norm="max") > expected_calibration_error(y, miscal)


def test_quantile_bins_have_equal_mass() -> None:
    y, p = _calibrated(n=10_000)
    curve = reliability_curve(y, p, n_bins=10, strategy="quantile")
    assert curve.counts.sum() == 10_000
    assert curve.counts.min() >= 990
    assert curve.counts.max() <= 1010
    assert curve.prob_counts is not None
    assert curve.prob_counts.min() >= 990


def test_binary_and_two_column_multiclass_agree() -> None:
    y, p = _calibrated(n=5_000, seed=2)
    p = np.where(p == 0.5, 0.49, p)  # avoid the tie, where argmax and p >= 0.5 differ
    two = np.stack([1 - p, p], axis=1)
    for norm in ("l1", "l2", "max"):
        assert expected_calibration_error(y, two, norm=norm) == pytest.approx(
            expected_calibration_error(y, p, norm=norm), abs=1e-12
        )
    assert negative_log_likelihood(y, two) == pytest.approx(negative_log_likelihood(y, p), rel=1e-12)
    assert brier_score(y, two) == pytest.approx(2 * brier_score(y, p), rel=1e-12)


def test_multiclass_top_label_ece_hand_example() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    labels = np.array([0, 2, 2])
    # conf 0.7 (right), 0.8 (wrong), 0.4 (right); 5 bins: (.6,.8] holds 0.7 and 0.8, (.2,.4] holds 0.4
    expected = (2 / 3) * abs(0.5 - 0.75) + (1 / 3) * abs(1.0 - 0.4)
    assert expected_calibration_error(labels, probs, n_bins=5) == pytest.approx(expected)


def test_brier_and_nll_hand_values_and_sklearn() -> None:
    assert brier_score([1, 0], [0.8, 0.4]) == pytest.approx(0.1)
    assert negative_log_likelihood([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    rng = np.random.default_rng(5)
    p = rng.uniform(0.01, 0.99, size=1000)
    y = rng.integers(0, 2, size=1000)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert negative_log_likelihood(y, p) == pytest.approx(log_loss(y, p), rel=1e-10)
    probs = rng.dirichlet(np.ones(4), size=1000)
    labels = rng.integers(0, 4, size=1000)
    assert negative_log_likelihood(labels, probs) == pytest.approx(
        log_loss(labels, probs, labels=[0, 1, 2, 3]), rel=1e-10
    )
    onehot = np.eye(4)[labels]
    assert brier_score(labels, probs) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert brier_score(labels, probs) == pytest.approx(
        brier_score_loss(labels, probs, labels=[0, 1, 2, 3]), rel=1e-12
    )


def test_nll_is_finite_for_confident_mistakes() -> None:
    assert negative_log_likelihood([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-12))


def test_reliability_curve_views() -> None:
    curve = reliability_curve([0, 1, 1, 1], [0.25, 0.7, 0.85, 0.95], n_bins=5)
    assert isinstance(curve, ReliabilityCurve)
    assert curve.binary
    assert curve.n_bins == 5
    np.testing.assert_allclose(curve.edges, np.linspace(0, 1, 6))
    assert curve.counts.tolist() == [0, 0, 0, 2, 2]
    np.testing.assert_allclose(curve.confidence[3:], [0.725, 0.9])
    np.testing.assert_allclose(curve.accuracy[3:], [1.0, 1.0])
    assert np.isnan(curve.confidence[:3]).all()
    assert curve.prob_counts is not None
    assert curve.prob_mean is not None
    assert curve.frac_positive is not None
    assert curve.prob_counts.tolist() == [0, 1, 0, 1, 2]
    np.testing.assert_allclose(curve.prob_mean[[1, 3, 4]], [0.25, 0.7, 0.9])
    np.testing.assert_allclose(curve.frac_positive[[1, 3, 4]], [0.0, 1.0, 1.0])
    errors = curve.frac_positive_errors()
    assert np.isnan(errors[0])
    assert errors[4] == 0.0
    assert json.loads(json.dumps(curve.to_dict()))["confidence"][0] is None

    multi = reliability_curve([0, 1], [[0.7, 0.3], [0.2, 0.8]], n_bins=4)
    assert not multi.binary
    assert multi.n_classes == 2
    with pytest.raises(ValueError, match="binary"):
        multi.frac_positive_errors()


def test_calibrated_scores_lie_on_the_diagonal() -> None:
    y, p = _calibrated()
    curve = reliability_curve(y, p, n_bins=10)
    assert curve.prob_mean is not None
    assert curve.frac_positive is not None
    np.testing.assert_allclose(curve.frac_positive, curve.prob_mean, atol=0.01)
    np.testing.assert_allclose(curve.accuracy[5:], curve.confidence[5:], atol=0.01)


def test_calibration_summary() -> None:
    y, p = _calibrated(n=2000)
    s = calibration_summary(y, p, n_bins=10, norm="l2")
    assert set(s) == {"ece", "brier", "nll", "n_bins", "norm", "strategy", "n"}
    assert s["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=10, norm="l2"))
    assert s["brier"] == pytest.approx(brier_score(y, p))
    assert s["nll"] == pytest.approx(negative_log_likelihood(y, p))
    assert (s["n_bins"], s["norm"], s["strategy"], s["n"]) == (10, "l2", "uniform", 2000)
    json.dumps(s)


# --------------------------------------------------------------------------- temperature scaling
def _calibrated_logits(n: int = 50_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=n)
    y = (rng.uniform(size=n) < expit(z)).astype(np.int64)
    return z, y


def test_temperature_recovers_overconfidence_factor() -> None:
    z, y = _calibrated_logits()
    ts = TemperatureScaling().fit(3.0 * z, y)
    assert ts.is_fitted
    assert ts.temperature == pytest.approx(3.0, rel=0.1)
    assert ts.nll_before is not None
    assert ts.nll_after is not None
    assert ts.nll_after < ts.nll_before
    p_after = ts.transform(3.0 * z)
    assert negative_log_likelihood(y, p_after) == pytest.approx(ts.nll_after, rel=1e-6)
    assert negative_log_likelihood(y, p_after) < negative_log_likelihood(y, expit(3.0 * z))
    assert expected_calibration_error(y, p_after) < expected_calibration_error(y, expit(3.0 * z))
    np.testing.assert_allclose(ts.transform_logits(3.0 * z), 3.0 * z / ts.temperature)
    # ranking, hence the ROC curve, is unchanged
    assert (np.argsort(p_after, kind="stable") == np.argsort(z, kind="stable")).all()


def test_temperature_is_one_for_calibrated_logits() -> None:
    z, y = _calibrated_logits(seed=1)
    ts = TemperatureScaling().fit(z, y)
    assert ts.temperature == pytest.approx(1.0, rel=0.1)


def test_temperature_multiclass() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(30_000, 3))
    cum = softmax(logits, axis=1).cumsum(axis=1)
    labels = (rng.uniform(size=(30_000, 1)) > cum).sum(axis=1)
    ts = TemperatureScaling().fit(3.0 * logits, labels)
    assert ts.temperature == pytest.approx(3.0, rel=0.1)
    probs = ts.transform(3.0 * logits)
    assert probs.shape == (30_000, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="fitted on"):
        ts.transform(np.zeros(5))
    with pytest.raises(ValueError, match="fitted on"):
        ts.transform(np.zeros((5, 4)))


def test_temperature_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TemperatureScaling().transform(np.zeros(3))
    with pytest.raises(ValueError, match="bounds"):
        TemperatureScaling(bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        TemperatureScaling().fit(np.array([0.0, np.nan]), [0, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        TemperatureScaling().fit(np.array([0.0, 1.0]), [0, 2])
    with pytest.raises(ValueError, match="entries"):
        TemperatureScaling().fit(np.array([0.0, 1.0]), [0, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        TemperatureScaling().fit(np.zeros((2, 2, 2)), [0, 1])
    rng = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning, match="bound"):  # logits unrelated to the labels: T -> infinity
        TemperatureScaling().fit(rng.normal(size=2000), rng.integers(0, 2, 2000))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("labels", "probs", "kwargs", "error", "match"),
    [
        ([0, 1], [0.2, 0.3, 0.4], {}, ValueError, "entries"),
        ([0, 1], [0.2, np.nan], {}, ValueError, "NaN"),
        ([0, 1], [0.2, 1.5], {}, ValueError, r"\[0, 1\]"),
        ([0, 2], [0.2, 0.5], {}, ValueError, "0 or 1"),
        ([], [], {}, ValueError, "empty"),
        ([0, 1], [0.2, 0.5], {"n_bins": 0}, ValueError, "n_bins"),
        ([0, 1], [0.2, 0.5], {"n_bins": 2.5}, TypeError, "n_bins"),
        ([0, 1], [0.2, 0.5], {"norm": "l3"}, ValueError, "unknown norm"),
        ([0, 1], [0.2, 0.5], {"strategy": "kmeans"}, ValueError, "unknown strategy"),
        ([0, 3], [[0.5, 0.5], [0.1, 0.9]], {}, ValueError, "class indices"),
        ([0, 1], [[0.5, 0.6], [0.1, 0.9]], {}, ValueError, "sum to 1"),
        ([0, 1], np.zeros((2, 2, 2)), {}, ValueError, "shape"),
        ([[0, 1]], [0.2, 0.5], {}, ValueError, "one-dimensional"),
        (["a", "b"], [0.2, 0.5], {}, TypeError, "numeric"),
    ],
)
def test_metric_validation(labels: object, probs: object, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        expected_calibration_error(labels, probs, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "func", [brier_score, negative_log_likelihood, reliability_curve, calibration_summary]
)
def test_other_functions_validate(func: object) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        func([0, 1], [0.2, 1.5])  # type: ignore[operator]
    with pytest.raises(ValueError, match="entries"):
        func([0, 1, 1], [0.2, 0.5])  # type: ignore[operator]
