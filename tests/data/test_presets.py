"""Generator presets (``aalearn generate --preset``) and named/file resolutions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aalearn.cli.main import app
from aalearn.data.generate import GeneratorConfig
from aalearn.data.hdf5 import read_jets_hdf5, write_jets_hdf5
from aalearn.data.pileup import PileupModel
from aalearn.data.presets import PRESETS, load_pileup, preset_config
from aalearn.data.resmear import resmear_file
from aalearn.physics.features import challenge_feature_names, challenge_features
from aalearn.physics.preprocessing import topodnn_preprocess
from aalearn.physics.resolution import (
    RESOLUTION_ENV,
    RESOLUTIONS,
    ResolutionModel,
    default_resolution,
    load_resolution,
)

runner = CliRunner()


def test_cms_challenge_preset_resolves_per_class_and_validates() -> None:
    top, w = preset_config("cms-challenge", "top"), preset_config("cms-challenge", "w")
    for cfg in (top, w):
        assert isinstance(cfg, GeneratorConfig)  # __post_init__ validated every field
        assert (cfg.ecm, cfg.jet_radius, cfg.w_decays) == (8000.0, 0.5, "inclusive")
        assert cfg.massless_clustering
        assert (cfg.constituent_pt_min, cfg.min_constituents, cfg.resort) == (0.4, 30, False)
        assert cfg.resolution == ResolutionModel.cms_challenge()
        assert not cfg.truth_match
        assert cfg.jets_per_event == "all"
        assert cfg.pileup == PRESETS["cms-challenge"].overlay
        assert cfg.pileup is not None
        assert cfg.pileup.expected_particles() == pytest.approx(21.0 * 1.5 * 3.141592653589793 * 0.25)
    assert (top.process, top.label, w.process, w.label) == ("top", 0, "w", 1)
    # per-class windows start below the challenge's 1 % ΣpT quantiles (328 / 170 GeV)
    assert top.pt_min == 300.0
    assert w.pt_min == 170.0
    assert top.pthat_min < top.pt_min
    assert w.pthat_min < w.pt_min
    # explicit settings override the preset; the config round-trips through its dict
    cfg = preset_config("cms-challenge", "w", pt_min=250.0, resort=True, jet_radius=None)
    assert (cfg.pt_min, cfg.resort, cfg.jet_radius) == (250.0, True, 0.5)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_preset_process_or_setting_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown preset 'cms'; known presets: cms-challenge"):
        preset_config("cms", "top")
    with pytest.raises(ValueError, match="process"):
        preset_config("cms-challenge", "qcd")
    with pytest.raises(ValueError, match="unknown generator setting"):
        preset_config("cms-challenge", "top", radius=0.4)
    assert set(PRESETS) == {"cms-challenge"}


def test_cli_unknown_preset_exits_2_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "--preset", "nope", "--process", "top", "--n", "5", "--out", str(tmp_path / "x.h5")]
    )
    assert result.exit_code == 2
    message = result.output.strip()
    assert "unknown preset 'nope'" in message
    assert "cms-challenge" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()


def test_load_resolution_names_files_and_errors(tmp_path: Path) -> None:
    assert load_resolution("default") == ResolutionModel()
    assert load_resolution("cms-challenge") is RESOLUTIONS["cms-challenge"]
    path = tmp_path / "resolution.json"
    path.write_text(
        json.dumps({"resolution": {"angle_constant": 0.017, "pt_stochastic": 0.3}, "uncertainty": {}})
    )
    res = load_resolution(path)
    assert (res.angle_constant, res.pt_stochastic, res.pt_noise) == (0.017, 0.3, ResolutionModel().pt_noise)
    with pytest.raises(ValueError, match=r"unknown resolution 'cms'.*default, cms-challenge"):
        load_resolution("cms")
    with pytest.raises(FileNotFoundError):
        load_resolution(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"angle_width": 0.1}))
    with pytest.raises(ValueError, match=r"unknown resolution parameter.*angle_width"):
        load_resolution(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON resolution file"):
        load_resolution(bad)


def test_environment_selects_the_sigma_of_challenge_features(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    x = np.full((1, 87), 0.01)  # pT of 16.8 GeV per constituent, angles 0.01
    monkeypatch.delenv(RESOLUTION_ENV, raising=False)
    default_sigma = challenge_features().sigma(x)
    assert default_resolution() == ResolutionModel()
    monkeypatch.setenv(RESOLUTION_ENV, "cms-challenge")
    cal = ResolutionModel.cms_challenge()
    assert default_resolution() == cal
    cms_sigma = challenge_features().sigma(x)
    np.testing.assert_allclose(cms_sigma, challenge_features(cal).sigma(x))
    assert not np.allclose(cms_sigma, default_sigma)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"resolution": {"angle_constant": 0.05}}))
    monkeypatch.setenv(RESOLUTION_ENV, str(path))
    assert challenge_features().resolution.angle_constant == 0.05
    monkeypatch.setenv(RESOLUTION_ENV, "no-such-resolution")
    with pytest.raises(ValueError, match="unknown resolution"):
        challenge_features()


def test_resmear_file_applies_a_new_resolution_to_the_unsmeared_objects(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 6
    unsmeared = np.zeros((n, 30, 3))
    unsmeared[..., 0] = np.geomspace(200.0, 1.0, 30)
    unsmeared[..., 1:] = rng.normal(0.0, 0.2, (n, 30, 2))
    old = ResolutionModel()
    arrays = {
        "features": topodnn_preprocess(old.smear(unsmeared, rng)),
        "features_truth": topodnn_preprocess(unsmeared),
        "labels": np.zeros(n), "constituents": old.smear(unsmeared, rng), "constituents_truth": unsmeared,
        "constituents_unsmeared": unsmeared, "jets": np.ones((n, 5)), "chunk_index": np.zeros(n),
        "chunk_seeds": np.array([7]),
    }  # fmt: skip
    config = {"resolution": old.to_dict()}
    attrs = {"feature_names": challenge_feature_names(), "config": config, "pt_scale_gev": 1.0}
    src = write_jets_hdf5(tmp_path / "in.h5", arrays, attrs)
    new = ResolutionModel(angle_constant=0.03, pt_stochastic=0.1)
    out = read_jets_hdf5(resmear_file(src, tmp_path / "out.h5", new, seed=9))
    expected = new.smear(unsmeared, np.random.default_rng(9))
    np.testing.assert_allclose(out.extras["constituents"], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.features, topodnn_preprocess(expected, pt_scale=1.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.extras["constituents_truth"], unsmeared.astype(np.float32))
    assert ResolutionModel.from_dict(out.metadata["config"]["resolution"]) == new
    with pytest.raises(ValueError, match="must differ"):
        resmear_file(src, src, new)


def test_cli_generate_with_the_preset_and_an_override(tmp_path: Path) -> None:
    pytest.importorskip("pythia8mc")
    out = tmp_path / "top.h5"
    args = ["generate", "--preset", "cms-challenge", "--process", "top", "--n", "3", "--out", str(out)]
    result = runner.invoke(app, [*args, "--jet-radius", "0.4", "--no-mpi", "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    ds = read_jets_hdf5(out)
    cfg = GeneratorConfig.from_dict(ds.metadata["config"])
    assert cfg == preset_config("cms-challenge", "top", jet_radius=0.4, mpi=False)
    unsmeared = ds.extras["constituents_unsmeared"]
    assert np.all(unsmeared[..., 0] >= np.float32(0.4))  # the preset's acceptance: 30 objects above 0.4 GeV


def test_load_pileup_names_files_and_errors(tmp_path: Path) -> None:
    assert load_pileup("none") is None
    assert load_pileup("cms-challenge") == PRESETS["cms-challenge"].overlay
    path = tmp_path / "pu.json"
    path.write_text(json.dumps({"mu": 30, "radius": 0.4}))
    assert load_pileup(path) == PileupModel(mu=30.0, radius=0.4)
    with pytest.raises(ValueError, match="unknown pile-up 'cms'"):
        load_pileup("cms")
    with pytest.raises(FileNotFoundError):
        load_pileup(tmp_path / "missing.json")
    path.write_text(json.dumps({"mu": -1}))
    with pytest.raises(ValueError, match="mu must be a finite non-negative number"):
        load_pileup(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="keys among"):
        load_pileup(path)
