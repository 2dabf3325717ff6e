r"""Conformal recalibration of HPD credibility levels: calibrated regions from an overconfident posterior.

A trained posterior :math:`q(\theta|x)` whose highest-posterior-density (HPD) regions
cover the truth less often than claimed (the expected-coverage test of Hermans et al.,
arXiv:2110.06581) can be repaired without retraining. On :math:`n` fresh calibration pairs
:math:`(\theta_i, x_i) \sim p(\theta)p(x|\theta)` compute :math:`u_i`, the posterior mass
more probable than :math:`\theta_i` (:attr:`ExpectedCoverage.u
<aalearn.inference.sbi.diagnostics.ExpectedCoverage.u>`). For a nominal credibility
:math:`\ell`, use the HPD region of mass :math:`\hat q_\ell`, the
:math:`\lceil (n+1)\ell \rceil`-th smallest :math:`u_i`: by exchangeability it contains the
truth with probability at least :math:`\ell` over :math:`p(\theta, x)` (split conformal
prediction with the HPD score; the CDF-based calibration of CP4SBI, Cabezas et al.,
arXiv:2508.17077, and the marginal guarantee of CANVI, Patel et al., arXiv:2305.14275).
The guarantee is marginal, i.e. on average over :math:`x`, which is what expected coverage
measures; regions for a particular :math:`x` can still be too wide or too narrow.

:class:`LevelCalibration` holds the calibration scores; :meth:`LevelCalibration.level`
maps a nominal level to the HPD mass to use and :meth:`LevelCalibration.apply` re-expresses
the coverage statistics of *other* test pairs in calibrated levels, so that
:func:`~aalearn.inference.sbi.diagnostics.coverage_verdict` can check the calibration on
pairs it was not fitted on.

Example:
    >>> import numpy as np
    >>> u_cal = np.random.default_rng(0).random(999) ** 0.5  # an overconfident posterior
    >>> cal = LevelCalibration(u_cal)
    >>> round(cal.level(0.5), 2)  # use the 73 % HPD region for a 50 % credible region
    0.73
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.inference.sbi.diagnostics import (
    DEFAULT_LEVELS,
    CoverageVerdict,
    ExpectedCoverage,
    PosteriorLike,
    Verdict,
    coverage_verdict,
    expected_coverage,
)

__all__ = ["LevelCalibration", "calibrate_levels", "calibrated_verdict"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LevelCalibration:
    """Calibration scores of a posterior: the HPD mass more probable than the truth, per calibration pair.

    Attributes:
        u_cal: ``(n,)`` scores :math:`u_i` in [0, 1] (sorted on construction).

    Example:
        >>> LevelCalibration(np.array([0.2, 0.9, 0.5])).level(0.5)
        0.5
    """

    u_cal: FloatArray

    def __post_init__(self) -> None:
        u = np.sort(np.asarray(self.u_cal, dtype=np.float64).reshape(-1))
        if u.size < 2 or not np.all(np.isfinite(u)) or u[0] < 0 or u[-1] > 1:
            raise ValueError(f"u_cal must hold at least two scores in [0, 1], got {u.size} values")
        object.__setattr__(self, "u_cal", u)

    @property
    def n(self) -> int:
        """Number of calibration pairs."""
        return int(self.u_cal.size)

    def level(self, nominal: float) -> float:
        r"""HPD mass whose region has coverage of at least ``nominal``: :math:`\hat q_\ell`.

        Returns 1.0 (the whole prior support) when ``nominal`` needs more calibration pairs
        than there are (:math:`\lceil (n+1)\ell \rceil > n`).

        Example:
            >>> round(LevelCalibration(np.linspace(0.01, 0.99, 99)).level(0.9), 6)
            0.9
        """
        if not (isinstance(nominal, float | int) and 0 <= nominal <= 1):
            raise ValueError(f"nominal must be a credibility level in [0, 1], got {nominal!r}")
        k = math.ceil((self.n + 1) * float(nominal))
        return 1.0 if k > self.n else float(self.u_cal[max(k, 1) - 1])

    def calibrated_u(self, u: npt.ArrayLike) -> FloatArray:
        r"""Scores of new pairs in calibrated levels: their mid-rank among the calibration scores.

        :math:`(\#\{u_i < u\} + (\#\{u_i = u\} + 1)/2) / (n + 1)`; a new pair lies in the
        calibrated region of nominal level :math:`\ell` when this is at most :math:`\ell`
        (up to the :math:`1/(n+1)` discreteness), so these values are uniform on (0, 1)
        when the calibration holds. Ties matter: with a few hundred posterior samples every
        truth outside all samples gets the same largest score, and counting only the
        smaller calibration scores would rank the whole tied group first (measured on a
        Gaussian toy: a "conservative" verdict for a calibrated region).
        """
        uu = np.asarray(u, dtype=np.float64).reshape(-1)
        left = np.searchsorted(self.u_cal, uu, side="left")
        right = np.searchsorted(self.u_cal, uu, side="right")
        out: FloatArray = np.asarray((left + right + 1.0) / (2.0 * (self.n + 1.0)), dtype=np.float64)
        return out

    def apply(self, coverage: ExpectedCoverage) -> ExpectedCoverage:
        """The expected coverage of the calibrated regions on the (independent) pairs of ``coverage``.

        Example:
            >>> ec = ExpectedCoverage(np.array([0.0, 0.5, 1.0]), np.zeros(3), np.array([0.3, 0.8]), 100)
            >>> LevelCalibration(np.array([0.1, 0.5, 0.9])).apply(ec).u.tolist()
            [0.375, 0.625]
        """
        if not isinstance(coverage, ExpectedCoverage):
            raise TypeError(f"coverage must be an ExpectedCoverage, got {type(coverage).__name__}")
        u = self.calibrated_u(coverage.u)
        cov = np.array([np.mean(u <= lv) for lv in coverage.levels])
        return ExpectedCoverage(levels=coverage.levels, coverage=cov, u=u, n_samples=coverage.n_samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: the HPD masses to use for the usual credibility levels."""
        return {
            "n_calibration": self.n,
            "hpd_mass_for": {
                f"{lv:.4g}": round(self.level(float(lv)), 6) for lv in (0.5, 0.6827, 0.9, 0.9545)
            },
        }


