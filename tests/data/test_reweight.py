"""Per-class spectrum reweighting: the weighted training spectrum reproduces the reference's."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.data.dataset import JetDataset
from aalearn.data.reweight import (
    reference_rows,
    reweight_to_reference,
    spectrum_variable,
    spectrum_weights,
)
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, challenge_feature_names


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training uniform on [0, 1] per class; reference with density 2v (class 0) and 2(1 - v) (class 1)."""
    rng = np.random.default_rng(seed)
    v_tr = rng.uniform(0, 1, 2 * n)
    y_tr = np.repeat([0, 1], n)
    u = rng.uniform(0, 1, 2 * n)
    y_ref = np.repeat([0, 1], n)
    v_ref = np.where(y_ref == 0, np.sqrt(u), 1 - np.sqrt(u))  # inverse CDFs of 2v and 2(1 - v)
    return v_tr, y_tr, v_ref, y_ref


def test_weighted_spectrum_matches_the_reference_analytic_moments() -> None:
    v_tr, y_tr, v_ref, y_ref = _toy(40_000, 0)
    sw = spectrum_weights(v_tr, y_tr, v_ref, y_ref, n_bins=40)
    w = sw.weights
    for c, truth in ((0, 2 / 3), (1, 1 / 3)):  # E[v] under 2v and 2(1 - v)
        sel = y_tr == c
        mean = np.average(v_tr[sel], weights=w[sel])
        # tolerance: statistical (σ ≈ 0.24/√40000 ≈ 0.0012 each sample) plus the within-bin
        # binning bias of a 40-bin histogram ratio (≤ 1/(12·40) ≈ 0.002)
        assert mean == pytest.approx(truth, abs=0.006)
        # the unweighted mean is 1/2: the weights must move it
        assert abs(v_tr[sel].mean() - 0.5) < 0.01
        # per class normalised to the class count
        assert w[sel].sum() == pytest.approx(sel.sum(), rel=1e-12)
        assert sw.effective_n[c] == pytest.approx(w[sel].sum() ** 2 / np.sum(w[sel] ** 2))


def test_bin_ratio_equals_reference_share_over_training_share() -> None:
    # two bins, independent hand count: reference 3:1 below/above its median... quantile bins
    v_ref = np.array([1.0] * 10 + [3.0] * 10)
    y_ref = np.zeros(20, dtype=int)
    v_tr = np.array([1.5] * 30 + [3.0] * 10)  # 75 % in the low bin, 25 % in the high one
    sw = spectrum_weights(v_tr, np.zeros(40, int), v_ref, y_ref, n_bins=2, require_both_classes=False)
    # reference shares 1/2, 1/2 -> ratios 2/3 and 2; normalised to sum 40: 30·(2/3)k + 10·2k = 40, k = 1
    assert sw.weights[:30] == pytest.approx(2 / 3)
    assert sw.weights[30:] == pytest.approx(2.0)


def test_clipping_and_out_of_range_jets() -> None:
    v_ref = np.array([1.0] * 10 + [3.0] * 10)
    v_tr = np.array([1.5] * 99 + [3.0] + [10.0] * 5)  # one jet in the high bin: ratio 0.5/0.0095 ≈ 52
    sw = spectrum_weights(
        v_tr,
        np.zeros(105, int),
        v_ref,
        np.zeros(20, int),
        n_bins=2,
        max_weight=5.0,
        require_both_classes=False,
    )
    assert sw.ratios[0][1] == pytest.approx(5.0)
    assert sw.n_clipped[0] == 1
    assert sw.n_outside[0] == 5
    assert np.all(sw.weights[-5:] == 0)
    assert sw.weights.sum() == pytest.approx(105)


