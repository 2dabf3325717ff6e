"""The pile-up overlay (aalearn.data.pileup) and its use in resmear_file (issue 15)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aalearn.data.hdf5 import read_jets_hdf5, write_jets_hdf5
from aalearn.data.pileup import PileupModel, overlay_pileup, overlay_pileup_jet
from aalearn.data.presets import PRESETS, preset_config
from aalearn.data.resmear import resmear_file
from aalearn.physics.features import challenge_feature_names
from aalearn.physics.preprocessing import topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel


def _jets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    c = np.zeros((n, k, 3))
    c[..., 0] = np.sort(rng.exponential(3.0, (n, k)) + 0.4, axis=1)[:, ::-1]
    c[..., 1] = rng.normal(0.5, 0.1, (n, k))
    c[..., 2] = rng.normal(3.1, 0.1, (n, k))  # straddles φ = π: the axis must wrap
    return c


def test_overlay_on_the_truncated_jet_equals_overlay_on_the_full_jet() -> None:
    # the generator keeps the 30 hardest objects; the overlay must give the same 30 hardest pT
    # as an overlay on all the jet's objects (same random numbers: the counts and pT draws do
    # not depend on K)
    full = _jets(300, 60, np.random.default_rng(1))
    model = PileupModel(mu=60.0, mean_excess=2.0)  # hard pile-up, so that it often enters the top 30
    from_full = overlay_pileup(full, model, np.random.default_rng(5))[:, :30]
    from_cut = overlay_pileup(full[:, :30], model, np.random.default_rng(5))
    np.testing.assert_array_equal(from_cut[..., 0], from_full[..., 0])
    changed = np.mean(np.any(from_cut[..., 0] != full[:, :30, 0], axis=1))
    assert changed > 0.5  # the test is not vacuous: pile-up displaced objects in most jets
    assert np.all(np.diff(from_cut[..., 0], axis=1) <= 0)


def test_overlay_count_position_and_spectrum_follow_the_model() -> None:
    # 5 hard objects at the axis, room for every overlaid particle: count ~ Poisson(μ ρ π R²),
    # ΔR to the axis uniform in the disc (mean 2R/3, max R), pT - pt_min ~ Exp(mean_excess)
    n, model = 4000, PileupModel(mu=21.0, density=0.65, pt_min=0.4, mean_excess=0.45, radius=0.5)
    c = np.zeros((n, 60, 3))
    c[:, :5, 0] = 100.0
    c[:, :5, 1], c[:, :5, 2] = 1.2, -3.1
    out = overlay_pileup(c, model, np.random.default_rng(2))
    pu = out[:, 5:]
    real = pu[..., 0] > 0
    lam = model.expected_particles()
    assert lam == pytest.approx(21.0 * 0.65 * math.pi * 0.25)
    # tolerance: 4 standard errors of the mean of a Poisson count (sqrt(λ / n))
    assert real.sum(axis=1).mean() == pytest.approx(lam, abs=4 * math.sqrt(lam / n))
    deta = pu[..., 1][real] - 1.2
    dphi = (pu[..., 2][real] + 3.1 + math.pi) % (2 * math.pi) - math.pi
    dr = np.hypot(deta, dphi)
    assert dr.max() <= 0.5 + 1e-9
    # uniform disc: ΔR has mean 2R/3 and standard deviation R/sqrt(18); 4 standard errors
    assert dr.mean() == pytest.approx(2 * 0.5 / 3, abs=4 * (0.5 / math.sqrt(18)) / math.sqrt(dr.size))
    excess = pu[..., 0][real] - 0.4
    assert excess.min() >= 0
    assert excess.mean() == pytest.approx(0.45, abs=4 * 0.45 / math.sqrt(excess.size))
    np.testing.assert_array_equal(out[:, :5], c[:, :5])  # the hard objects are untouched


def test_bad_pileup_input_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="mu must be a finite non-negative"):
        PileupModel(mu=-1.0)
    with pytest.raises(ValueError, match="radius must be positive"):
        PileupModel(radius=0.0)
    with pytest.raises(ValueError, match=r"shape \(N, K, 3\)"):
        overlay_pileup(np.zeros((3, 30)), PileupModel(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="no object"):
        overlay_pileup(np.zeros((2, 30, 3)), PileupModel(), np.random.default_rng(0))


def test_resmear_file_with_pileup_overlays_before_smearing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 40
    unsmeared = _jets(n, 30, rng)
    arrays = {
        "features": topodnn_preprocess(unsmeared), "features_truth": topodnn_preprocess(unsmeared),
        "labels": np.zeros(n), "constituents": unsmeared, "constituents_truth": unsmeared,
        "constituents_unsmeared": unsmeared, "jets": np.ones((n, 5)), "chunk_index": np.zeros(n),
        "chunk_seeds": np.array([7]),
    }  # fmt: skip
    attrs = {"feature_names": challenge_feature_names(), "config": {}, "pt_scale_gev": 1.0}
    src = write_jets_hdf5(tmp_path / "in.h5", arrays, attrs)
    res, model = ResolutionModel(angle_constant=0.01), PileupModel(mu=80.0, mean_excess=3.0)
    out = read_jets_hdf5(resmear_file(src, tmp_path / "out.h5", res, seed=4, pileup=model))
    expected_rng = np.random.default_rng(4)
    overlaid = overlay_pileup(unsmeared, model, expected_rng)
    expected = res.smear(overlaid, expected_rng)
    np.testing.assert_allclose(out.extras["constituents_unsmeared"], overlaid, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.extras["constituents"], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(overlaid, unsmeared)  # the overlay changed the jets
    assert PileupModel(**out.metadata["config"]["pileup"]) == model
    with pytest.raises(ValueError, match="already has a pile-up overlay"):
        resmear_file(tmp_path / "out.h5", tmp_path / "again.h5", res, pileup=model)


def test_resmear_file_requires_the_objects_after_the_overlay(tmp_path: Path) -> None:
    # jets generated with min_constituents=0: some have few objects (an isolated lepton, 1-3
    # objects); the 30-object requirement applies after the overlay and keeps the rows aligned
    rng = np.random.default_rng(8)
    n = 60
    unsmeared = _jets(n, 30, rng)
    n_objects = np.where(np.arange(n) % 3 == 0, 2, 30)
    unsmeared[np.arange(30)[None, :] >= n_objects[:, None]] = 0.0
    jets = np.column_stack([np.arange(n), np.zeros((n, 4))])
    arrays = {
        "features": topodnn_preprocess(unsmeared), "features_truth": topodnn_preprocess(unsmeared),
        "labels": np.arange(n) % 2, "constituents": unsmeared, "constituents_truth": unsmeared,
        "constituents_unsmeared": unsmeared, "jets": jets, "chunk_index": np.zeros(n),
        "chunk_seeds": np.array([7]),
    }  # fmt: skip
    attrs = {"feature_names": challenge_feature_names(), "config": {}, "pt_scale_gev": 1.0}
    src = write_jets_hdf5(tmp_path / "in.h5", arrays, attrs)
    model = PileupModel(mu=21.0, density=2.0)  # λ = 33: a 2-object jet reaches 30 in about 80 % of cases
    out = read_jets_hdf5(
        resmear_file(src, tmp_path / "out.h5", ResolutionModel(), seed=2, pileup=model, min_objects=30)
    )
    overlaid = overlay_pileup(unsmeared, model, np.random.default_rng(2))
    keep = (overlaid[..., 0] > 0).sum(axis=1) >= 30
    assert keep[n_objects == 30].all()
    assert 0 < keep[n_objects == 2].sum() < (n_objects == 2).sum()  # some lone objects gain 28 particles
    assert len(out) == keep.sum()
    np.testing.assert_array_equal(out.extras["jets"][:, 0], np.flatnonzero(keep))
    np.testing.assert_array_equal(out.labels, (np.arange(n) % 2)[keep])
    np.testing.assert_allclose(out.extras["constituents_unsmeared"], overlaid[keep], rtol=1e-6, atol=1e-6)
    assert out.metadata["config"]["min_objects_after_overlay"] == 30
    with pytest.raises(ValueError, match="no jet of"):
        resmear_file(src, tmp_path / "none.h5", ResolutionModel(), min_objects=31)
    with pytest.raises(ValueError, match="min_objects must be a non-negative integer"):
        resmear_file(src, tmp_path / "bad.h5", ResolutionModel(), min_objects=-1)


def test_overlay_of_one_jet_keeps_every_object_and_adds_the_particles() -> None:
    # a lone hard object (an isolated lepton) gains the overlaid particles, nothing is truncated
    objects = np.array([[150.0, 0.2, -1.0], [2.0, 0.25, -1.1]])
    model = PileupModel(mu=21.0, density=1.5, mean_excess=3.0)
    out = overlay_pileup_jet(objects, model, np.random.default_rng(4))
    same = overlay_pileup(
        np.concatenate([objects, np.zeros((200, 3))])[None], model, np.random.default_rng(4)
    )[0]
    np.testing.assert_array_equal(out, same[same[:, 0] > 0])
    assert len(out) > 2 + 10  # λ = 24.7 particles expected
    np.testing.assert_array_equal(out[0], objects[0])


def test_cms_challenge_preset_carries_its_effective_overlay() -> None:
    # documented in aalearn.data.presets: μ = 21, 1.5 particles per unit area per interaction
    # above 0.4 GeV with 3.0 GeV mean excess -> about 25 particles and 84 GeV in an R = 0.5 disc
    overlay = PRESETS["cms-challenge"].overlay
    assert overlay is not None
    assert overlay == PileupModel(mu=21.0, density=1.5, pt_min=0.4, mean_excess=3.0, radius=0.5)
    assert overlay.expected_particles() == pytest.approx(24.74, abs=0.01)
    assert overlay.expected_particles() * (overlay.pt_min + overlay.mean_excess) == pytest.approx(
        84.1, abs=0.1
    )
    assert overlay.pt_min == preset_config("cms-challenge", "w").constituent_pt_min
