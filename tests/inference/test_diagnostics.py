"""Coverage diagnostics on the analytic conjugate-Gaussian problem.

θ ~ N(0, I₂), x | θ ~ N(θ, I₂): the exact posterior is N(x/2, I/2). A posterior with the
right mean but a standard deviation scaled by 0.6 is overconfident; scaled by 1.6 it is
conservative. The diagnostics must say so, and call the exact posterior calibrated.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from aalearn.core.jsonutil import to_jsonable
from aalearn.inference.sbi import Simulator
from aalearn.inference.sbi.diagnostics import (
    CoverageReport,
    ExpectedCoverage,
    coverage_verdict,
    draw_posterior_samples,
    expected_coverage,
    run_coverage,
    sbc_ranks,
    tarp,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

N_TEST = 300
N_SAMPLES = 400


class GaussianPosterior:
    """N(x/2, (scale² / 2) I): scale 1 is the exact posterior."""

    def __init__(self, scale: float = 1.0) -> None:
        self.sd = scale * np.sqrt(0.5)

    def sample(self, n: int, x_o: np.ndarray, *, seed: int) -> np.ndarray:
        x = np.asarray(x_o, dtype=float).reshape(-1)
        return np.random.default_rng(seed).normal(x / 2, self.sd, size=(n, x.size))

    def log_prob(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:
        x = np.asarray(x_o, dtype=float).reshape(-1)
        return stats.norm.logpdf(np.atleast_2d(theta), x / 2, self.sd).sum(axis=1)


def _simulate_gauss(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return theta + rng.normal(size=theta.shape)


def _simulator() -> Simulator:
    prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    return Simulator("conjugate", prior, _simulate_gauss, ("a", "b"), ("xa", "xb"), chunk_size=100)


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    theta = rng.normal(size=(N_TEST, 2))
    return theta, theta + rng.normal(size=(N_TEST, 2))


@pytest.mark.parametrize(
    ("scale", "verdict"), [(1.0, "calibrated"), (0.6, "overconfident"), (1.6, "conservative")]
)
def test_expected_coverage_verdict(pairs: tuple[np.ndarray, np.ndarray], scale: float, verdict: str) -> None:
    theta, x = pairs
    ec = expected_coverage(GaussianPosterior(scale), theta, x, n_samples=N_SAMPLES, seed=1)
    v = coverage_verdict(ec)
    assert v.verdict == verdict, v.message
    at_90 = float(ec.coverage[np.isclose(ec.levels, 0.9)][0])
    if verdict == "calibrated":
        assert abs(at_90 - 0.9) < 0.05
        assert v.p_overconfident > 0.01
        assert v.p_conservative > 0.01
    elif verdict == "overconfident":
        # 2-D: the 90% region of the narrowed posterior covers P(chi2_2 < 0.36 * 4.605) = 0.56
        assert at_90 < 0.75
        assert v.max_deficit > 0.15
        assert v.signed_area < 0
    else:
        assert at_90 > 0.97
        assert v.max_excess > 0.15
        assert v.signed_area > 0


def test_coverage_matches_chi2_for_narrowed_gaussian(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    """HPD coverage of a Gaussian scaled by s at level ℓ is F_chi2(s² F⁻¹_chi2(ℓ)) (2 dof)."""
    theta, x = pairs
    ec = expected_coverage(GaussianPosterior(0.6), theta, x, levels=[0.5, 0.9], n_samples=N_SAMPLES, seed=3)
    expected = stats.chi2.cdf(0.36 * stats.chi2.ppf([0.5, 0.9], 2), 2)
    np.testing.assert_allclose(ec.coverage, expected, atol=0.08)


@pytest.mark.parametrize(("scale", "sign"), [(0.6, -1), (1.6, 1)])
def test_tarp_flags_over_and_under_dispersion(
    pairs: tuple[np.ndarray, np.ndarray], scale: float, sign: int
) -> None:
    theta, x = pairs
    res = tarp(GaussianPosterior(scale), theta, x, n_samples=N_SAMPLES, seed=2)
    assert np.sign(res.atc) == sign
    assert abs(res.atc) > 0.02
    assert res.ecp[0] == 0.0
    assert res.ecp[-1] == pytest.approx(1.0)


def test_tarp_exact_posterior_close_to_diagonal(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    theta, x = pairs
    res = tarp(GaussianPosterior(1.0), theta, x, n_samples=N_SAMPLES, seed=2)
    assert abs(res.atc) < 0.03
    assert np.max(np.abs(res.ecp - res.alpha)) < 0.12


def test_sbc_ranks_uniform_for_exact_and_u_shaped_for_narrow(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    theta, x = pairs
    exact = sbc_ranks(
        GaussianPosterior(1.0), theta, x, n_samples=N_SAMPLES, seed=4, parameter_names=("a", "b")
    )
    narrow = sbc_ranks(GaussianPosterior(0.6), theta, x, n_samples=N_SAMPLES, seed=4)
    assert exact.ranks.shape == (N_TEST, 2)
    assert exact.ranks.min() >= 0
    assert exact.ranks.max() <= N_SAMPLES
    assert (exact.ks_pvalues > 0.01).all()
    assert (narrow.ks_pvalues < 1e-3).all()
    # ∪ shape: many ranks in the outer deciles
    outer = np.mean((narrow.ranks < 0.1 * N_SAMPLES) | (narrow.ranks > 0.9 * N_SAMPLES))
    assert outer > 0.35
    assert set(exact.to_dict()["ks_pvalues"]) == {"a", "b"}


def test_run_coverage_bundles_everything_and_serialises() -> None:
    rep = run_coverage(GaussianPosterior(1.0), _simulator(), N_TEST, seed=5, n_samples=N_SAMPLES)
    assert isinstance(rep, CoverageReport)
    assert rep.verdict.verdict == "calibrated"
    d = rep.to_dict()
    for key in (
        "verdict",
        "max_deficit",
        "max_excess",
        "tarp_atc",
        "sbc_ks_pvalues",
        "expected_coverage",
        "n_test",
    ):
        assert key in d
    assert d["n_test"] == N_TEST
    json.dumps(to_jsonable(d))


def test_run_coverage_overconfident_with_simulator() -> None:
    rep = run_coverage(GaussianPosterior(0.5), _simulator(), 200, seed=6, n_samples=200)
    assert rep.verdict.verdict == "overconfident"
    assert rep.tarp.atc < 0


def test_verdict_from_synthetic_positions() -> None:
    lv = np.linspace(0, 1, 11)
    u = (np.arange(400) + 0.5) / 400
    assert coverage_verdict(ExpectedCoverage(lv, lv, u, 1000)).verdict == "calibrated"
    assert coverage_verdict(ExpectedCoverage(lv, lv, np.sqrt(u), 1000)).verdict == "overconfident"
    assert coverage_verdict(ExpectedCoverage(lv, lv, u**2, 1000)).verdict == "conservative"


def test_bad_inputs() -> None:
    theta = np.zeros((10, 2))
    with pytest.raises(ValueError, match="rows"):
        expected_coverage(GaussianPosterior(), theta, np.zeros((9, 2)), n_samples=50)
    with pytest.raises(TypeError, match="sample"):
        expected_coverage(object(), theta, theta, n_samples=50)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="levels"):
        expected_coverage(GaussianPosterior(), theta, theta, levels=[0.5, 0.2], n_samples=50)
    with pytest.raises(ValueError, match="n_samples"):
        sbc_ranks(GaussianPosterior(), theta, theta, n_samples=3)
    with pytest.raises(ValueError, match="significance"):
        coverage_verdict(
            ExpectedCoverage(np.array([0, 1.0]), np.array([0, 1.0]), np.array([0.5]), 10), significance=2
        )
    bad = theta.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="rows 3"):
        tarp(GaussianPosterior(), bad, theta, n_samples=50)


def test_draw_posterior_samples_checks_shape() -> None:
    class Wrong:
        def sample(self, n: int, x_o: np.ndarray, *, seed: int) -> np.ndarray:
            return np.zeros((n + 1, 2))

        def log_prob(self, theta: np.ndarray, x_o: np.ndarray) -> np.ndarray:
            return np.zeros(len(theta))

    with pytest.raises(ValueError, match="shape"):
        draw_posterior_samples(Wrong(), np.zeros((3, 2)), n_samples=5, seed=0)
