"""Detection metrics: PRR (oracle 1, random about 0), AUROC, risk–coverage, ECE, Cohen's h."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aalearn.llm.metrics import (
    auroc_wrong,
    cohens_h,
    confidence_calibration,
    prediction_rejection_ratio,
    rejection_curve,
    risk_coverage_curve,
)


def test_prr_oracle_is_one_and_reverse_is_negative() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2, 200).astype(float)
    assert prediction_rejection_ratio(1 - q, q) == pytest.approx(1.0)
    assert prediction_rejection_ratio(1 - q, q, max_rejection=0.5) == pytest.approx(1.0)
    assert prediction_rejection_ratio(q, q) < -0.9
    # continuous quality: the oracle ranking by -quality
    qc = rng.uniform(size=100)
    assert prediction_rejection_ratio(-qc, qc) == pytest.approx(1.0)


def test_prr_random_is_about_zero() -> None:
    rng = np.random.default_rng(1)
    values = []
    for _ in range(200):
        q = rng.integers(0, 2, 100).astype(float)
        values.append(prediction_rejection_ratio(rng.uniform(size=100), q))
    assert abs(float(np.mean(values))) < 0.03
    # a constant score (all ties) is exactly random
    q = rng.integers(0, 2, 50).astype(float)
    assert prediction_rejection_ratio(np.zeros(50), q) == pytest.approx(0.0, abs=1e-12)


def test_prr_undefined_when_all_equal() -> None:
    assert prediction_rejection_ratio([0.1, 0.2, 0.3], [1, 1, 1]) is None


def test_rejection_curve_levels() -> None:
    frac, mean_q = rejection_curve([0.1, 0.5, 0.9, 0.7], [1, 1, 0, 0], max_rejection=0.5)
    np.testing.assert_allclose(frac, [0.0, 0.25])
    np.testing.assert_allclose(mean_q, [0.5, 2 / 3])
    with pytest.raises(ValueError, match="max_rejection"):
        rejection_curve([0.1], [1], max_rejection=0.0)
    with pytest.raises(ValueError, match="equal length"):
        rejection_curve([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="finite"):
        prediction_rejection_ratio([np.nan, 0.2], [1, 0])


def test_auroc_and_risk_coverage() -> None:
    correct = np.array([1, 1, 0, 0])
    assert auroc_wrong([0.1, 0.2, 0.8, 0.9], correct) == 1.0
    assert auroc_wrong([0.9, 0.8, 0.1, 0.2], correct) == 0.0
    assert auroc_wrong([0.5, 0.5, 0.5, 0.5], correct) == 0.5
    assert auroc_wrong([0.1, 0.2], [1, 1]) is None
    cov, risk = risk_coverage_curve([0.1, 0.2, 0.8, 0.9], correct)
    np.testing.assert_allclose(cov, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.0, 1 / 3, 0.5])
    _, tied = risk_coverage_curve([0.0, 0.0, 0.0, 0.0], correct)
    np.testing.assert_allclose(tied, 0.5)


def test_confidence_calibration() -> None:
    rng = np.random.default_rng(2)
    conf = rng.uniform(size=20_000)
    correct = (rng.uniform(size=conf.size) < conf).astype(float)
    ece, curve = confidence_calibration(conf, correct)
    assert ece < 0.02
    assert curve.binary
    over, _ = confidence_calibration(np.full(1000, 0.95), (rng.uniform(size=1000) < 0.5).astype(float))
    assert over == pytest.approx(0.45, abs=0.05)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidence_calibration([1.5], [1])


def test_cohens_h() -> None:
    assert cohens_h(0.7, 0.7) == 0.0
    assert cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    assert cohens_h(0.2, 0.5) < 0  # an improvement
    assert cohens_h(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="probability"):
        cohens_h(1.2, 0.5)
