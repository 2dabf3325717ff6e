"""Tests of the physics constraints (:mod:`aalearn.constraints.physics`, :mod:`aalearn.constraints.base`).

Every registered constraint is checked for the same contract: clean jets satisfy it, a
hand-made violation is detected, repair is idempotent and produces a point that satisfies
the constraint, and the box-type limits contain the clean jet. Jets are synthetic but have
the structure of the challenge layout (pT-ordered, small relative η/φ, φ₁ ≤ 0, optional
zero padding).
"""

from __future__ import annotations

import doctest
from collections.abc import Callable

import numpy as np
import pytest
import torch

from aalearn.constraints import (
    CONSTRAINTS,
    DEFAULT_CONSTRAINTS,
    PHYSICAL_CONSTRAINTS,
    ConstraintSet,
    PhiWrap,
    PreprocessingInvariants,
    resolve_constraint_names,
)
from aalearn.constraints import base as base_module
from aalearn.constraints import budget as budget_module
from aalearn.constraints import physics as physics_module
from aalearn.physics import FeatureSet, FeatureSpec, challenge_features

FS = challenge_features()
NAMES = list(CONSTRAINTS)
PT = FS.kind_mask("pt")
ETA = FS.kind_mask("eta")
PHI = FS.kind_mask("phi")

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def perturb(x: np.ndarray, size: str, seed: int = 0) -> np.ndarray:
    """Random perturbation: ``"moderate"`` (a few σ) or ``"large"`` (absolute, crosses every limit)."""
    rng = np.random.default_rng(seed)
    if size == "moderate":
        return x + 3.0 * FS.sigma(x) * rng.standard_normal(x.shape)
    scale = np.where(PT, 0.05, 1.5)  # pT can go negative, φ past ±π, η past ±3.2
    return x + scale * rng.standard_normal(x.shape)


def single(name: str) -> ConstraintSet:
    return ConstraintSet.from_names(FS, [name])


