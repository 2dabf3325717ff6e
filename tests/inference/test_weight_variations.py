"""Modelling variations given as per-event weights of the nominal events (templates and ``measure_files``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyhf")

from aalearn.apps.measure import measure_files, pseudo_data
from aalearn.inference.systematics import variation_significance
from aalearn.inference.templates import templates_from_scores

pytestmark = [
    pytest.mark.usefixtures("single_torch_thread"),
    pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"),
]


def test_integer_weights_equal_the_events_repeated() -> None:
    # Independent reference: a variation given as integer weights w_i of the nominal events is
    # the histogram of the events repeated w_i times, scaled to the expected total (1e-12
    # relative); its sumw2 is Σ (E w_i / Σw)² per bin, computed here with np.add.at.
    rng = np.random.default_rng(3)
    sig, bkg = rng.beta(2, 5, 700), rng.beta(5, 2, 900)
    w = {
        k: rng.integers(0, 4, n).astype(float)
        for k, n in (("s_up", 700), ("b_up", 900), ("s_dn", 700), ("b_dn", 900))
    }
    edges = np.linspace(0, 1, 8)
    t = templates_from_scores(
        sig, bkg, bins=edges, variation_weights={"v": ((w["s_dn"], w["b_dn"]), (w["s_up"], w["b_up"]))}
    )
    ref = templates_from_scores(
        sig,
        bkg,
        bins=edges,
        variations={
            "v": (
                (np.repeat(sig, w["s_dn"].astype(int)), np.repeat(bkg, w["b_dn"].astype(int))),
                (np.repeat(sig, w["s_up"].astype(int)), np.repeat(bkg, w["b_up"].astype(int))),
            )
        },
    )
    for sample in ("signal", "background"):
        for got, exp in zip(t.histosys["v"][sample], ref.histosys["v"][sample], strict=True):
            np.testing.assert_allclose(got, exp, rtol=1e-12)
    # the variance of the difference from the nominal (shared events): Σ (E wᵢ/Σw − E/N)²
    departure = w["b_up"] * 1000.0 / w["b_up"].sum() - 1000.0 / 900
    sumw2 = np.zeros(7)
    np.add.at(sumw2, np.clip(np.digitize(bkg, edges) - 1, 0, 6), departure**2)
    np.testing.assert_allclose(t.histosys_sumw2["v"]["background"][1], sumw2, rtol=1e-12)
    # weighted pseudo-data: the same repeated events
    y = np.r_[np.zeros(700, int), np.ones(900, int)]
    got = pseudo_data(
        np.r_[sig, bkg],
        y,
        edges,
        expected_signal=100,
        expected_background=1000,
        weights=np.r_[w["s_up"], w["b_up"]],
    )
    exp = pseudo_data(
        np.r_[np.repeat(sig, w["s_up"].astype(int)), np.repeat(bkg, w["b_up"].astype(int))],
        np.r_[np.zeros(int(w["s_up"].sum()), int), np.ones(int(w["b_up"].sum()), int)],
        edges,
        expected_signal=100,
        expected_background=1000,
    )
    np.testing.assert_allclose(got, exp, rtol=1e-12)


def test_significance_of_weight_variations_is_calibrated() -> None:
    # Weights that are pure noise (independent of the score) must look like noise to the
    # significance test: over 200 replicas the mean χ² of the varied background (7 bins of
    # freedom; the unvaried signal adds nothing) is 7 within 1.0 (3.5 standard errors of the
    # mean, sd of χ² √14). A coherent 2 % tilt must be significant (p < 1e-6), where the varied
    # template's own variance Σ(E wᵢ/Σw)² (independent samples) calls it noise (χ² < 3).
    rng = np.random.default_rng(5)
    sig, bkg = rng.beta(2, 5, 4000), rng.beta(5, 2, 4000)
    ones, edges = np.ones(4000), np.linspace(0.0, 1.0, 9)
    chi2 = []
    for _ in range(200):
        w = np.clip(1.0 + 0.3 * rng.normal(size=4000), 0.1, None)
        t = templates_from_scores(
            sig, bkg, bins=edges, staterror=False, variation_weights={"v": ((ones, ones), (ones, w))}
        )
        chi2.append(variation_significance(t)["v"]["chi2_up"])
    assert np.mean(chi2) == pytest.approx(7.0, abs=1.0)
    tilt = 1.0 + 0.02 * (bkg - bkg.mean()) / bkg.std()
    t = templates_from_scores(
        sig, bkg, bins=edges, staterror=False, variation_weights={"v": ((ones, ones), (ones, tilt))}
    )
    assert variation_significance(t)["v"]["p_up"] < 1e-6
    shift = t.histosys["v"]["background"][1] - t.background
    own, _ = np.histogram(bkg, edges, weights=(tilt * 1000.0 / tilt.sum()) ** 2)
    assert np.sum(shift[own > 0] ** 2 / own[own > 0]) < 3.0


def test_bad_weights_are_refused() -> None:
    sig, bkg = np.linspace(0.1, 0.9, 5), np.linspace(0.2, 0.8, 6)
    ones_s, ones_b = np.ones(5), np.ones(6)
    with pytest.raises(ValueError, match="one weight per simulated event"):
        templates_from_scores(
            sig, bkg, bins=3, variation_weights={"v": ((ones_s, ones_b), (ones_s, np.ones(5)))}
        )
    with pytest.raises(ValueError, match="non-negative weights with a positive sum"):
        templates_from_scores(
            sig, bkg, bins=3, variation_weights={"v": ((ones_s, -ones_b), (ones_s, ones_b))}
        )
    with pytest.raises(ValueError, match="both as scores and as weights"):
        templates_from_scores(
            sig,
            bkg,
            bins=3,
            variations={"v": ((sig, bkg), (sig, bkg))},
            variation_weights={"v": ((ones_s, ones_b), (ones_s, ones_b))},
        )


@pytest.mark.slow
def test_measure_files_weights_equal_a_variation_file_of_repeated_jets(
    challenge_dir: Path, tmp_path: Path
) -> None:
    # The measurement with a variation given as integer per-jet weights must equal the one
    # with a variation *file* holding each jet repeated that many times: σ_μ, μ̂, Z_A and the
    # variation's shifts equal (the same histograms).
    df = pd.read_feather(challenge_dir / "Clean_Test_Public.feather").iloc[:1500]
    nominal = tmp_path / "nominal.feather"
    df.reset_index(drop=True).to_feather(nominal)
    rng = np.random.default_rng(7)
    labels = df["label"].to_numpy() if "label" in df.columns else df.iloc[:, -1].to_numpy()
    per_row = {side: rng.integers(0, 3, len(df)) + (1 if side == "up" else 0) for side in ("down", "up")}
    files = {}
    for side, w in per_row.items():
        files[side] = tmp_path / f"{side}.feather"
        df.loc[df.index.repeat(w)].reset_index(drop=True).to_feather(files[side])
    top, wjet = labels == 0, labels == 1
    weights = {
        "v": tuple(
            (per_row[side][top].astype(float), per_row[side][wjet].astype(float)) for side in ("down", "up")
        )
    }
    common = {"bins": 5, "staterror": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        by_weights = measure_files(
            challenge_dir / "best_model.hdf5", nominal, nominal, weight_variations=weights, **common
        )
        by_files = measure_files(
            challenge_dir / "best_model.hdf5",
            nominal,
            nominal,
            variations={"v": (files["down"], files["up"])},
            **common,
        )
    # Z_A (closed form on the Asimov data) to 1e-9; μ̂ and σ_μ come from Minuit's minimum and
    # Hesse, which stop at points 1e-9 apart for inputs equal to rounding: σ_μ to 1e-4 relative
    assert by_weights["z_asimov"] == pytest.approx(by_files["z_asimov"], rel=1e-9)
    assert by_weights["mu_hat"] == pytest.approx(by_files["mu_hat"], abs=1e-6)
    assert by_weights["mu_err"] == pytest.approx(by_files["mu_err"], rel=1e-4)
    for side in ("down", "up"):
        name = f"variation:v-{side}"
        assert by_weights["shifts"][name]["delta_mu_over_sigma"] == pytest.approx(
            by_files["shifts"][name]["delta_mu_over_sigma"], rel=1e-4, abs=1e-6
        )
    assert by_weights["variations"] == ["v"]
    # the variation matters: without it σ_μ is smaller
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = measure_files(challenge_dir / "best_model.hdf5", nominal, nominal, **common)
    assert plain["mu_err"] < by_weights["mu_err"]