def test_reference_rows_even_only_ignores_odd_rows(challenge_jets) -> None:  # type: ignore[no-untyped-def]
    names = tuple(challenge_feature_names())
    x_tr = challenge_jets(800, seed=1)
    y_tr = np.arange(800) % 2
    x_ref = challenge_jets(800, seed=2)
    y_ref = (np.arange(800) // 2) % 2
    # the held-out (odd) rows differ: copies of the even rows with the highest ΣpT
    even_rows = x_ref[0::2]
    high = np.argsort(-even_rows[:, 0])[:200]
    x_ref[1::2] = np.repeat(even_rows[high], 2, axis=0)
    train = JetDataset(x_tr.astype(np.float32), y_tr, names)
    ref = JetDataset(x_ref.astype(np.float32), y_ref, names)
    even = reweight_to_reference(train, ref, n_bins=5)
    even_only = reweight_to_reference(train, ref.subset(np.arange(0, 800, 2)), n_bins=5, rows="all")
    np.testing.assert_array_equal(even.weights, even_only.weights)
    assert not np.allclose(reweight_to_reference(train, ref, n_bins=5, rows="all").weights, even.weights)
    assert reference_rows(7).tolist() == [0, 2, 4, 6]


def test_spectrum_variable_in_gev(challenge_jets) -> None:  # type: ignore[no-untyped-def]
    x = challenge_jets(5, seed=3)
    names = challenge_feature_names()
    pt_cols = [j for j, n in enumerate(names) if n.startswith("ConstPT_")]
    np.testing.assert_allclose(spectrum_variable(x, "sum-pt"), x[:, pt_cols].sum(1) * CHALLENGE_PT_SCALE_GEV)
    np.testing.assert_allclose(spectrum_variable(x, "lead-pt"), x[:, pt_cols].max(1) * CHALLENGE_PT_SCALE_GEV)


def test_bad_input_one_line_errors(challenge_jets) -> None:  # type: ignore[no-untyped-def]
    v_tr, y_tr, v_ref, y_ref = _toy(200, 1)
    with pytest.raises(ValueError, match="only class"):
        spectrum_weights(v_tr, y_tr, v_ref[y_ref == 0], y_ref[y_ref == 0])
    with pytest.raises(ValueError, match="bins empty"):
        spectrum_weights(np.r_[v_tr[y_tr == 0] * 0.4, v_tr[y_tr == 1]], y_tr, v_ref, y_ref, n_bins=10)
    with pytest.raises(ValueError, match="unknown reweighting variable"):
        spectrum_variable(challenge_jets(3), "mass")
    names = tuple(challenge_feature_names())
    train = JetDataset(challenge_jets(40).astype(np.float32), np.arange(40) % 2, names)
    with pytest.raises(ValueError, match="no labels"):
        reweight_to_reference(train, JetDataset(train.features, None, names))
    with pytest.raises(ValueError, match="reference rows"):
        reweight_to_reference(train, train, rows="odd")


@pytest.mark.slow
def test_train_command_reweights_and_refuses_bad_references(tmp_path, challenge_jets) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from aalearn.apps.train import train_files
    from aalearn.cli.main import app
    from aalearn.data.io import save_dataset

    names = tuple(challenge_feature_names())
    train = tmp_path / "train.feather"
    save_dataset(JetDataset(challenge_jets(300, seed=1).astype(np.float32), np.arange(300) % 2, names), train)
    ref = tmp_path / "ref.feather"
    save_dataset(
        JetDataset(challenge_jets(400, seed=2).astype(np.float32), (np.arange(400) // 2) % 2, names), ref
    )
    run = train_files(
        [train], tmp_path / "m.safetensors", reweight_to=ref, reweight_bins=4, epochs=1, progress=False
    )
    info = run.metadata["reweighting"]
    assert info["reference_rows"] == "even"
    assert info["classes"]["top"]["n_reference"] == 100  # even rows of 400, half of them top
    assert run.to_dict()["reweighting"]["variable"] == "sum-pt"

    one_class = tmp_path / "one.feather"
    save_dataset(
        JetDataset(challenge_jets(100, seed=3).astype(np.float32), np.zeros(100, int), names), one_class
    )
    runner = CliRunner()
    for extra, message in (
        (["--reweight-to", str(one_class)], "only class"),
        (["--reweight-to", str(ref), "--reweight-var", "mass"], "--reweight-var must be one of"),
        (["--reweight-to", str(ref), "--reference-rows", "odd"], "--reference-rows must be one of"),
    ):
        res = runner.invoke(
            app,
            [
                "train",
                "--data",
                str(train),
                "--out",
                str(tmp_path / "x.safetensors"),
                "--epochs",
                "1",
                *extra,
            ],
        )
        assert res.exit_code == 2, res.output
        assert message in res.output
