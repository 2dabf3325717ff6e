"""Photon merging (calorimeter granularity): invariants and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.physics import constituent_mass, merge_photons
from aalearn.physics.kinematics import four_momenta


def test_collinear_photons_merge_and_momentum_is_conserved() -> None:
    p = np.array([[40.0, 0.5, 3.13], [10.0, 0.505, -3.14], [30.0, 0.8, 0.1], [5.0, 0.9, 0.2]])
    photon = np.array([True, True, False, True])
    out = merge_photons(p, photon, radius=0.02)
    assert out.shape == (3, 3), "the pair across the phi boundary merges; the far photon does not"
    assert np.all(np.diff(out[:, 0]) <= 0), "objects come out sorted by pT"
    # three-momentum is conserved exactly; the merged object is massless, so the energy drops
    # by m_pair^2 / 2E (~1e-5 relative for a collinear pair) and the jet mass barely moves
    np.testing.assert_allclose(four_momenta(out).sum(0)[1:], four_momenta(p).sum(0)[1:], rtol=1e-12)
    np.testing.assert_allclose(four_momenta(out).sum(0)[0], four_momenta(p).sum(0)[0], rtol=1e-4)
    np.testing.assert_allclose(constituent_mass(out[None]), constituent_mass(p[None]), rtol=1e-2)


def test_hadrons_never_merge_and_radius_zero_is_identity() -> None:
    p = np.array([[20.0, 0.0, 0.0], [10.0, 0.001, 0.0], [5.0, 0.0, 0.001]])
    hadrons = np.zeros(3, dtype=bool)
    np.testing.assert_array_equal(merge_photons(p, hadrons, radius=0.05), p)
    np.testing.assert_array_equal(merge_photons(p, ~hadrons, radius=0.0), p)
    assert merge_photons(p, ~hadrons, radius=0.05).shape == (1, 3)


def test_merging_is_idempotent_on_random_photons() -> None:
    rng = np.random.default_rng(2)
    p = np.column_stack([rng.exponential(10, 60), rng.normal(0, 0.05, 60), rng.normal(0, 0.05, 60)])
    once = merge_photons(p, np.ones(60, dtype=bool), radius=0.02)
    twice = merge_photons(once, np.ones(len(once), dtype=bool), radius=0.02)
    assert len(once) < 60
    # after one pass no two cluster seeds are closer than the radius... unless two clusters grew
    # towards each other; a second pass can then only merge, never split
    assert len(twice) <= len(once)
    np.testing.assert_allclose(four_momenta(twice).sum(0)[1:], four_momenta(p).sum(0)[1:], rtol=1e-10)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        merge_photons(np.zeros((3, 2)), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="is_photon"):
        merge_photons(np.zeros((3, 3)), np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="radius"):
        merge_photons(np.zeros((3, 3)), np.zeros(3, dtype=bool), radius=-1.0)
    bad = np.ones((2, 3))
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        merge_photons(bad, np.ones(2, dtype=bool))
