"""``aalearn calibrate``: the resolution fit recovers known parameters; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aalearn.apps.calibrate import calibrate, calibrate_files, calibration_observables
from aalearn.cli.main import app
from aalearn.data.hdf5 import write_jets_hdf5
from aalearn.physics.features import challenge_feature_names
from aalearn.physics.preprocessing import topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel, load_resolution

runner = CliRunner()
TRUE = ResolutionModel(angle_constant=0.015, pt_stochastic=0.3)


def toy_jets(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unsmeared toy jets (N, 30, 3): falling pT 1-300 GeV, three prongs, log-uniform spreads."""
    k = 30
    pt = rng.uniform(50, 300, (n, 1)) * np.exp(-0.15 * np.arange(k)) * rng.lognormal(0.0, 0.3, (n, k))
    pt = -np.sort(-pt, axis=1)
    prongs = rng.normal(0.0, 0.15, (n, 3, 2))
    which = rng.integers(0, 3, (n, k))
    centre = np.take_along_axis(prongs, np.repeat(which[..., None], 2, axis=-1), axis=1)
    r = 10 ** rng.uniform(-3.0, -0.8, (n, k))
    a = rng.uniform(0.0, 2 * np.pi, (n, k))
    return np.stack([pt, centre[..., 0] + r * np.cos(a), centre[..., 1] + r * np.sin(a)], axis=-1)


def test_observables_are_rotation_invariant_distances_and_ratios() -> None:
    c = np.zeros((1, 30, 3))
    c[0, :, 0] = np.geomspace(100.0, 1.0, 30)
    c[0, :, 1] = 0.01 * np.arange(30)  # a line: every nearest neighbour is 0.01 away
    c[0, :, 2] = 0.3
    obs = calibration_observables(topodnn_preprocess(c))
    np.testing.assert_allclose(np.exp(obs["log_nearest_dr"]), 0.01, rtol=1e-4)
    np.testing.assert_allclose(np.exp(obs["log_dr01"]), 0.01, rtol=1e-4)
    np.testing.assert_allclose(obs["log_pt_ratio"], np.log(0.01) / 29, rtol=1e-4)


@pytest.mark.slow
def test_calibration_recovers_known_resolution_within_its_uncertainty() -> None:
    # reference: toy jets smeared with TRUE; generated: an independent toy sample (unsmeared)
    rng = np.random.default_rng(5)
    reference = topodnn_preprocess(TRUE.smear(toy_jets(600, rng), rng))
    generated = toy_jets(600, rng)
    labels = np.zeros(600, dtype=np.int64)
    res = calibrate(
        reference, labels, generated, labels, start=ResolutionModel(),
        parameters=("angle_constant", "pt_stochastic"), n_bootstrap=5, max_evaluations=60, seed=1,
    )  # fmt: skip
    for name in ("angle_constant", "pt_stochastic"):
        fit, sigma = getattr(res.resolution, name), res.uncertainty[name]
        true, start = getattr(TRUE, name), getattr(ResolutionModel(), name)
        assert 0 < sigma < 0.25 * true, (name, sigma)
        assert abs(fit - true) < 3 * sigma + 0.05 * true, (name, fit, true, sigma)  # 3σ + 5 % fit tolerance
        assert abs(start - true) > 5 * sigma  # the start was far away: the fit moved
    assert res.objective < 0.5 * res.objective_start
    assert ResolutionModel.from_dict(res.to_dict()) == res.resolution  # the file form loads back


def test_calibrate_rejects_a_reference_with_one_class() -> None:
    rng = np.random.default_rng(0)
    reference = topodnn_preprocess(toy_jets(20, rng))
    generated = toy_jets(20, rng)
    with pytest.raises(ValueError, match=r"0 jets of label 1 \(w\)"):
        calibrate(reference, np.zeros(20), generated, np.r_[np.zeros(10), np.ones(10)])
    with pytest.raises(ValueError, match="parameters must be distinct names"):
        calibrate(reference, np.zeros(20), generated, np.zeros(20), parameters=("pt_noise",))


def _write_generated(path: Path, unsmeared: np.ndarray | None, label: int = 0) -> Path:
    n = len(unsmeared) if unsmeared is not None else 5
    c = unsmeared if unsmeared is not None else np.ones((n, 30, 3))
    arrays = {
        "features": topodnn_preprocess(c), "features_truth": topodnn_preprocess(c),
        "labels": np.full(n, label), "constituents": c, "constituents_truth": c,
        "jets": np.zeros((n, 5)), "chunk_index": np.zeros(n), "chunk_seeds": np.array([7]),
    }  # fmt: skip
    if unsmeared is not None:
        arrays["constituents_unsmeared"] = unsmeared
    attrs = {"feature_names": challenge_feature_names(), "config": {}, "pt_scale_gev": 1679.1593}
    return write_jets_hdf5(path, arrays, attrs)


def test_calibrate_files_bad_input_is_a_one_line_cli_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gen = _write_generated(tmp_path / "top.h5", toy_jets(30, rng))
    old = _write_generated(tmp_path / "old.h5", None)
    unlabeled = tmp_path / "unlabeled.feather"
    pd.DataFrame(topodnn_preprocess(toy_jets(30, rng)), columns=challenge_feature_names()).to_feather(
        unlabeled
    )
    one_class = tmp_path / "one_class.feather"
    frame = pd.DataFrame(topodnn_preprocess(toy_jets(30, rng)), columns=challenge_feature_names())
    frame["Label"] = 1
    frame.to_feather(one_class)
    cases = [
        (["--reference", str(unlabeled), "--generated", str(gen)], "label"),
        (["--reference", str(one_class), "--generated", str(gen)], "label 0"),
        (["--reference", str(one_class), "--generated", str(old)], "constituents_unsmeared"),
        (["--reference", str(tmp_path / "none.feather"), "--generated", str(gen)], "none.feather"),
        (["--reference", str(one_class), "--generated", str(gen), "--rows", "odd"], "rows"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, ["calibrate", *args])
        assert result.exit_code == 2, (args, result.output)
        message = result.output.strip()
        assert needle in message, (args, message)
        assert len(message.splitlines()) == 1, message


def test_calibrate_files_writes_a_resolution_file_that_generate_accepts(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    top = _write_generated(tmp_path / "top.h5", toy_jets(40, rng), label=0)
    w = _write_generated(tmp_path / "w.h5", toy_jets(40, rng), label=1)
    frame = pd.DataFrame(
        topodnn_preprocess(TRUE.smear(toy_jets(80, rng), rng)), columns=challenge_feature_names()
    )
    frame["Label"] = (np.arange(80) // 2) % 2  # the even rows hold both classes
    ref = tmp_path / "ref.feather"
    frame.to_feather(ref)
    res = calibrate_files(ref, [top, w], n_bootstrap=2, max_evaluations=20, out=tmp_path / "cal")
    assert res.n_reference == {"top": 20, "w": 20}  # even rows only: 40 of 80, 20 per class
    assert res.n_generated == {"top": 40, "w": 40}
    loaded = load_resolution(tmp_path / "cal" / "resolution.json")
    assert loaded == res.resolution
