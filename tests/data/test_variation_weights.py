"""Density-ratio weights of modelling variations (``aalearn.data.variation_weights``)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from aalearn.data import variation_weights
from aalearn.data.variation_weights import fit_density_ratio, jet_observables
from aalearn.physics.preprocessing import features_mass


def test_weights_turn_the_nominal_sample_into_the_varied_one() -> None:
    # Analytic case: nominal N(0, 1)², varied N(0.3, 1) × N(0, 1.2). The weighted nominal
    # sample must reproduce the varied means and widths (first coordinate mean 0.3, second
    # width 1.2) within 0.05, where the raw nominal is 0.3 and 0.2 away; the weights' mean over
    # the nominal sample is 1 within 0.05 (they are a density ratio). Tolerances: ~5 σ of
    # the weighted moments with 20,000 jets, plus the boosted trees' binning.
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(20_000, 2))
    x1 = np.c_[rng.normal(0.3, 1.0, 20_000), rng.normal(0.0, 1.2, 20_000)]
    ratio = fit_density_ratio(x0, x1, observables=None, seed=0)
    x_check = rng.normal(size=(20_000, 2))  # nominal jets not in the fit
    w = ratio.weights(x_check)
    assert np.mean(w) == pytest.approx(1.0, abs=0.05)
    assert np.average(x_check[:, 0], weights=w) == pytest.approx(0.3, abs=0.05)
    sd = np.sqrt(np.average(x_check[:, 1] ** 2, weights=w))
    assert sd == pytest.approx(1.2, abs=0.05)
    # the closure on a held-out varied sample: χ² falls from ~50 ndf to a few ndf (the
    # trees' ratio is off by ~10 % rms from the analytic one with 20,000 jets per sample,
    # which leaves χ² ≈ 3 ndf at these statistics); inverted weights would raise it
    x1_check = np.c_[rng.normal(0.3, 1.0, 20_000), rng.normal(0.0, 1.2, 20_000)]
    c = ratio.closure(x_check[:, 0], x_check, x1_check[:, 0])
    assert c["chi2_raw"] > 20 * c["ndf"]
    assert c["chi2_weighted"] < 4.5 * c["ndf"]
    analytic = np.exp(0.3 * x_check[:, 0] - 0.045) / 1.2 * np.exp(x_check[:, 1] ** 2 * (1 - 1 / 1.44) / 2)
    assert np.sqrt(np.mean((w / analytic - 1) ** 2)) < 0.15


def test_identical_samples_give_weights_near_one() -> None:
    # No variation: the ratio is 1; the fitted weights must not follow the samples' noise
    # (standard deviation below 0.1 with 5,000 jets each).
    rng = np.random.default_rng(2)
    ratio = fit_density_ratio(rng.normal(size=(5000, 3)), rng.normal(size=(5000, 3)), observables=None)
    w = ratio.weights(rng.normal(size=(5000, 3)))
    assert np.std(w) < 0.1
    assert np.mean(w) == pytest.approx(1.0, abs=0.05)


def test_jet_observables_mass_equals_the_features_mass(challenge_jets) -> None:  # type: ignore[no-untyped-def]
    # Independent reference: the jet mass of the preprocessing module (features_mass).
    x = challenge_jets(200, seed=3)
    np.testing.assert_allclose(jet_observables(x)[:, 1], features_mass(x), rtol=1e-9, atol=1e-9)


def test_bad_input_is_refused() -> None:
    x = np.zeros((100, 2))
    with pytest.raises(ValueError, match="at least 50 jets"):
        fit_density_ratio(x[:10], x, observables=None)
    with pytest.raises(ValueError, match="same features"):
        fit_density_ratio(x, np.zeros((100, 3)), observables=None)
    with pytest.raises(ValueError, match="clip must be"):
        fit_density_ratio(x, x, observables=None, clip=(2.0, 5.0))


def test_doctests() -> None:
    result = doctest.testmod(variation_weights, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
