"""Feature specification and resolution model: invariants and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from aalearn.physics import (
    CHALLENGE_PT_SCALE_GEV,
    FeatureSpec,
    ResolutionModel,
    challenge_feature_names,
    challenge_features,
)
from aalearn.physics.features import DROPPED_FEATURES


def test_challenge_layout_names_and_order() -> None:
    names = challenge_feature_names()
    assert len(names) == 87
    assert names[:5] == ["ConstPT_0", "ConstPT_1", "ConstPhi_1", "ConstPT_2", "ConstEta_2"]
    assert names[-3:] == ["ConstPT_29", "ConstEta_29", "ConstPhi_29"]
    for dropped in DROPPED_FEATURES:
        assert dropped not in names
    assert len(set(names)) == 87


def test_challenge_layout_matches_public_file(challenge_dir) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    df = pd.read_feather(challenge_dir / "Clean_Test_Public.feather")
    assert list(df.columns[:87]) == challenge_feature_names()


def test_feature_specs_units_bounds_periodicity() -> None:
    fs = challenge_features()
    assert len(fs) == 87
    assert fs.kind_mask("pt").sum() == 30
    assert fs.kind_mask("eta").sum() == 28
    assert fs.kind_mask("phi").sum() == 29
    phi = fs[fs.index("ConstPhi_5")]
    assert phi.periodic
    assert phi.period == pytest.approx(2 * np.pi)
    assert phi.unit == "rad"
    assert phi.lower == pytest.approx(-np.pi)
    assert phi.upper == pytest.approx(np.pi)
    pt = fs[fs.index("ConstPT_0")]
    assert pt.lower == 0.0
    assert pt.scale_gev == CHALLENGE_PT_SCALE_GEV
    assert pt.upper == pytest.approx(6500.0 / CHALLENGE_PT_SCALE_GEV)
    eta = fs[fs.index("ConstEta_2")]
    assert (eta.lower, eta.upper) == (-3.2, 3.2)
    assert not eta.periodic
    # every feature knows its constituent's pT column
    pt_col = fs.pt_column_of()
    for i, spec in enumerate(fs):
        assert fs[int(pt_col[i])].kind == "pt"
        assert fs[int(pt_col[i])].constituent == spec.constituent


def test_unknown_feature_name_suggests_close_match() -> None:
    fs = challenge_features()
    with pytest.raises(ValueError, match="did you mean ConstPT_3"):
        fs.index("ConstPt_3")
    with pytest.raises(ValueError, match="unknown feature name"):
        fs.index("ConstEta_0")  # dropped by the preprocessing


def test_bad_specs_raise() -> None:
    with pytest.raises(ValueError, match="kind"):
        FeatureSpec("x", "mass", 0, "GeV", 0.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower bound"):
        FeatureSpec("x", "eta", 0, "1", 1.0, -1.0)
    with pytest.raises(ValueError, match="scale_gev"):
        FeatureSpec("x", "pt", 0, "GeV", 0.0, 1.0)
    with pytest.raises(ValueError, match="pt_scale_gev"):
        challenge_features(pt_scale_gev=0.0)


def test_out_of_bounds_mask() -> None:
    fs = challenge_features()
    x = np.zeros((2, 87))
    x[0, fs.index("ConstPT_4")] = -1e-3
    x[1, fs.index("ConstPhi_3")] = np.pi  # periodic upper bound is exclusive
    mask = fs.out_of_bounds(x)
    assert mask[0, fs.index("ConstPT_4")]
    assert mask[1, fs.index("ConstPhi_3")]
    assert mask.sum() == 2


def test_resolution_rises_at_low_pt_and_is_overridable() -> None:
    res = ResolutionModel()
    pts = np.array([0.5, 1.0, 5.0, 20.0, 100.0, 1000.0])
    rel = res.relative_pt(pts)
    assert np.all(np.diff(rel) < 0), "relative pT resolution must fall with pT"
    assert rel[-1] == pytest.approx(np.sqrt(0.5**2 / 1000 + (0.2 / 1000) ** 2 + 0.03**2))
    ang = res.sigma_angle(pts)
    assert np.all(np.diff(ang) < 0)
    assert ang[-1] > res.angle_constant
    custom = ResolutionModel(pt_stochastic=1.0, pt_noise=0.0, pt_constant=0.0)
    assert custom.relative_pt([4.0])[0] == pytest.approx(0.5)
    # below the floor the resolution is evaluated at the floor: finite and positive at pT = 0
    assert np.isfinite(res.sigma_pt([0.0])[0])
    assert res.sigma_pt([0.0])[0] > 0
    with pytest.raises(ValueError, match="non-negative"):
        ResolutionModel(pt_constant=-0.1)
    with pytest.raises(ValueError, match="pt_floor"):
        ResolutionModel(pt_floor=0.0)


def test_feature_sigma_in_feature_units() -> None:
    res = ResolutionModel()
    fs = challenge_features(res)
    x = np.zeros((1, 87))
    x[0, fs.index("ConstPT_2")] = 100.0 / CHALLENGE_PT_SCALE_GEV
    sigma = fs.sigma(x)
    assert sigma.shape == (1, 87)
    assert np.all(sigma > 0)
    assert sigma[0, fs.index("ConstPT_2")] * CHALLENGE_PT_SCALE_GEV == pytest.approx(res.sigma_pt([100.0])[0])
    assert sigma[0, fs.index("ConstEta_2")] == pytest.approx(res.sigma_angle([100.0])[0])
    assert sigma[0, fs.index("ConstPhi_2")] == pytest.approx(res.sigma_angle([100.0])[0])
    with pytest.raises(ValueError, match="shape"):
        fs.sigma(np.zeros((3, 86)))


def test_smearing_statistics_and_padding() -> None:
    res = ResolutionModel()
    rng = np.random.default_rng(1)
    n = 200_000
    c = np.zeros((n, 2, 3))
    c[:, 0] = [50.0, 0.3, 3.1]
    s = res.smear(c, rng)
    rel = res.relative_pt([50.0])[0]
    assert s[:, 0, 0].mean() == pytest.approx(50.0, rel=2e-3)  # unit-mean log-normal
    assert s[:, 0, 0].std() / 50.0 == pytest.approx(rel, rel=2e-2)
    assert np.all(s[:, 0, 0] > 0)
    assert s[:, 0, 1].std() == pytest.approx(res.sigma_angle([50.0])[0], rel=2e-2)
    assert np.all((s[:, 0, 2] >= -np.pi) & (s[:, 0, 2] < np.pi)), "phi wraps into [-pi, pi)"
    assert np.all(s[:, 1] == 0.0), "zero-padded constituents stay zero"
    # reproducible with the same seed
    again = res.smear(c[:10], np.random.default_rng(5))
    np.testing.assert_array_equal(again, res.smear(c[:10], np.random.default_rng(5)))
    with pytest.raises(ValueError, match="last axis"):
        res.smear(np.zeros((2, 4)), rng)
