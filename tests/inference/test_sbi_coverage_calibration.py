"""Conformal recalibration of HPD levels (issue 17, item 4: overconfident NPE on sbibm tasks).

Independent truth: a conjugate Gaussian model, theta ~ N(0, 1), x | theta ~ N(theta, 1),
whose exact posterior is N(x/2, 1/2), and an overconfident "posterior" N(x/2, c^2/2) with
c = 1/2. The HPD statistic of the narrow posterior is u = 2 Phi(|Z|/c) - 1 with Z ~ N(0, 1),
so its raw 68.27 % region covers 2 Phi(1/2) - 1 = 0.383 and the HPD mass that covers
68.27 % is 2 Phi(1/c) - 1 = 0.9545.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aalearn.inference.sbi.calibration import LevelCalibration, calibrate_levels, calibrated_verdict
from aalearn.inference.sbi.diagnostics import ExpectedCoverage, coverage_verdict, expected_coverage

C = 0.5


def _u(n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=n)
    return np.asarray(2 * stats.norm.cdf(np.abs(z) / C) - 1)


def _ec(u: np.ndarray) -> ExpectedCoverage:
    levels = np.linspace(0, 1, 21)
    return ExpectedCoverage(levels, np.array([np.mean(u <= lv) for lv in levels]), u, 1000)


def test_level_is_the_conformal_quantile() -> None:
    cal = LevelCalibration(np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6]))  # n = 9
    assert cal.level(0.5) == 0.5  # ceil(10 * 0.5) = 5th smallest
    assert cal.level(0.9) == 0.9  # 9th smallest
    assert cal.level(0.95) == 1.0  # ceil(9.5) = 10 > n: the whole support
    assert cal.level(0.0) == 0.1
    np.testing.assert_allclose(cal.calibrated_u([0.05, 0.5, 0.95]), [0.05, 0.5, 0.95])
    tied = LevelCalibration(np.array([0.2, 0.99, 0.99, 0.99]))  # ties at the top: the middle rank
    np.testing.assert_allclose(tied.calibrated_u([0.99, 0.1]), [0.6, 0.1])  # (1 + 4 + 1) / 10
    with pytest.raises(ValueError, match="at least two"):
        LevelCalibration(np.array([0.5]))
    with pytest.raises(ValueError, match="credibility level"):
        cal.level(1.5)


def test_recalibration_of_an_overconfident_gaussian_posterior() -> None:
    """Tolerances: 3 standard errors; the 68 % quantile of 4000 scores has a standard error
    of 0.0033 in u, the coverage of 4000 test pairs 0.0074 at 68 %."""
    cal = LevelCalibration(_u(4000, 0))
    assert abs(cal.level(0.682689) - 0.954500) < 0.01
    test = _ec(_u(4000, 1))
    assert abs(float(np.mean(test.u <= 0.682689)) - 0.382925) < 3 * math.sqrt(0.38 * 0.62 / 4000)
    assert coverage_verdict(test).verdict == "overconfident"
    fixed = cal.apply(test)
    for level in (0.5, 0.682689, 0.9, 0.954500):
        cover = float(np.mean(fixed.u <= level))
        assert abs(cover - level) < 3 * math.sqrt(level * (1 - level) / 4000), (level, cover)
    assert coverage_verdict(fixed).verdict == "calibrated"


class _Narrow:
    """The overconfident posterior N(x/2, C^2/2) with the sample/log_prob interface."""

    sd = C / math.sqrt(2)

    def sample(self, n: int, x_o: np.ndarray, *, seed: int) -> np.ndarray:
        return np.asarray(x_o[0] / 2 + self.sd * np.random.default_rng(seed).normal(size=(n, 1)))

    def log_prob(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:
        return np.asarray(stats.norm.logpdf(theta[:, 0], x_o[0] / 2, self.sd))


def test_calibrate_levels_with_sampled_posteriors() -> None:
    """End to end through sbi's rank statistics: 400 calibration and 400 test pairs.

    Tolerance of the level: 3 standard errors of the quantile of 400 scores (0.011).
    """
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(800, 1))
    x = theta + rng.normal(size=(800, 1))
    post = _Narrow()
    cal = calibrate_levels(post, theta[:400], x[:400], n_samples=200, seed=1)
    assert abs(cal.level(0.682689) - 0.9545) < 0.033
    raw = expected_coverage(post, theta[400:], x[400:], n_samples=200, seed=2)
    assert coverage_verdict(raw).verdict == "overconfident"
    assert coverage_verdict(cal.apply(raw)).verdict == "calibrated"
    assert cal.to_dict()["n_calibration"] == 400


def test_recalibrated_verdict_accounts_for_the_calibration_noise() -> None:
    """A calibrated procedure is called calibrated at the stated rate; a miscalibrated one is caught.

    Test and calibration scores both uniform (exchangeable: what a recalibration is meant to
    give), rounded like 1000 posterior samples, 300 pairs each, significance 0.01: two
    one-sided tests give at most 2 % wrong verdicts (binomial sd 0.8 % over 300 toys, bound
    0.04). The one-sample test on the recalibrated scores ignores the calibration pairs'
    noise (measured 20 % wrong verdicts); the guard >= 0.10 shows the toy can tell them apart.
    """
    rng = np.random.default_rng(0)
    levels = np.linspace(0, 1, 21)
    toys, wrong_two_sample, wrong_one_sample = 300, 0, 0
    for _ in range(toys):
        ec = ExpectedCoverage(levels, levels, np.round(rng.random(300), 3), 1000)
        cal = LevelCalibration(np.round(rng.random(300), 3))
        wrong_two_sample += calibrated_verdict(cal, ec).verdict != "calibrated"
        wrong_one_sample += coverage_verdict(cal.apply(ec)).verdict != "calibrated"
    assert wrong_two_sample / toys <= 0.04
    assert wrong_one_sample / toys >= 0.10
    # power: test scores from a posterior that is overconfident against its calibration
    # (u_test = v ** 0.6, v uniform; coverage deficit up to 0.22) are caught (measured 49 of 50;
    # a test that ignored the direction or the scores would catch none)
    caught = 0
    for _ in range(50):
        ec = ExpectedCoverage(levels, levels, rng.random(300) ** 0.6, 1000)
        caught += calibrated_verdict(LevelCalibration(rng.random(300)), ec).verdict == "overconfident"
    assert caught >= 45