def calibrate_levels(
    posterior: PosteriorLike,
    theta: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    n_samples: int = 1000,
    seed: int = 0,
) -> LevelCalibration:
    """Fit a :class:`LevelCalibration` on calibration pairs that neither training nor testing uses.

    Args:
        posterior: Object with ``sample(n, x_o, *, seed)`` and ``log_prob(theta, x_o)``.
        theta: ``(n, D)`` calibration parameters drawn from the prior.
        x: ``(n, X)`` observations simulated from them.
        n_samples: Posterior samples per pair.
        seed: Seed of the posterior draws.

    Returns:
        The calibration.

    Example:
        >>> cal = calibrate_levels(post, theta_cal, x_cal)  # doctest: +SKIP
        >>> cal.apply(expected_coverage(post, theta_test, x_test)).coverage  # doctest: +SKIP
    """
    ec = expected_coverage(posterior, theta, x, levels=DEFAULT_LEVELS, n_samples=n_samples, seed=seed)
    return LevelCalibration(ec.u)


def calibrated_verdict(
    calibration: LevelCalibration, coverage: ExpectedCoverage, *, significance: float = 0.01
) -> CoverageVerdict:
    """Verdict on the recalibrated regions, with the calibration pairs' own noise in the test.

    The recalibrated score of a test pair is its rank among the calibration scores, so the
    recalibrated coverage at a level is the test pairs' empirical CDF of :math:`u` read at a
    quantile of the *calibration* pairs' empirical CDF: both samples fluctuate. The
    one-sample test of :func:`~aalearn.inference.sbi.diagnostics.coverage_verdict` on the
    recalibrated scores ignores the second one and calls a calibrated procedure
    "conservative" or "overconfident" too often (measured: 20 % of the toys instead of at most 2 % at
    ``significance`` 0.01, 300 test and 300 calibration pairs, 400 toys; tested in
    ``tests/inference/test_sbi_coverage_calibration.py``). Under exchangeability the test and
    calibration scores have the same distribution, which is what the two-sample
    Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``) checks; its one-sided p-values replace
    the one-sample ones. The deficits, excesses and levels still describe the recalibrated curve.

    Args:
        calibration: The :class:`LevelCalibration` (its pairs must not be the test pairs).
        coverage: Expected coverage of the raw posterior on independent test pairs.
        significance: p-value threshold.

    Returns:
        The :class:`~aalearn.inference.sbi.diagnostics.CoverageVerdict` of the recalibrated regions.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> ec = ExpectedCoverage(np.linspace(0, 1, 11), np.linspace(0, 1, 11), rng.random(300), 1000)
        >>> calibrated_verdict(LevelCalibration(rng.random(300)), ec).verdict
        'calibrated'
    """
    base = coverage_verdict(calibration.apply(coverage), significance=significance)
    stats = require("scipy.stats", purpose="the two-sample coverage test")
    u_test, u_cal = np.asarray(coverage.u, dtype=np.float64), calibration.u_cal
    # scipy: "greater" = the first sample's CDF lies above the second's somewhere, i.e. the test
    # scores are smaller (their calibrated regions cover more often): conservative
    p_cons = float(stats.ks_2samp(u_test, u_cal, alternative="greater").pvalue)
    p_over = float(stats.ks_2samp(u_test, u_cal, alternative="less").pvalue)
    n_t, n_c = u_test.size, calibration.n
    pairs = f"{n_t} test and {n_c} calibration pairs"
    verdict: Verdict
    if p_over < significance:
        verdict, msg = (
            "overconfident",
            (
                f"overconfident after recalibration: the regions cover the truth less often than claimed, "
                f"by up to {base.max_deficit:.3f} (two-sample p = {p_over:.2g}, {pairs})"
            ),
        )
    elif p_cons < significance:
        verdict, msg = (
            "conservative",
            (
                f"conservative after recalibration: the regions cover the truth more often than claimed, "
                f"by up to {base.max_excess:.3f} (two-sample p = {p_cons:.2g}, {pairs})"
            ),
        )
    else:
        tol = math.sqrt(-math.log(significance) / 2 * (1 / n_t + 1 / n_c))
        verdict, msg = (
            "calibrated",
            (
                f"calibrated after recalibration: coverage within "
                f"{max(base.max_deficit, base.max_excess):.3f} of the nominal level at every credibility "
                f"level ({pairs} resolve deviations of about {tol:.3f})"
            ),
        )
    return dataclasses.replace(
        base, verdict=verdict, p_overconfident=p_over, p_conservative=p_cons, message=msg
    )
