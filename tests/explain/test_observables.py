"""Physics-level explanation: correlations with jet observables."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.explain.observables import (
    OBSERVABLES,
    dominant_observable,
    interpret_observables,
    jet_observables,
    observable_correlations,
)
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV


def test_output_function_of_sum_pt_is_found_and_vanishes_at_fixed_sum_pt() -> None:
    rng = np.random.default_rng(0)
    sum_pt = rng.uniform(100.0, 800.0, 2000)
    mass = rng.uniform(20.0, 200.0, 2000)  # independent of the output
    output = np.log(sum_pt)  # a monotonic function of ΣpT only
    classes = (sum_pt > 400).astype(int)
    out = observable_correlations(output, {"sum_pt": sum_pt, "jet_mass": mass}, classes, seed=0)
    assert out["sum_pt"]["spearman"] == pytest.approx(1.0)
    assert 0.9 < out["sum_pt"]["pearson"] < 1.0  # log is not linear
    assert abs(out["jet_mass"]["spearman"]) < 0.1
    assert out["sum_pt"]["mutual_information"] > 1.0 > 10 * out["jet_mass"]["mutual_information"]
    # inside ΣpT bins the output is still a function of ΣpT, but not of the mass
    assert out["sum_pt"]["at_fixed_sum_pt"]["spearman"] == pytest.approx(1.0)
    assert abs(out["jet_mass"]["at_fixed_sum_pt"]["spearman"]) < 0.1
    assert set(out["sum_pt"]["by_class"]) == {"0", "1"}
    assert dominant_observable(out) == "sum_pt"
    assert interpret_observables(out).startswith("pT-driven")


def test_substructure_driven_output_keeps_correlation_at_fixed_sum_pt() -> None:
    rng = np.random.default_rng(1)
    sum_pt = rng.uniform(100.0, 800.0, 3000)
    mass = 0.2 * sum_pt + rng.normal(0.0, 30.0, 3000)  # correlated with ΣpT, as in real jets
    out = observable_correlations(mass, {"sum_pt": sum_pt, "jet_mass": mass}, seed=0)
    assert out["jet_mass"]["at_fixed_sum_pt"]["spearman"] == pytest.approx(1.0)
    assert out["sum_pt"]["at_fixed_sum_pt"]["spearman"] < 0.6
    assert interpret_observables(out).startswith("substructure-driven")


def test_jet_observables_of_challenge_layout() -> None:
    # two massless constituents of 300 and 100 GeV, back to back in φ by 0.2 rad
    feats = np.zeros((1, 87))
    feats[0, 0] = 300.0 / CHALLENGE_PT_SCALE_GEV  # ConstPT_0
    feats[0, 1] = 100.0 / CHALLENGE_PT_SCALE_GEV  # ConstPT_1
    feats[0, 2] = 0.2  # ConstPhi_1
    obs = jet_observables(feats)
    assert tuple(obs) == OBSERVABLES
    assert obs["sum_pt"][0] == pytest.approx(400.0)
    # m² = 2 pT1 pT2 (cosh Δη − cos Δφ)
    assert obs["jet_mass"][0] == pytest.approx(np.sqrt(2 * 300 * 100 * (1 - np.cos(0.2))), rel=1e-6)
    assert obs["multiplicity"][0] == 2
    assert obs["lead_pt_frac"][0] == pytest.approx(0.75)
    assert jet_observables(np.zeros((2, 5))) == {}
    bad = feats.copy()
    bad[0, 0] = -1.0
    assert jet_observables(bad) == {}


def test_mutual_information_at_fixed_sum_pt_sees_a_non_monotonic_dependence() -> None:
    rng = np.random.default_rng(2)
    sum_pt = rng.uniform(100.0, 800.0, 3000)
    tau = rng.uniform(-1.0, 1.0, 3000)
    output = tau**2  # no correlation with τ, but full dependence
    out = observable_correlations(output, {"sum_pt": sum_pt, "tau": tau}, seed=0)
    assert abs(out["tau"]["spearman"]) < 0.1
    assert abs(out["tau"]["at_fixed_sum_pt"]["spearman"]) < 0.1
    assert out["tau"]["at_fixed_sum_pt"]["mutual_information"] > 1.0
    assert out["sum_pt"]["at_fixed_sum_pt"]["mutual_information"] < 0.1
