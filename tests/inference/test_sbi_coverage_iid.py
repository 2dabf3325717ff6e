"""The set-level summary likelihood of the physics SBI (issue 17, item 4: the alpha_s coverage failure).

Independent truths: the exact posterior of a linear-Gaussian toy (the set mean is
sufficient there, so the summary likelihood must reproduce it), and the nominal coverage
of 68 %/95 % intervals over many simulated sets (binomial standard errors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aalearn.inference.sbi.physics import (
    PARAMETERS,
    GridPosterior,
    SummaryLikelihood,
    infer_pythia_parameters,
    jet_summaries,
)
from aalearn.inference.sbi.physics.grid import _features

PT_MIN = 400.0
NAMES = ("top_mass", "alpha_s_fsr")
# per-jet means: A @ (m, a) + b for mass, multiplicity, tau21, tau32; pT does not depend on theta
A = np.array([[0.6, 0.0], [0.1, 300.0], [0.0, 0.8], [-0.002, 1.0]])
B = np.array([50.0, 12.0, 0.3, 0.5])
SIGMA = np.array([20.0, 18.0, 0.15, 0.2])


def _toy(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mu = theta @ A.T + B
    pt = PT_MIN + rng.exponential(100.0, len(theta))
    return np.column_stack([pt, rng.normal(mu, SIGMA)])


def _prior(n: int, rng: np.random.Generator, names: tuple[str, ...] = NAMES) -> np.ndarray:
    return np.column_stack([rng.uniform(PARAMETERS[p].low, PARAMETERS[p].high, n) for p in names])


class _Exact:
    """Exact set log-likelihood of the toy (a sum of Gaussian log-densities; uniform prior)."""

    ensemble = 1

    def log_prob(self, theta: np.ndarray, feats: np.ndarray) -> np.ndarray:
        mu = np.asarray(theta).reshape(-1, 2) @ A.T + B  # (m, 4)
        lp = stats.norm.logpdf(feats[None, :, 1:], mu[:, None, :], SIGMA)
        return np.asarray(lp.sum(axis=(1, 2)))


def test_jet_summaries_values() -> None:
    f = np.array([[1.0, 170.0, 60.0], [2.0, 176.0, 70.0]])
    out = jet_summaries(f, ("jet_pt", "jet_mass", "n_constituents"), mass_windows=(170.0, 182.0), width=6.0)
    np.testing.assert_allclose(out[:, :3], f)
    occupancy = [[1.0, math.exp(-2.0)], [math.exp(-0.5), math.exp(-0.5)]]
    np.testing.assert_allclose(out[:, 3:5], occupancy)
    np.testing.assert_allclose(out[:, 5:], np.array(occupancy) * [[0.0, -2.0], [1.0, -1.0]])
    assert jet_summaries(f[:, [0, 2]], ("jet_pt", "n_constituents")).shape == (2, 2)  # no mass: no windows
    with pytest.raises(ValueError, match="shape"):
        jet_summaries(f, ("jet_pt", "jet_mass"))


def test_summary_posterior_equals_exact_posterior_when_the_mean_is_sufficient() -> None:
    """Linear-Gaussian toy: the summary posterior must match the exact one.

    Tolerances: |mean difference| < 0.1 posterior sd and sd ratio within 5 %: the emulator,
    fitted on 20,000 jets, has a relative error of about sqrt(p/N) ~ 2 % of the per-jet
    spread, i.e. 0.2 set-level standard errors at worst, averaged over the sets here.
    """
    rng = np.random.default_rng(1)
    theta = np.repeat(_prior(2000, rng), 10, axis=0)
    feats = _features(_toy(theta, rng), PT_MIN)
    lik = SummaryLikelihood(theta, feats, parameters=NAMES, mass_windows=())
    grid_s = GridPosterior(lik, NAMES, pt_min=PT_MIN, coarse=21, fine=41)
    grid_e = GridPosterior(_Exact(), NAMES, pt_min=PT_MIN, coarse=21, fine=41)
    dm, ratio = [], []
    for t in _prior(6, rng):
        x = _toy(np.repeat(t[None], 100, axis=0), rng)
        s, e = grid_s.summary(x), grid_e.summary(x)
        dm.append((s.mean - e.mean) / e.std)
        ratio.append(s.std / e.std)
    assert np.max(np.abs(np.mean(dm, axis=0))) < 0.1, np.mean(dm, axis=0)
    assert np.max(np.abs(np.mean(ratio, axis=0) - 1)) < 0.05, np.mean(ratio, axis=0)


@pytest.mark.slow
def test_summary_intervals_cover_nominally() -> None:
    """68 %/95 % coverage of alpha_s over 300 sets of 100 jets, five training sets of 2000 jets.

    Two uninformative summaries (the jet-mass window moments, and pT) ride along: fitting
    their means with cubic slopes instead of the BIC-selected constants lets the slopes'
    noise pose as information (measured: 68 % coverage 0.59 with 4000 training jets).
    Tolerance: 3 binomial standard errors (0.081 and 0.036).
    """
    names = ("alpha_s_fsr",)
    n_sets, n_train_sets = 60, 5
    in68 = []
    in95 = []
    for rep in range(n_train_sets):
        rng = np.random.default_rng(100 + rep)
        theta = np.repeat(_prior(200, rng, names), 10, axis=0)
        full = np.column_stack([np.full(len(theta), 172.5), theta])
        feats = _features(_toy(full, rng), PT_MIN)
        grid = GridPosterior(SummaryLikelihood(theta, feats, parameters=names), names, pt_min=PT_MIN)
        for t in _prior(n_sets, rng, names):
            x = _toy(np.repeat([[172.5, t[0]]], 100, axis=0), rng)
            s = grid.summary(x)
            in68.append(s.interval_68[0, 0] <= t[0] <= s.interval_68[0, 1])
            in95.append(s.interval_95[0, 0] <= t[0] <= s.interval_95[0, 1])
    n = len(in68)
    c68, c95 = float(np.mean(in68)), float(np.mean(in95))
    assert abs(c68 - 0.683) < 3 * math.sqrt(0.683 * 0.317 / n), c68
    assert abs(c95 - 0.954) < 3 * math.sqrt(0.954 * 0.046 / n), c95


def test_uninformative_summaries_keep_a_constant_mean() -> None:
    """BIC keeps degree 0 for summaries that do not depend on alpha_s, a slope for those that do."""
    rng = np.random.default_rng(3)
    alpha = _prior(2000, rng, ("alpha_s_fsr",))
    feats = _features(_toy(np.column_stack([np.full(2000, 172.5), alpha]), rng), PT_MIN)
    lik = SummaryLikelihood(alpha, feats, parameters=("alpha_s_fsr",))
    # summaries: log pT, mass, multiplicity, tau21, tau32, window occupancy, window offset
    assert lik.summary_degrees[[0, 1, 5, 6]].tolist() == [0, 0, 0, 0]
    assert lik.summary_degrees[2] >= 1  # multiplicity: 300 * alpha_s
    # truth 29.25 + 300 alpha; a cubic fit of 2000 jets of spread 18 has a standard error of
    # about 18 * sqrt(16 / 2000) = 1.6 at the prior edges: tolerance 3 standard errors
    np.testing.assert_allclose(lik.emulated_mean([[0.10], [0.14]])[:, 2], [59.25, 71.25], atol=4.8)


def test_summary_likelihood_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    theta = _prior(200, rng)
    feats = _features(_toy(theta, rng), PT_MIN)
    with pytest.raises(ValueError, match="same rows"):
        SummaryLikelihood(theta[:10], feats, parameters=NAMES)
    with pytest.raises(ValueError, match="prior box"):
        SummaryLikelihood(theta + 100.0, feats, parameters=NAMES)
    with pytest.raises(ValueError, match="too few"):
        SummaryLikelihood(theta[:15], feats[:15], parameters=NAMES)
    with pytest.raises(ValueError, match="degree"):
        SummaryLikelihood(theta, feats, parameters=NAMES, degree=0)
    lik = SummaryLikelihood(theta, feats, parameters=NAMES)
    assert lik.log_prob(np.array([[150.0, 0.12]]), feats[:5])[0] == -np.inf  # outside the prior
    with pytest.raises(ValueError, match="set of jets"):
        lik.log_prob(theta[:1], feats[:5, :3])


def test_physics_summary_method_takes_no_network_options() -> None:
    with pytest.raises(ValueError, match="trains no network"):
        infer_pythia_parameters(method="summary", ensemble=3)
    with pytest.raises(ValueError, match="trains no network"):
        infer_pythia_parameters(method="summary", training_batch_size=10)
