"""TopoDNN preprocessing invariants and kinematics edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.physics import (
    CHALLENGE_PT_SCALE_GEV,
    challenge_features,
    constituent_mass,
    features_mass,
    features_to_constituents,
    topodnn_preprocess,
    wrap_phi,
)


def _random_jets(n: int, k: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pt = np.sort(rng.exponential(20.0, size=(n, k)), axis=1)[:, ::-1] + 0.1
    eta0 = rng.uniform(-2, 2, size=(n, 1))
    phi0 = rng.uniform(-np.pi, np.pi, size=(n, 1))
    eta = eta0 + rng.normal(0, 0.3, size=(n, k))
    phi = wrap_phi(phi0 + rng.normal(0, 0.3, size=(n, k)))
    return np.stack([pt, eta, phi], axis=-1)


def test_invariants_on_random_jets() -> None:
    c = _random_jets(500)
    x = topodnn_preprocess(c)
    fs = challenge_features()
    assert x.shape == (500, 87)
    assert np.all(x[:, fs.index("ConstPhi_1")] <= 0), "phi_1 <= 0 after the rotation"
    full = features_to_constituents(x)
    assert np.all(full[:, 0, 1:] == 0), "eta_0 and phi_0 are zero"
    assert np.all(full[:, 1, 1] == 0), "eta_1 is zero"
    # pT scaled by the documented constant and order preserved
    np.testing.assert_allclose(full[:, :, 0], c[:, :30, 0] / CHALLENGE_PT_SCALE_GEV, rtol=1e-12)
    assert np.all(np.diff(full[:, :, 0], axis=1) <= 0)
    # pairwise distances in (eta, phi) are preserved by translation + rotation
    d_before = np.hypot(c[:, 2, 1] - c[:, 0, 1], wrap_phi(c[:, 2, 2] - c[:, 0, 2]))
    d_after = np.hypot(full[:, 2, 1], full[:, 2, 2])
    np.testing.assert_allclose(d_after, d_before, rtol=1e-9, atol=1e-12)
    # second constituent sits at distance r1 straight below the origin
    r1 = np.hypot(c[:, 1, 1] - c[:, 0, 1], wrap_phi(c[:, 1, 2] - c[:, 0, 2]))
    np.testing.assert_allclose(-full[:, 1, 2], r1, rtol=1e-9)


def test_phi_wrap_across_the_boundary() -> None:
    c = np.array([[[200.0, 0.1, 3.1], [100.0, 0.1, -3.1], [50.0, 0.2, 3.0]]])
    x = topodnn_preprocess(c, n_constituents=3)
    full = features_to_constituents(x, n_constituents=3)
    # constituents 0 and 1 are 2*pi - 6.2 = 0.0832 apart in phi, not 6.2
    assert full[0, 1, 2] == pytest.approx(-(2 * np.pi - 6.2), abs=1e-12)


def test_zero_padding_and_flip() -> None:
    c = np.zeros((2, 3, 3))
    c[:, 0] = [300.0, 0.5, 1.0]
    c[:, 1] = [100.0, 0.7, 1.0]
    c[:, 2] = [50.0, 0.5, 1.3]
    x = topodnn_preprocess(c)  # padded from 3 to 30 constituents
    full = features_to_constituents(x)
    assert np.all(full[:, 3:] == 0), "padded constituents are all zero"
    flipped = features_to_constituents(topodnn_preprocess(c, flip_eta=True))
    assert np.all((flipped[:, :, 0] * flipped[:, :, 1]).sum(axis=1) >= 0)
    one = np.zeros((1, 1, 3))
    one[0, 0] = [500.0, 1.0, 2.0]
    x1 = topodnn_preprocess(one)
    assert x1[0, 0] == pytest.approx(500.0 / CHALLENGE_PT_SCALE_GEV)
    assert np.all(x1[0, 1:] == 0)


def test_mass_is_approximately_preserved() -> None:
    c = _random_jets(200, k=30, seed=3)
    m_true = constituent_mass(c)
    m_feat = features_mass(topodnn_preprocess(c), pt_scale=CHALLENGE_PT_SCALE_GEV)
    rel = np.abs(m_feat / m_true - 1)
    # the (eta, phi)-plane rotation mixes cosh(d_eta) and cos(d_phi): exact only at small angles
    assert np.median(rel) < 0.02
    assert rel.max() < 0.1


def test_mass_of_known_pair() -> None:
    # two massless particles: m^2 = 2 pT1 pT2 (cosh(d_eta) - cos(d_phi))
    c = np.array([[[100.0, 0.0, 0.0], [50.0, 0.4, 0.3]]])
    expected = np.sqrt(2 * 100 * 50 * (np.cosh(0.4) - np.cos(0.3)))
    assert constituent_mass(c)[0] == pytest.approx(expected, rel=1e-12)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        topodnn_preprocess(np.zeros((3, 30, 2)))
    bad = _random_jets(2)
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        topodnn_preprocess(bad)
    neg = _random_jets(2)
    neg[0, 4, 0] = -1.0
    with pytest.raises(ValueError, match="negative pT"):
        topodnn_preprocess(neg)
    with pytest.raises(ValueError, match="pt_scale"):
        topodnn_preprocess(_random_jets(1), pt_scale=-1.0)
    with pytest.raises(ValueError, match="shape"):
        features_to_constituents(np.zeros((2, 90)))


def test_public_file_satisfies_layout_invariants(challenge_dir) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    df = pd.read_feather(challenge_dir / "Clean_Test_Public.feather")
    x = df.drop(columns="Label").to_numpy()
    fs = challenge_features()
    assert np.all(x[:, fs.index("ConstPhi_1")] <= 0)
    assert not fs.out_of_bounds(x).any()
    m = features_mass(x, pt_scale=CHALLENGE_PT_SCALE_GEV)
    # label 0 is the heavier (top) class in the public file
    assert np.median(m[df.Label == 0]) > np.median(m[df.Label == 1]) + 15