def t(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(a, dtype=dtype)


@pytest.fixture(scope="module")
def jets(challenge_jets: Callable[..., np.ndarray]) -> np.ndarray:
    return challenge_jets(200, seed=0, float32_exact=False)


@pytest.fixture(scope="module")
def padded_jets(challenge_jets: Callable[..., np.ndarray]) -> np.ndarray:
    return challenge_jets(50, seed=1, n_padded=6, float32_exact=False)


@pytest.fixture(params=["jets", "padded_jets"])
def clean(request: pytest.FixtureRequest) -> np.ndarray:
    out: np.ndarray = request.getfixturevalue(request.param)
    return out


def test_doctests() -> None:
    for module in (base_module, budget_module, physics_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


def test_fixture_jets_have_the_challenge_structure(jets: np.ndarray, padded_jets: np.ndarray) -> None:
    assert jets.shape == (200, 87)
    pts = jets[:, PT]
    assert np.all(pts > 0)
    assert np.all(np.diff(pts, axis=1) <= 0)
    assert np.all(jets[:, FS.index("ConstPhi_1")] <= 0)
    assert np.all(np.abs(jets[:, ~PT]) < 0.8)
    assert np.all(padded_jets[:, FS.index("ConstPT_29")] == 0)
    assert np.all(padded_jets[:, FS.index("ConstPT_23")] > 0)


def test_registry() -> None:
    assert set(DEFAULT_CONSTRAINTS) <= set(CONSTRAINTS)
    assert set(PHYSICAL_CONSTRAINTS) <= set(CONSTRAINTS)
    for name, cls in CONSTRAINTS.items():
        assert cls.name == name
        assert cls.description
    cs = ConstraintSet.from_names(FS)
    assert cs.names == DEFAULT_CONSTRAINTS
    assert [d["name"] for d in cs.describe()] == list(DEFAULT_CONSTRAINTS)
    assert "pt-nonnegative" in repr(cs)


# --------------------------------------------------------------------------- clean jets
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_clean_jets_satisfy_every_constraint(name: str, clean: np.ndarray, dtype: torch.dtype) -> None:
    x0 = t(clean, dtype)
    viol = single(name).violations(x0, x0)[name]
    assert viol.shape == (len(clean),)
    assert not viol.any()


def test_clean_jets_feasible_for_all_constraints_together(clean: np.ndarray) -> None:
    cs = ConstraintSet.from_names(FS, NAMES)
    assert bool(cs.feasible(t(clean), t(clean)).all())
    assert not any(v.any() for v in cs.check_numpy(clean, clean).values())


# --------------------------------------------------------------------------- violations
def _violate(name: str, x: np.ndarray) -> np.ndarray:
    """A hand-made violation of ``name`` in row 0 of ``x`` (rows 1.. stay clean)."""
    x = x.copy()
    if name == "pt-nonnegative":
        x[0, FS.index("ConstPT_3")] = -1e-3
    elif name == "phi-wrap":
        x[0, FS.index("ConstPhi_4")] = np.pi  # the range is [-π, π)
    elif name == "invariants":
        x[0, FS.index("ConstPhi_1")] = 0.1  # φ₁ must be ≤ 0
    elif name == "bounds":
        x[0, FS.index("ConstEta_5")] = 3.3  # |η| ≤ 4R = 3.2
    elif name == "pt-ordering":
        i, j = FS.index("ConstPT_3"), FS.index("ConstPT_4")
        x[0, j] = x[0, i] * 1.5
    elif name == "pt-sum":
        x[0, FS.index("ConstPT_0")] *= 1.01
    elif name == "energy":
        x[0, FS.index("ConstEta_2")] += 0.3  # cosh η changes, pT does not
    else:  # pragma: no cover - a new constraint needs a hand-made violation here
        pytest.fail(f"add a hand-made violation for the new constraint {name!r}")
    return x


@pytest.mark.parametrize("name", NAMES)
def test_violated_detects_a_hand_made_violation(name: str, jets: np.ndarray) -> None:
    x0 = jets[:5]
    x = _violate(name, x0)
    viol = single(name).violations(t(x), t(x0))[name].numpy()
    assert viol.tolist() == [True, False, False, False, False]
    # the numpy convenience agrees
    assert single(name).check_numpy(x, x0)[name].tolist() == viol.tolist()


def test_violations_of_other_hand_made_cases(jets: np.ndarray, padded_jets: np.ndarray) -> None:
    x0 = jets[:2]
    x = x0.copy()
    x[0, FS.index("ConstPT_2")] = 4.0  # above 6500 GeV / 1679 GeV
    assert single("bounds").violations(t(x), t(x0))["bounds"].tolist() == [True, False]
    x = x0.copy()
    x[1, FS.index("ConstPhi_7")] = -3.2  # below -π
    assert single("phi-wrap").violations(t(x), t(x0))["phi-wrap"].tolist() == [False, True]
    # a padded constituent that moves, even by a tiny amount
    p0 = padded_jets[:2]
    p = p0.copy()
    p[0, FS.index("ConstEta_28")] = 1e-9
    assert single("invariants").violations(t(p), t(p0))["invariants"].tolist() == [True, False]
    # pT changes that keep the sum are fine for pt-sum but not for pt-ordering
    x = x0.copy()
    i, j = FS.index("ConstPT_5"), FS.index("ConstPT_6")
    x[0, i], x[0, j] = x0[0, j], x0[0, i]
    assert not single("pt-sum").violations(t(x), t(x0))["pt-sum"].any()
    assert single("pt-ordering").violations(t(x), t(x0))["pt-ordering"].tolist() == [True, False]


# --------------------------------------------------------------------------- repair
@pytest.mark.parametrize("name", [*NAMES, "default"])
@pytest.mark.parametrize("size", ["moderate", "large"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_repair_is_idempotent_and_feasible(
    name: str, size: str, dtype: torch.dtype, clean: np.ndarray
) -> None:
    cs = ConstraintSet.from_names(FS, [name])
    x0 = t(clean, dtype)
    x = t(perturb(clean, size), dtype)
    sigma = t(FS.sigma(clean), dtype)
    for sig in (None, sigma):
        r1 = cs.repair(x, x0, sig)
        r2 = cs.repair(r1, x0, sig)
        assert r1.dtype == dtype
        assert float((r2 - r1).abs().max()) <= 1e-6
        for cname, viol in cs.violations(r1, x0).items():
            assert not viol.any(), f"{cname}: {int(viol.sum())} rows still violate after repair"


def test_perturbations_do_violate_before_repair(jets: np.ndarray) -> None:
    """The random perturbations used above are large enough to need a repair (the tests are not vacuous)."""
    x0 = t(jets)
    x = t(perturb(jets, "large"))
    cs = ConstraintSet.from_names(FS, NAMES)
    for name, viol in cs.violations(x, x0).items():
        assert viol.any(), name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_repair_leaves_feasible_points_exactly_unchanged(
    name: str, dtype: torch.dtype, clean: np.ndarray
) -> None:
    """Repair is the identity on points that already satisfy the constraint (bit for bit).

    The attack framework compares outputs with the clean jet exactly (immutable columns,
    padded constituents, number of changed features), so any round-off of a repair on an
    in-range value shows up as a changed feature.
    """
    x0 = t(clean, dtype)
    r = single(name).repair(x0, x0, t(FS.sigma(clean), dtype))
    changed = (r != x0).sum().item()
    assert changed == 0, (
        f"{name} repair changed {changed} entries of clean jets (max {float((r - x0).abs().max())})"
    )


@pytest.mark.parametrize("name", ["pt-sum", "energy"])
@pytest.mark.parametrize("size", ["moderate", "large"])
def test_conservation_repairs_conserve_the_total(name: str, size: str, clean: np.ndarray) -> None:
    def total(a: np.ndarray) -> np.ndarray:
        pt = a[:, PT]
        if name == "pt-sum":
            return pt.sum(axis=1)
        eta = np.zeros_like(pt)  # constituents 0 and 1 have η = 0 by the preprocessing
        for k, s in enumerate(FS):
            if s.kind == "eta":
                eta[:, s.constituent] = a[:, k]
        return (pt * np.cosh(eta)).sum(axis=1)

    x = perturb(clean, size)
    t0 = total(clean)
    assert np.abs(total(x) - t0).max() > 1e-4 * t0.min()  # the perturbation does change the total
    for sig in (None, t(FS.sigma(clean))):
        r = single(name).repair(t(x), t(clean), sig).numpy()
        np.testing.assert_array_less(np.abs(total(r) - t0), 1e-5 * t0)
        # only pT entries of real (non-padded) constituents move
        moved = r != x
        assert not moved[:, ~PT].any()
        padded = clean[:, FS.pt_column_of()] == 0
        assert not moved[padded].any()


def test_pt_sum_repair_is_the_sigma_weighted_projection(jets: np.ndarray) -> None:
    """Δ of the repair is proportional to σ² per pT entry (the projection in the χ² metric)."""
    sigma = FS.sigma(jets)
    x = perturb(jets, "moderate", seed=3)
    r = single("pt-sum").repair(t(x), t(jets), t(sigma)).numpy()
    ratio = (r - x)[:, PT] / sigma[:, PT] ** 2
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-6, atol=0)


def test_invariants_keep_padded_constituents(padded_jets: np.ndarray) -> None:
    x0 = padded_jets
    x = perturb(x0, "large")
    padded = x0[:, FS.pt_column_of()] == 0
    assert padded.any()
    assert (x[padded] != 0).all()
    r = single("invariants").repair(t(x), t(x0)).numpy()
    assert np.array_equal(r[padded], x0[padded])
    other = ~padded
    other[:, FS.index("ConstPhi_1")] = False
    assert np.array_equal(r[other], x[other])  # everything else is left to the other constraints
    assert np.all(r[:, FS.index("ConstPhi_1")] <= 0)
    # with the default set too, and the box pins padded entries to their clean value
    r = ConstraintSet.from_names(FS).repair(t(x), t(x0)).numpy()
    assert np.array_equal(r[padded], x0[padded])
    lo, hi = single("invariants").box(t(x0))
    assert np.array_equal(lo.numpy()[padded], x0[padded])
    assert np.array_equal(hi.numpy()[padded], x0[padded])


def test_invariants_fixed_zero_columns_in_a_full_layout() -> None:
    """Layouts that keep ConstEta_0/ConstPhi_0/ConstEta_1 must keep them at zero."""
    specs = []
    for i in range(3):
        specs.append(FeatureSpec(f"ConstPT_{i}", "pt", i, "GeV", 0.0, 6500.0, None, 1.0))
        specs.append(FeatureSpec(f"ConstEta_{i}", "eta", i, "1", -1.6, 1.6))
        specs.append(FeatureSpec(f"ConstPhi_{i}", "phi", i, "rad", -np.pi, np.pi, 2 * np.pi))
    fs = FeatureSet(tuple(specs))
    c = PreprocessingInvariants(fs)
    x0 = torch.tensor([[100.0, 0.0, 0.0, 50.0, 0.0, -0.2, 10.0, 0.3, 0.1]], dtype=torch.float64)
    assert not c.violated(x0, x0).any()
    x = x0.clone()
    x[0, 1] = 0.01  # ConstEta_0
    assert c.violated(x, x0).all()
    r = c.repair(x, x0)
    assert float(r[0, 1]) == 0.0
    x = x0.clone()
    x[0, 4] = -0.05  # ConstEta_1
    assert c.violated(x, x0).all()
    assert float(c.repair(x, x0)[0, 4]) == 0.0
    assert float(c.repair(x, x0)[0, 7]) == 0.3  # other constituents untouched


def test_phi_wrap_maps_pi_to_minus_pi() -> None:
    c = PhiWrap(FS)
    col = FS.index("ConstPhi_3")
    for dtype in (torch.float64, torch.float32):
        x = torch.zeros(4, 87, dtype=dtype)
        x[:, col] = torch.tensor([np.pi, -np.pi, 1.5 * np.pi, -1.5 * np.pi], dtype=dtype)
        assert c.violated(x, x).tolist() == [True, False, True, True]
        r = c.repair(x, x)
        assert float(r[0, col]) == pytest.approx(-np.pi, abs=1e-6)
        assert float(r[0, col]) < 0
        assert float(r[1, col]) == pytest.approx(-np.pi, abs=1e-6)
        assert float(r[2, col]) == pytest.approx(-0.5 * np.pi, abs=1e-6)
        assert float(r[3, col]) == pytest.approx(0.5 * np.pi, abs=1e-6)
        assert not c.violated(r, x).any()


def test_phi_wrap_float32_just_below_minus_pi() -> None:
    """float32 remainder can return exactly the period for tiny negative inputs; the repair handles it."""
    c = PhiWrap(FS)
    col = FS.index("ConstPhi_2")
    x = torch.zeros(1, 87, dtype=torch.float32)
    x[0, col] = torch.nextafter(torch.tensor(-np.pi, dtype=torch.float32), torch.tensor(-4.0))
    r = c.repair(x, x)
    assert not c.violated(r, x).any()


# --------------------------------------------------------------------------- names
def test_unknown_constraint_name_suggests_a_close_match() -> None:
    with pytest.raises(ValueError, match="did you mean 'pt-sum'"):
        resolve_constraint_names("default,pt_sum")
    with pytest.raises(ValueError, match="did you mean 'bounds'"):
        ConstraintSet.from_names(FS, ["bound"])
    with pytest.raises(ValueError, match="known constraints"):
        resolve_constraint_names(["no-such-thing-at-all"])


def test_resolve_constraint_names() -> None:
    assert resolve_constraint_names(None) == DEFAULT_CONSTRAINTS
    assert resolve_constraint_names("none") == ()
    assert resolve_constraint_names([]) == ()
    assert resolve_constraint_names("") == ()
    names = resolve_constraint_names("default, pt-sum")
    assert set(names) == {*DEFAULT_CONSTRAINTS, "pt-sum"}
    assert names[0] == "pt-sum"  # conservation first, then the clamps
    assert resolve_constraint_names(["bounds", "bounds"]) == ("bounds",)
    assert ConstraintSet.from_names(FS, "none").names == ()


# --------------------------------------------------------------------------- box
@pytest.mark.parametrize("names", [None, NAMES, *([n] for n in NAMES)])
def test_box_contains_the_clean_jet(names: list[str] | None, clean: np.ndarray) -> None:
    cs = ConstraintSet.from_names(FS, names)
    x0 = t(clean)
    lo, hi = cs.box(x0)
    assert lo.shape == hi.shape == x0.shape
    assert bool((lo <= x0).all())
    assert bool((x0 <= hi).all())


def test_box_entries(clean: np.ndarray) -> None:
    lo, hi = ConstraintSet.from_names(FS).box(t(clean))
    lo, hi = lo.numpy(), hi.numpy()
    assert np.all(lo[:, PT] >= 0)
    assert np.all(hi[:, FS.index("ConstPhi_1")] <= 0)
    assert np.all(hi[:, ETA] <= 3.2 + 1e-12)


def test_numpy_helpers_match_torch(jets: np.ndarray) -> None:
    cs = ConstraintSet.from_names(FS, NAMES)
    x = perturb(jets, "large", seed=5)
    np.testing.assert_array_equal(cs.repair_numpy(x, jets), cs.repair(t(x), t(jets)).numpy())
    for k, v in cs.check_numpy(x, jets).items():
        np.testing.assert_array_equal(v, cs.violations(t(x), t(jets))[k].numpy())
