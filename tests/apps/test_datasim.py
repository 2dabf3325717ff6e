"""``aalearn datasim``: the substructure observables, the per-class comparison and the command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aalearn.apps.datasim import compare_data_sim, substructure_observables_of, weighted_median
from aalearn.cli.main import app
from aalearn.data.dataset import JetDataset
from aalearn.data.io import save_dataset
from aalearn.physics import challenge_feature_names, challenge_features
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV

_PT = np.array([s.kind == "pt" for s in challenge_features()])


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    import sklearn.ensemble  # noqa: F401 - load scikit-learn's OpenMP runtime before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _file(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    save_dataset(JetDataset(x.astype(np.float32), y, tuple(challenge_feature_names())), path)
    return path


def test_substructure_of_a_hand_made_jet() -> None:
    names = challenge_feature_names()
    x = np.zeros((1, 87))
    # constituent 0 at the origin with 300 GeV, 1 at (0, -0.01) with 100 GeV, 2 at (0.3, 0.4) with 100 GeV
    x[0, names.index("ConstPT_0")] = 300 / CHALLENGE_PT_SCALE_GEV
    x[0, names.index("ConstPT_1")] = 100 / CHALLENGE_PT_SCALE_GEV
    x[0, names.index("ConstPhi_1")] = -0.01
    x[0, names.index("ConstPT_2")] = 100 / CHALLENGE_PT_SCALE_GEV
    x[0, names.index("ConstEta_2")] = 0.3
    x[0, names.index("ConstPhi_2")] = 0.4
    obs = substructure_observables_of(x)[0]
    assert obs[0] == pytest.approx(500.0, rel=1e-6)
    # massless 4-vectors by hand: m² = (ΣE)² − |Σp|²
    pt = np.array([300.0, 100.0, 100.0])
    eta = np.array([0.0, 0.0, 0.3])
    phi = np.array([0.0, -0.01, 0.4])
    p4 = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], 1).sum(0)
    assert obs[1] == pytest.approx(np.sqrt(p4[0] ** 2 - np.sum(p4[1:] ** 2)), rel=1e-5)
    assert obs[4] == pytest.approx(0.01, abs=1e-7)  # ΔR of the two hardest
    assert obs[5] == 1.0  # within 0.02
    assert obs[6] == pytest.approx(0.6)  # leading pT fraction
    assert 0 < obs[2] < 1  # τ21: two prongs describe the jet better than one


def test_weighted_median_matches_repetition() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=101)
    w = rng.integers(0, 5, 101)
    assert weighted_median(v, w.astype(float)) == np.sort(np.repeat(v, w))[(w.sum() - 1) // 2]


@pytest.mark.slow
def test_compare_data_sim_same_and_shifted(tmp_path: Path, challenge_jets: Callable[..., np.ndarray]) -> None:
    ref_x = challenge_jets(1200, seed=1)
    ref_y = (np.arange(1200) // 2) % 2
    ref = _file(tmp_path / "ref.feather", ref_x, ref_y)
    same = _file(tmp_path / "same.feather", challenge_jets(600, seed=2), np.arange(600) % 2)
    shifted_x = challenge_jets(600, seed=3)
    shifted_x[:, _PT] *= 1.3
    shifted = _file(tmp_path / "shifted.feather", shifted_x, np.arange(600) % 2)

    ok = compare_data_sim([same], ref, n_null=8, seed=0)
    assert set(ok.validations) == {0, 1}
    for label in (0, 1):
        assert ok.validations[label].n_reference == 300  # even rows only: 600, half per class
        assert abs(ok.c2st_auc(label) - 0.5) < 0.1
    bad = compare_data_sim([shifted], ref, n_null=8, seed=0, out=tmp_path / "run")
    for label in (0, 1):
        assert bad.c2st_auc(label) > 0.7  # measured 0.77 (top); the same generator gives 0.5 ± 0.03
        assert any(d.startswith("ks:jet_pt") or "jet_pt" in d for d in bad.differences[label])
    table = {(r["sample"], r["class"]): r for r in bad.substructure}
    ratio = (
        table[("generated", "top")]["median_sum_pt_gev"] / table[("reference", "top")]["median_sum_pt_gev"]
    )
    assert ratio == pytest.approx(1.3, rel=0.1)
    assert bad.to_dict()["classes"]["top"]["warnings"]  # n_null = 8 is too small: warned
    assert (tmp_path / "run" / "report.html").exists()
    # a broader ΣpT spectrum (covering the reference's): reweighting moves the weighted median back
    broad_x = challenge_jets(1200, seed=4)
    broad_x[:, _PT] *= np.random.default_rng(5).uniform(0.8, 1.6, 1200)[:, None]
    broad = _file(tmp_path / "broad.feather", broad_x, np.arange(1200) % 2)
    rew = compare_data_sim([broad], ref, n_null=8, seed=0, reweight=True, reweight_bins=5)
    t1 = {
        (r["sample"], r["class"]): r
        for r in compare_data_sim([broad], ref, n_null=8, c2st_classifier="hgb").substructure
    }
    assert t1[("generated", "top")]["median_sum_pt_gev"] > 1.1 * t1[("reference", "top")]["median_sum_pt_gev"]
    t2 = {(r["sample"], r["class"]): r for r in rew.substructure}
    med = t2[("generated (reweighted)", "top")]["median_sum_pt_gev"]
    assert med == pytest.approx(t2[("reference", "top")]["median_sum_pt_gev"], rel=0.08)


def test_cli_errors(tmp_path: Path, challenge_jets: Callable[..., np.ndarray]) -> None:
    runner = CliRunner()
    gen = _file(tmp_path / "g.feather", challenge_jets(60, seed=2), np.arange(60) % 2)
    res = runner.invoke(
        app, ["datasim", "--generated", str(gen), "--reference", str(tmp_path / "none.feather")]
    )
    assert res.exit_code == 2
    assert "no such file" in res.output
    res = runner.invoke(
        app, ["datasim", "--generated", str(gen), "--reference", str(gen), "--reference-rows", "odd"]
    )
    assert res.exit_code == 2
    assert "even, all" in res.output
    unlabelled = tmp_path / "u.feather"
    save_dataset(
        JetDataset(challenge_jets(60).astype(np.float32), None, tuple(challenge_feature_names())), unlabelled
    )
    res = runner.invoke(app, ["datasim", "--generated", str(gen), "--reference", str(unlabelled), "--json"])
    assert res.exit_code == 2
    assert json.dumps(res.output)  # one line of error text
