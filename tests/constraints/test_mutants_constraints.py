"""Tests that kill surviving mutants of ``aalearn.constraints`` (issue 23, tools/mutation.py).

Every expected value is worked out by hand in the comment next to it: the conservation
projections on three or four pT entries have closed forms (a piecewise-linear equation in
the multiplier λ), the ordering and tolerance checks are decided by the numbers themselves.
Device handling is checked on PyTorch's ``meta`` device, which stands in for an accelerator on
a CPU-only machine: a tensor built on the wrong device is then ``cpu`` instead of ``meta``
(or an operation mixing the two raises).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aalearn.constraints import CONSTRAINTS, Budget, ConstraintSet, PhiWrap, scaled_delta
from aalearn.constraints.physics import (
    Bounds,
    EnergyConservation,
    PreprocessingInvariants,
    PtNonNegative,
    PtOrdering,
    PtSumConservation,
)
from aalearn.constraints.tabular import SpecBounds, spec_constraints
from aalearn.physics import FeatureSet, FeatureSpec, challenge_features
from aalearn.physics.spec import parse_feature_spec

FS = challenge_features()
META = torch.device("meta")

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _pt_only(n: int) -> FeatureSet:
    """``n`` constituents with a pT column each (in GeV, bounds [0, 6500])."""
    return FeatureSet(
        tuple(FeatureSpec(f"ConstPT_{i}", "pt", i, "GeV", 0.0, 6500.0, None, 1.0) for i in range(n))
    )


def _pts(values: list[float]) -> torch.Tensor:
    """A challenge-layout jet (float64) whose pT columns, leading first, hold ``values`` (rest 0)."""
    x = torch.zeros(1, len(FS), dtype=torch.float64)
    cols = PtOrdering(FS).cols
    x[0, cols[: len(values)]] = torch.tensor(values, dtype=torch.float64)
    return x


# --- LinearConservation.project_box -------------------------------------------------------------


def test_project_box_solves_the_clipped_projection_in_closed_form() -> None:
    # x0 = (3, 2, 1, 0): target total 6; the fourth constituent is padded (clean pT 0), so it
    # does not move and its 0.3 counts in the total. Movable entries: x'_i = clip(x_i - λ, lo_i, hi_i)
    # with lo = (0, 0, 0.5), hi = (3.2, ∞, ∞). For λ ≥ 0.8 (entry 0 below its cap) and λ ≥ 0.5
    # (entry 2 at its floor): (4 - λ) + (3 - λ) + 0.5 + 0.3 = 6  ⇒  λ = 0.9, consistent.
    fs = _pt_only(4)
    c = PtSumConservation(fs)
    x0 = torch.tensor([[3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[4.0, 3.0, 1.0, 0.3]], dtype=torch.float64)
    lo = torch.tensor([[0.0, 0.0, 0.5, 0.0]], dtype=torch.float64)
    hi = torch.tensor([[3.2, math.inf, math.inf, math.inf]], dtype=torch.float64)
    out = c.project_box(x, x0, lo, hi)
    np.testing.assert_allclose(out.numpy(), [[3.1, 2.1, 0.5, 0.3]], rtol=0, atol=1e-9)
    assert float(c.total(out)[0]) == pytest.approx(6.0, abs=1e-9)


def test_project_box_weights_move_entries_in_proportion_to_sigma_squared() -> None:
    # No active bound (lo = -∞, hi = ∞): x' = x - λ w with Σ x' = Σ x0, i.e. λ = r / Σ w
    # = (8 - 6) / (1 + 4 + 1) = 1/3, so x' = (4 - 1/3, 3 - 4/3, 1 - 1/3) = (11/3, 5/3, 2/3);
    # the same point as the unconstrained repair.
    fs = _pt_only(3)
    c = PtSumConservation(fs)
    x0 = torch.tensor([[3.0, 2.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[4.0, 3.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 4.0, 1.0]], dtype=torch.float64)
    inf = torch.full_like(x, math.inf)
    out = c.project_box(x, x0, -inf, inf, weights=w)
    np.testing.assert_allclose(out.numpy(), [[11 / 3, 5 / 3, 2 / 3]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.repair(x, x0, w).numpy(), [[11 / 3, 5 / 3, 2 / 3]], rtol=0, atol=1e-12)


def test_project_box_reaches_the_far_end_of_the_box() -> None:
    # one pT entry pushed to -3 with box [-5, 3] and clean total 3: the only conserving point is
    # x' = 3, at the upper end of the box, 6 away from x (λ = -6)
    c = PtSumConservation(_pt_only(1))
    x0 = torch.tensor([[3.0]], dtype=torch.float64)
    x = torch.tensor([[-3.0]], dtype=torch.float64)
    out = c.project_box(
        x, x0, torch.tensor([[-5.0]], dtype=torch.float64), torch.tensor([[3.0]], dtype=torch.float64)
    )
    assert float(out[0, 0]) == pytest.approx(3.0, abs=1e-9)


def test_energy_uses_an_eta_column_at_index_zero() -> None:
    # layout (η₀, pT₀, pT₁): E = pT₀ cosh η₀ + pT₁ cosh 0 = 2 cosh(1) + 3
    specs = (
        FeatureSpec("ConstEta_0", "eta", 0, "1", -3.0, 3.0),
        FeatureSpec("ConstPT_0", "pt", 0, "GeV", 0.0, 6500.0, None, 1.0),
        FeatureSpec("ConstPT_1", "pt", 1, "GeV", 0.0, 6500.0, None, 1.0),
    )
    c = EnergyConservation(FeatureSet(specs))
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    assert float(c.total(x)[0]) == pytest.approx(2 * math.cosh(1.0) + 3.0, rel=1e-15)


def test_conservation_tolerance_is_inclusive() -> None:
    # tol = 2^-10 and clean total 1: a total of 1 + 2^-10 (exact in binary) changes by exactly
    # tol * |total| and is allowed; 1 + 2^-9 is not
    c = PtSumConservation(_pt_only(1), tol=2.0**-10)
    x0 = torch.ones(2, 1, dtype=torch.float64)
    x = torch.tensor([[1.0 + 2.0**-10], [1.0 + 2.0**-9]], dtype=torch.float64)
    assert c.violated(x, x0).tolist() == [False, True]


@pytest.mark.parametrize("name", list(CONSTRAINTS))
def test_constraints_keep_their_feature_specification(name: str) -> None:
    c = CONSTRAINTS[name](FS)
    assert c.features is FS


# --- PtOrdering.violated ------------------------------------------------------------------------


def test_pt_ordering_ignores_pairs_unordered_in_the_clean_jet() -> None:
    # clean pT (5, 3, 4, 1): the pair (3, 4) is not ordered, so keeping it as it is violates
    # nothing, although the leading pT 5 is above both (only neighbours are compared)
    x0 = _pts([5.0, 3.0, 4.0, 1.0])
    c = PtOrdering(FS)
    assert c.violated(x0, x0).tolist() == [False]
    x = _pts([5.0, 3.0, 4.5, 1.0])  # the unordered pair drifts further apart: still allowed
    assert c.violated(x, x0).tolist() == [False]
    x = _pts([5.0, 3.0, 4.0, 4.5])  # the ordered pair (4, 1) is reversed: a violation
    assert c.violated(x, x0).tolist() == [True]


def test_pt_ordering_counts_equal_clean_pt_as_ordered() -> None:
    # clean pT (5, 3, 3, 1): 3 >= 3 is an ordered pair, so the second 3 may not overtake the first
    x0 = _pts([5.0, 3.0, 3.0, 1.0])
    c = PtOrdering(FS)
    assert c.violated(_pts([5.0, 3.0, 3.5, 1.0]), x0).tolist() == [True]
    # zero-padded neighbours (0 >= 0) are ordered too: a padded pT may not rise above the one before
    assert c.violated(_pts([5.0, 3.0, 3.0, 1.0, 0.0, 0.2]), x0).tolist() == [True]
    # within the tolerance (1e-7) it is not a violation
    assert c.violated(_pts([5.0, 3.0, 3.0 + 5e-8, 1.0]), x0).tolist() == [False]


def test_pt_ordering_repair_leaves_unordered_clean_pairs_alone() -> None:
    # clean pT (5, 3, 4, 1): the clean jet is its own repair; reversing the ordered pair (4, 1) to
    # (4, 4.5) is undone by the running minimum over ordered pairs only: (5, 3, 4, 4)
    x0 = _pts([5.0, 3.0, 4.0, 1.0])
    c = PtOrdering(FS)
    assert torch.equal(c.repair(x0, x0), x0)
    assert torch.equal(c.repair(_pts([5.0, 3.0, 4.0, 4.5]), x0), _pts([5.0, 3.0, 4.0, 4.0]))


# --- PhiWrap.repair -----------------------------------------------------------------------------


def test_phi_wrap_maps_a_remainder_equal_to_the_period_to_lower() -> None:
    # lower 0, period 2π, float32: x = -1e-10 wraps to 2π - 1e-10, which rounds to 2π in
    # float32 (its spacing there is 4.8e-7). 2π is the same angle as the lower end, so the
    # repair must return 0, inside [0, 2π).
    two_pi = 2 * math.pi
    specs = (
        FeatureSpec("ConstPT_0", "pt", 0, "GeV", 0.0, 6500.0, None, 1.0),
        FeatureSpec("ConstPhi_0", "phi", 0, "rad", 0.0, two_pi, two_pi),
    )
    c = PhiWrap(FeatureSet(specs))
    x0 = torch.tensor([[10.0, 1.0]], dtype=torch.float32)
    x = torch.tensor([[10.0, -1e-10]], dtype=torch.float32)
    out = c.repair(x, x0)
    assert out.tolist() == [[10.0, 0.0]]
    assert c.violated(out, x0).tolist() == [False]


# --- device handling (meta device) -------------------------------------------------------------


def test_boxes_and_feasibility_follow_the_input_device() -> None:
    x0 = torch.zeros(2, len(FS), device=META)
    for c in (Bounds(FS), PtNonNegative(FS)):
        lo, hi = c.box(x0)
        assert (lo.device, hi.device) == (META, META), type(c).__name__
    ok = ConstraintSet(FS, [Bounds(FS)]).feasible(x0, x0)
    assert ok.device == META
    assert ok.shape == (2,)


@pytest.mark.parametrize("name", list(CONSTRAINTS))
def test_every_constraint_computes_on_the_input_device(name: str) -> None:
    # masks, bounds and periods are stored on the CPU and must be moved to the input's device;
    # a mask left on the CPU makes the elementwise operations with a meta (or CUDA) tensor raise
    c = CONSTRAINTS[name](FS)
    x0 = torch.zeros(3, len(FS), device=META)
    x = torch.ones(3, len(FS), device=META)
    if name != "pt-nonnegative":  # boolean-mask indexing (x[:, mask]) has no meta implementation
        v = c.violated(x, x0)
        assert (v.device, v.shape, v.dtype) == (META, (3,), torch.bool)
    out = c.repair(x, x0)
    assert (out.device, out.shape) == (META, (3, len(FS)))
    box = c.box(x0)
    if box is not None:
        assert [(b.device, b.shape) for b in box] == [(META, (3, len(FS)))] * 2


def test_box_values_of_bounds_and_pt_nonnegative() -> None:
    x0 = torch.zeros(1, len(FS), dtype=torch.float32)
    lo, hi = Bounds(FS).box(x0)
    assert lo.dtype == torch.float32
    np.testing.assert_array_equal(
        lo[0].numpy(), np.where(FS.periodic_mask, -np.inf, FS.lower).astype(np.float32)
    )
    np.testing.assert_array_equal(
        hi[0].numpy(), np.where(FS.periodic_mask, np.inf, FS.upper).astype(np.float32)
    )
    lo, hi = PtNonNegative(FS).box(x0)
    np.testing.assert_array_equal(lo[0].numpy(), np.where(FS.kind_mask("pt"), 0.0, -np.inf))
    assert bool(torch.isposinf(hi).all())


# --- ConstraintSet ------------------------------------------------------------------------------


def test_feasible_is_false_when_any_constraint_is_violated() -> None:
    cs = ConstraintSet.from_names(FS, ["pt-nonnegative", "bounds"])
    x0 = torch.cat([_pts([2.0, 1.0]), _pts([2.0, 1.0])])
    x = x0.clone()
    x[0, 0] = -0.5  # negative leading pT in row 0: violates both constraints
    x[1, 1] = 1.5  # row 1 stays within every limit (pT in [0, 3.87] feature units)
    assert cs.feasible(x, x0).tolist() == [False, True]
    x[1, 0] = 7.0  # above the leading pT's upper bound 3.87: violates bounds only
    assert cs.feasible(x, x0).tolist() == [False, False]
    # phi-wrap comes before bounds, which leaves periodic columns alone: φ = 4 violates phi-wrap only
    cs = ConstraintSet.from_names(FS, ["phi-wrap", "bounds"])
    assert cs.names == ("phi-wrap", "bounds")
    x = x0.clone()
    x[0, FS.index("ConstPhi_2")] = 4.0
    assert cs.feasible(x, x0).tolist() == [False, True]


def test_from_names_passes_the_number_of_rounds() -> None:
    # pt-sum then pt-nonnegative, x0 pT (3, 2, 1), x pT (4, 3, -2.5). One round: the sum 4.5 is 1.5
    # short of 6, so each pT gains 0.5 -> (4.5, 3.5, -2), then the clamp -> (4.5, 3.5, 0).
    # Three rounds (the default) continue: r = 2 -> (23/6, 17/6, 0); r = 2/3 -> (65/18, 47/18, 0).
    x0 = _pts([3.0, 2.0, 1.0])
    x = _pts([4.0, 3.0, -2.5])
    one = ConstraintSet.from_names(FS, ["pt-sum", "pt-nonnegative"], rounds=1)
    assert one.rounds == 1
    np.testing.assert_allclose(one.repair(x, x0).numpy(), _pts([4.5, 3.5, 0.0]).numpy(), rtol=0, atol=1e-12)
    three = ConstraintSet.from_names(FS, ["pt-sum", "pt-nonnegative"])
    assert three.rounds == 3
    np.testing.assert_allclose(
        three.repair(x, x0).numpy(), _pts([65 / 18, 47 / 18, 0.0]).numpy(), rtol=0, atol=1e-12
    )


def test_constraint_set_keeps_its_feature_specification() -> None:
    assert ConstraintSet.from_names(FS).features is FS
    assert ConstraintSet(FS, [Bounds(FS)]).features is FS


def test_repair_numpy_computes_in_float64() -> None:
    # a float32 input is converted to float64 first: the leading pT 5 is clamped to its upper bound
    # exactly as the feature specification gives it (3.870984724320081), not to the float32 value
    # nearest to it (3.8709847927...), and the result is float64
    upper = FS[0].upper
    assert float(np.float32(upper)) != upper
    cs = ConstraintSet.from_names(FS, ["bounds"])
    x0 = _pts([3.0, 2.0, 1.0]).numpy()
    x = _pts([5.0, 2.0, 1.0]).numpy().astype(np.float32)
    out = cs.repair_numpy(x, x0)
    assert out.dtype == np.float64
    assert out[0, 0] == upper
    np.testing.assert_array_equal(out, np.where(np.arange(len(FS)) == 0, upper, x.astype(np.float64)))


def test_repair_numpy_converts_the_clean_jet_to_float64() -> None:
    # the same float16 jet as below: its exact total 2051 has no float16 representation; converted
    # to float64 the clean total is exact, so an unchanged jet needs no repair
    x0 = _pts([2048.0, 1.0, 1.0, 1.0]).numpy().astype(np.float16)
    cs = ConstraintSet.from_names(FS, ["pt-sum"])
    np.testing.assert_array_equal(cs.repair_numpy(x0.astype(np.float64), x0), x0.astype(np.float64))


def test_check_numpy_evaluates_half_precision_input_in_float64() -> None:
    # pT (2048, 1, 1, 1): the exact total 2051 is odd and above 2048, where float16 has a spacing
    # of 2, so it cannot be represented in float16; the documented float64 conversion keeps it
    # exact, and a jet identical to its clean copy conserves its total.
    x0 = _pts([2048.0, 1.0, 1.0, 1.0]).numpy().astype(np.float16)
    cs = ConstraintSet.from_names(FS, ["pt-sum"])
    assert cs.check_numpy(x0.astype(np.float64), x0)["pt-sum"].tolist() == [False]
    assert cs.check_numpy(x0, x0)["pt-sum"].tolist() == [False]


def test_describe_lists_name_and_description() -> None:
    cs = ConstraintSet.from_names(FS, ["pt-sum", "bounds"])
    assert cs.describe() == [
        {
            "name": "pt-sum",
            "description": "scalar sum of constituent pT conserved (relative tolerance 1e-5); "
            "repair: weighted projection",
        },
        {
            "name": "bounds",
            "description": "every non-periodic feature within its physical [lower, upper] from the "
            "feature specification",
        },
    ]


# --- Budget -------------------------------------------------------------------------------------


def test_budget_stores_eps_as_a_python_float() -> None:
    b = Budget("linf", 2)
    assert type(b.eps) is float
    assert repr(b) == "Budget(norm='linf', eps=2.0)"
    b32 = Budget("l2", np.float32(0.5))
    assert type(b32.eps) is float
    assert b32.eps == 0.5


def test_budget_type_error_names_the_given_type() -> None:
    with pytest.raises(TypeError, match=r"^eps must be a number, got str$"):
        Budget("linf", "1.0")  # type: ignore[arg-type]


def test_budget_contains_tolerance_is_relative_1e4_plus_1e6() -> None:
    # linf, eps = 1, σ = 1: the row is inside iff max|Δx| <= 1 * (1 + 1e-4) + 1e-6 = 1.000101
    b = Budget("linf", 1.0)
    x0 = torch.zeros(5, 2, dtype=torch.float64)
    sigma = torch.ones_like(x0)
    x = torch.tensor(
        [[1.0, 0.0], [1.0001, 0.0], [1.0001009, 0.0], [1.0001011, 0.0], [1.5, -0.2]], dtype=torch.float64
    )
    assert b.contains(x, x0, sigma).tolist() == [True, True, True, False, False]
    # l2, eps = 0.5: the bound is 0.5 * 1.0001 + 1e-6 = 0.500051; |Δx| = 0.6 is outside, 0.5 inside
    x = torch.tensor([[0.6, 0.0], [0.3, 0.4]], dtype=torch.float64)
    assert Budget("l2", 0.5).contains(x, x0[:2], sigma[:2]).tolist() == [False, True]


def test_budget_contains_its_boundary() -> None:
    # eps = 0 leaves only the absolute slack: |Δx|/σ = 1e-6 is exactly on the boundary (inside),
    # 2e-6 is outside
    x0 = torch.zeros(2, 1, dtype=torch.float64)
    x = torch.tensor([[1e-6], [2e-6]], dtype=torch.float64)
    assert Budget("linf", 0.0).contains(x, x0, torch.ones_like(x)).tolist() == [True, False]


def test_scaled_delta_wraps_periodic_differences() -> None:
    # a difference of 3π/2 on a periodic column is the same angle as -π/2
    x0 = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.5 * math.pi, 1.5 * math.pi]], dtype=torch.float64)
    z = scaled_delta(x, x0, torch.full_like(x, 0.5), torch.tensor([True, False]))
    np.testing.assert_allclose(z.numpy(), [[-math.pi, 3 * math.pi]], rtol=0, atol=1e-12)


# --- SpecBounds (tabular.py) --------------------------------------------------------------------

SPEC = {
    "column": [
        {"name": "mass", "sigma": 1.0, "lower": 0.0, "upper": 5.0},
        {"name": "angle", "sigma": 0.1, "lower": -1.0, "period": 2.0},
        {"name": "shape", "sigma": 1.0},
    ]
}


def _spec_bounds() -> SpecBounds:
    return SpecBounds(parse_feature_spec(SPEC))


def test_spec_bounds_box_is_the_column_bounds_with_periodic_columns_free() -> None:
    x0 = torch.tensor([[1.0, 0.5, 3.0], [2.0, -0.5, -3.0]], dtype=torch.float64)
    lo, hi = _spec_bounds().box(x0)
    inf = math.inf
    assert lo.tolist() == [[0.0, -inf, -inf], [0.0, -inf, -inf]]
    assert hi.tolist() == [[5.0, inf, inf], [5.0, inf, inf]]
    lo, hi = _spec_bounds().box(torch.zeros(2, 3, device=META))
    assert (lo.device, hi.device) == (META, META)


def test_spec_bounds_repair_clamps_and_wraps() -> None:
    # mass clamps to [0, 5]; angle wraps into [-1, 1) with period 2: 1.5 -> -0.5, -2.25 -> -0.25,
    # 1.0 -> -1.0 (the upper end is excluded); shape has no bounds and is left alone
    c = _spec_bounds()
    x = torch.tensor([[-0.5, 1.5, 1e6], [7.0, -2.25, -1e6], [2.5, 1.0, 0.0]], dtype=torch.float64)
    out = c.repair(x, x)
    assert out.tolist() == [[0.0, -0.5, 1e6], [5.0, -0.25, -1e6], [2.5, -1.0, 0.0]]
    assert c.violated(out, x).tolist() == [False, False, False]
    assert c.repair(torch.zeros(1, 3, device=META), torch.zeros(1, 3, device=META)).device == META


def test_spec_bounds_violated_uses_the_tolerance_on_each_side() -> None:
    # tol = 1e-9: 5 + 5e-10 is within the tolerance of the closed upper bound 5, 5 + 2e-9 is not;
    # the periodic upper end 1 is excluded (x >= 1 + tol is a violation, 1 + 5e-10 is not)
    c = _spec_bounds()
    x0 = torch.zeros(1, 3, dtype=torch.float64)
    rows = [
        [5.0 - 5e-10, 0.0, 0.0],
        [5.0 + 5e-10, 0.0, 0.0],
        [5.0 + 2e-9, 0.0, 0.0],
        [-5e-10, 0.0, 0.0],
        [-2e-9, 0.0, 0.0],
        [1.0, 1.0 + 5e-10, 0.0],
        [1.0, 1.0 + 2e-9, 0.0],
        [1.0, -1.0 - 2e-9, 1e300],
    ]
    x = torch.tensor(rows, dtype=torch.float64)
    assert c.violated(x, x0.expand_as(x)).tolist() == [False, False, True, False, True, False, True, True]


def test_spec_bounds_upper_bound_is_inclusive_except_for_periodic_columns() -> None:
    # tol = 0: mass = 5 (its upper bound) is allowed; angle = 1 (lower + period) is the same
    # angle as -1 and lies outside [-1, 1); both ends are allowed at the lower bound
    c = SpecBounds(parse_feature_spec(SPEC), tol=0.0)
    x = torch.tensor([[5.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
    assert c.violated(x, torch.zeros_like(x)).tolist() == [False, True, False]
    v = c.violated(torch.zeros(2, 3, device=META), torch.zeros(2, 3, device=META))
    assert v.device == META


def test_spec_constraints_is_a_set_of_one_spec_bounds() -> None:
    spec = parse_feature_spec(SPEC)
    cs = spec_constraints(spec)
    assert cs.features is None
    assert cs.names == ("bounds",)
    (c,) = cs.constraints
    assert isinstance(c, SpecBounds)
    assert c.spec is spec
    x0 = np.zeros((1, 3))
    assert cs.repair_numpy(np.array([[6.0, 1.5, 2.0]]), x0).tolist() == [[5.0, -0.5, 2.0]]


# --- survivors of the full run ------------------------------------------------------------------


def test_unknown_constraint_messages() -> None:
    known = "pt-nonnegative, phi-wrap, invariants, bounds, pt-ordering, pt-sum, energy"
    with pytest.raises(ValueError, match="unknown constraint") as info:
        ConstraintSet.from_names(FS, ["pt-sun"])
    assert (
        str(info.value) == f"unknown constraint 'pt-sun' (did you mean 'pt-sum'?); known constraints: {known}"
    )
    with pytest.raises(ValueError, match="unknown constraint") as info:
        ConstraintSet.from_names(FS, ["zzz"])
    assert str(info.value) == f"unknown constraint 'zzz'; known constraints: {known}"
    with pytest.raises(ValueError, match="unknown norm") as info:
        Budget("l1", 1.0)  # type: ignore[arg-type]
    assert str(info.value) == "unknown norm 'l1'; use one of linf, l2, chi2"


def test_repeated_rounds_only_with_conservation_or_ordering() -> None:
    assert ConstraintSet.from_names(FS).rounds == 1
    assert ConstraintSet.from_names(FS, rounds=5).rounds == 1
    assert ConstraintSet.from_names(FS, ["pt-ordering"], rounds=5).rounds == 5
    assert ConstraintSet.from_names(FS, ["energy", "bounds"]).rounds == 3


def test_repr_names_the_constraint_class() -> None:
    assert repr(PtSumConservation(FS)) == "PtSumConservation()"
    assert repr(Bounds(FS)) == "Bounds()"


def test_default_tolerances_of_the_constraints() -> None:
    # defaults: 0 for the clamps, 1e-7 for the ordering, 1e-5 (relative) for conservation
    x0 = _pts([2.0, 1.0])
    x = x0.clone()
    x[0, 0] = FS[0].upper + 1e-7  # above the bound by 1e-7
    assert Bounds(FS).violated(x, x0).tolist() == [True]
    x = x0.clone()
    x[0, 1] = -1e-7
    assert PtNonNegative(FS).violated(x, x0).tolist() == [True]
    x = x0.clone()
    x[0, FS.index("ConstPhi_1")] = 1e-7  # φ₁ <= 0
    assert PreprocessingInvariants(FS).violated(x, x0).tolist() == [True]
    # the second pT rises 5e-7 above the first: more than 1e-7
    x0 = _pts([2.0, 2.0])
    assert PtOrdering(FS).violated(_pts([2.0, 2.0 + 5e-7]), x0).tolist() == [True]
    # a relative energy change of 5e-6 is within 1e-5
    x0 = _pts([2.0, 2.0])
    assert EnergyConservation(FS).violated(_pts([2.0, 2.0 + 4 * 5e-6]), x0).tolist() == [False]
    assert PtSumConservation(FS).violated(_pts([2.0, 2.0 + 4 * 5e-6]), x0).tolist() == [False]
    assert PtSumConservation(FS).violated(_pts([2.0, 2.0 + 4 * 2e-5]), x0).tolist() == [True]


def test_explicit_tolerances_widen_every_limit() -> None:
    # tol = 0.1: values up to 0.1 beyond a limit pass, values 0.05 inside it pass too
    x0 = _pts([2.0, 1.0])
    b = Bounds(FS, tol=0.1)
    rows = [x0.clone() for _ in range(4)]
    rows[0][0, 0] = FS[0].upper - 0.05
    rows[1][0, FS.index("ConstEta_2")] = -3.2 + 0.05
    rows[2][0, 0] = FS[0].upper + 0.05
    rows[3][0, 0] = FS[0].upper + 0.15
    x = torch.cat(rows)
    assert b.violated(x, x0.expand_as(x)).tolist() == [False, False, False, True]
    p = PhiWrap(FS, tol=0.1)
    i = FS.index("ConstPhi_2")
    rows = [x0.clone() for _ in range(4)]
    rows[0][0, i] = -math.pi + 0.05
    rows[1][0, i] = math.pi - 0.05
    rows[2][0, i] = math.pi + 0.05
    rows[3][0, i] = -math.pi - 0.15
    x = torch.cat(rows)
    assert p.violated(x, x0.expand_as(x)).tolist() == [False, False, False, True]
    n = PtNonNegative(FS, tol=0.1)
    rows = [x0.clone() for _ in range(3)]
    rows[0][0, 1] = -0.05
    rows[1][0, 1] = 0.05
    rows[2][0, 1] = -0.15
    x = torch.cat(rows)
    assert n.violated(x, x0.expand_as(x)).tolist() == [False, False, True]


def test_pt_ordering_allows_equal_pt_without_tolerance() -> None:
    x0 = _pts([5.0, 3.0])
    c = PtOrdering(FS, tol=0.0)
    assert c.violated(_pts([5.0, 5.0]), x0).tolist() == [False]
    assert c.violated(_pts([5.0, 5.0 + 1e-12]), x0).tolist() == [True]


def test_conservation_tolerance_is_relative_to_the_clean_total() -> None:
    # tol = 2^-10: clean total 4 allows a change of 4 * 2^-10; clean total 0.5 allows 0.5 * 2^-10
    c = PtSumConservation(_pt_only(1), tol=2.0**-10)
    x0 = torch.tensor([[4.0], [4.0], [0.5], [0.5]], dtype=torch.float64)
    x = x0 + torch.tensor([[4.0], [5.0], [0.5], [0.75]], dtype=torch.float64) * 2.0**-10
    assert c.violated(x, x0).tolist() == [False, True, False, True]


def test_coefficients_have_the_dtype_of_the_input() -> None:
    x = _pts([2.0, 1.0])
    coef = PtSumConservation(FS).coefficients(x)
    assert coef.dtype == torch.float64
    np.testing.assert_array_equal(coef[0].numpy(), FS.kind_mask("pt").astype(np.float64))


def _pt_eta(eta: list[float]) -> FeatureSet:
    specs = []
    for i in range(len(eta)):
        specs.append(FeatureSpec(f"ConstPT_{i}", "pt", i, "GeV", 0.0, 6500.0, None, 1.0))
        specs.append(FeatureSpec(f"ConstEta_{i}", "eta", i, "1", -3.0, 3.0))
    return FeatureSet(tuple(specs))


def test_energy_projection_in_closed_form() -> None:
    # layout (pT₀, η₀, pT₁, η₁), η = (0, ln 2): coefficients cosh η = (1, 1.25). E0 = 3 + 1.25 * 2 = 5.5,
    # E(x) = 4 + 2.5 = 6.5, r = 1, Σ c² = 2.5625 = 41/16, λ = 16/41:
    # pT' = (4 - 16/41, 2 - 1.25 * 16/41) = (148/41, 62/41); η entries do not move.
    # With a finite box on η (|η| <= 1) the projection is the same point.
    c = EnergyConservation(_pt_eta([0.0, 0.0]))
    eta1 = math.log(2.0)
    x0 = torch.tensor([[3.0, 0.0, 2.0, eta1], [3.0, 0.0, 2.0, eta1]], dtype=torch.float64)
    x = torch.tensor([[4.0, 0.0, 2.0, eta1], [4.0, 0.0, 2.0, eta1]], dtype=torch.float64)
    x[1] = x0[1]  # a second row that already conserves its energy stays where it is
    want = torch.tensor([[148 / 41, 0.0, 62 / 41, eta1], [3.0, 0.0, 2.0, eta1]], dtype=torch.float64)
    lo = torch.tensor([[0.0, -1.0, 0.0, -1.0]] * 2, dtype=torch.float64)
    hi = torch.tensor([[math.inf, 1.0, math.inf, 1.0]] * 2, dtype=torch.float64)
    np.testing.assert_allclose(c.project_box(x, x0, lo, hi).numpy(), want.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.repair(x, x0).numpy(), want.numpy(), rtol=0, atol=1e-12)


def test_project_box_rows_are_independent() -> None:
    # the closed-form rows of the clipped case and of a row that needs λ = -1 (x one below x0)
    c = PtSumConservation(_pt_only(4))
    x0 = torch.tensor([[3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[4.0, 3.0, 1.0, 0.3], [3.0, 2.0, 0.0, 0.0]], dtype=torch.float64)
    lo = torch.tensor([[0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    hi = torch.tensor([[3.2, math.inf, math.inf, math.inf]] * 2, dtype=torch.float64)
    # row 2: x' = x + 1/3 on the three movable entries, but entry 0 is capped at 3.2:
    # (3 + λ') capped -> 3.2 when λ' >= 0.2; 3.2 + (2 + λ') + (0 + λ') = 6 -> λ' = 0.4
    out = c.project_box(x, x0, lo, hi)
    np.testing.assert_allclose(out.numpy(), [[3.1, 2.1, 0.5, 0.3], [3.2, 2.4, 0.4, 0.0]], rtol=0, atol=1e-9)


def test_project_box_bracket_covers_small_weights_and_far_targets() -> None:
    # one pT entry at -3 in [-5, 3], clean total 3, σ² = 0.25: λ = -6 / 0.25 = -24, x' = 3
    c = PtSumConservation(_pt_only(1))
    one = torch.tensor([[1.0]], dtype=torch.float64)
    out = c.project_box(-3 * one, 3 * one, -5 * one, 3 * one, weights=0.25 * one)
    assert float(out[0, 0]) == pytest.approx(3.0, abs=1e-9)
    # entry A (clean 1) at 2 in [-2, 2.5] next to a padded entry B at 3: the total 1 needs A = -2
    c = PtSumConservation(_pt_only(2))
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    lo = torch.tensor([[-2.0, 0.0]], dtype=torch.float64)
    hi = torch.tensor([[2.5, math.inf]], dtype=torch.float64)
    np.testing.assert_allclose(c.project_box(x, x0, lo, hi).numpy(), [[-2.0, 3.0]], rtol=0, atol=1e-9)


def test_wrapping_with_other_periods_and_lower_ends() -> None:
    # a φ in degrees: [-180, 180), period 360: 190 -> -170, -200 -> 160
    specs = (
        FeatureSpec("ConstPT_0", "pt", 0, "GeV", 0.0, 6500.0, None, 1.0),
        FeatureSpec("ConstPhi_0", "phi", 0, "deg", -180.0, 180.0, 360.0),
    )
    c = PhiWrap(FeatureSet(specs))
    x0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 190.0], [1.0, -200.0]], dtype=torch.float64)
    assert c.repair(x, x0).tolist() == [[1.0, -170.0], [1.0, 160.0]]
    assert c.violated(x, x0).tolist() == [True, True]
    # [-1, 2) with period 3: 2.5 -> -0.5
    specs = (
        FeatureSpec("ConstPT_0", "pt", 0, "GeV", 0.0, 6500.0, None, 1.0),
        FeatureSpec("ConstPhi_0", "phi", 0, "1", -1.0, 2.0, 3.0),
    )
    c = PhiWrap(FeatureSet(specs))
    assert c.repair(torch.tensor([[1.0, 2.5]], dtype=torch.float64), x0[:1]).tolist() == [[1.0, -0.5]]
    # tabular: a column on [0.5, 2.5) with period 2: 3.0 -> 1.0
    spec = parse_feature_spec({"column": [{"name": "a", "sigma": 0.1, "lower": 0.5, "period": 2.0}]})
    out = SpecBounds(spec).repair(
        torch.tensor([[3.0]], dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    )
    assert out.tolist() == [[1.0]]


def test_scaled_delta_on_the_input_device() -> None:
    x = torch.zeros(2, 3, device=META)
    z = scaled_delta(x, x, torch.ones(2, 3, device=META), torch.tensor([False, True, False]))
    assert z.device == META


def test_phi_wrap_checks_in_the_dtype_of_the_input() -> None:
    # period 0.7 on [0, 0.7): in float32 the upper end is float32(0.7) = 0.69999998807...; the
    # float32 value 0.7 is that end, outside the range, so the check flags it and the repair wraps
    # it to the lower end 0 (check and repair agree in the input's precision)
    specs = (
        FeatureSpec("ConstPT_0", "pt", 0, "GeV", 0.0, 6500.0, None, 1.0),
        FeatureSpec("ConstPhi_0", "phi", 0, "1", 0.0, 0.7, 0.7),
    )
    c = PhiWrap(FeatureSet(specs))
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float32)
    x = torch.tensor([[1.0, 0.7]], dtype=torch.float32)
    assert c.violated(x, x0).tolist() == [True]
    assert c.repair(x, x0).tolist() == [[1.0, 0.0]]


def test_project_box_brackets_each_row_separately() -> None:
    # row A: x = 4 in [0, 10], clean 3, σ² = 1 -> x' = 3 (λ = 1, bracket ±10)
    # row B: x = 4 unbounded, clean 3, σ² = 1e-6 -> x' = 3 (λ = 1e6, bracket ±2e12);
    # a bracket shared by both rows would leave row A only to within 2e12 * 2^-60 ≈ 2e-6
    c = PtSumConservation(_pt_only(1))
    x0 = torch.tensor([[3.0], [3.0]], dtype=torch.float64)
    x = torch.tensor([[4.0], [4.0]], dtype=torch.float64)
    lo = torch.tensor([[0.0], [-math.inf]], dtype=torch.float64)
    hi = torch.tensor([[10.0], [math.inf]], dtype=torch.float64)
    w = torch.tensor([[1.0], [1e-6]], dtype=torch.float64)
    out = c.project_box(x, x0, lo, hi, weights=w)
    assert float(out[0, 0]) == pytest.approx(3.0, abs=1e-12)
    assert float(out[1, 0]) == pytest.approx(3.0, abs=1e-6)


def test_energy_conservation_uses_the_given_tolerance() -> None:
    # tol = 1e-3: a relative energy change of 5e-4 (pT 2 -> 2.002 next to pT 2) is allowed, 2e-3 is not
    x0 = _pts([2.0, 2.0])
    c = EnergyConservation(FS, tol=1e-3)
    assert c.tol == 1e-3
    assert c.violated(_pts([2.0, 2.002]), x0).tolist() == [False]
    assert c.violated(_pts([2.0, 2.008]), x0).tolist() == [True]
