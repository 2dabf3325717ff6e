"""Property-based tests (hypothesis) of the budget projections and constraint repairs (issue 18).

Jets are drawn in the challenge layout (87 columns): ``m`` real constituents with decreasing
pT, the rest zero-padded, φ₁ ≤ 0; perturbations of any size up to a few units. Properties,
each checked against an independent NumPy computation or a defining inequality:

* ``Budget.project``: equals the closed-form Euclidean projection (clip for L∞, radial
  shrink for L2/χ²), lies in the ball, is idempotent and non-expansive.
* box repairs (``pt-nonnegative``, ``invariants``, ``bounds``): the result is feasible, a
  feasible point is unchanged, and the result is the per-entry clip into ``box()``.
* ``phi-wrap``: the result lies in [-π, π) and differs from the input by multiples of 2π.
* ``pt-ordering``: no violation after repair, entries never increase.
* conservation (``pt-sum``, ``energy``): the total is conserved, padded constituents do not
  move, and the move is orthogonal to the hyperplane (optimality of a Euclidean projection).

Tolerances: 1e-9 absolute in float64 unless stated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

from aalearn.constraints import CONSTRAINTS, NORMS, Budget
from aalearn.constraints.physics import LinearConservation
from aalearn.physics import challenge_features

FS = challenge_features()
PT = FS.kind_mask("pt")
PT_COL = FS.pt_column_of()
PROPERTY = settings(max_examples=30, deadline=None)


@st.composite
def jets(draw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, x): clean rows in the challenge layout and perturbed rows."""
    seed = draw(st.integers(0, 2**32 - 1))
    n, m = draw(st.integers(1, 4)), draw(st.integers(2, 30))
    scale = draw(st.sampled_from([1e-4, 0.01, 0.3, 3.0]))
    rng = np.random.default_rng(seed)
    x0 = np.zeros((n, len(FS)))
    for i, spec in enumerate(FS):
        if spec.constituent < m:
            if spec.kind == "pt":
                x0[:, i] = 0.5 * np.exp(-0.3 * spec.constituent) * rng.uniform(0.5, 1.0, n)
            else:
                x0[:, i] = rng.uniform(-0.8, 0.8, n)
    phi1 = FS.index("ConstPhi_1")
    x0[:, phi1] = -np.abs(x0[:, phi1])
    x0[:, PT] = -np.sort(-x0[:, PT], axis=1)  # pT-ordered, padding last
    x = x0 + scale * rng.standard_normal(x0.shape)
    return torch.from_numpy(x0), torch.from_numpy(x)


@PROPERTY
@given(jets(), st.sampled_from(NORMS), st.floats(0.0, 3.0), st.integers(0, 2**32 - 1))
def test_budget_projection_is_the_closed_form_euclidean_projection(
    pair: tuple[torch.Tensor, torch.Tensor], norm: str, eps: float, seed: int
) -> None:
    x0, x = pair
    sigma = torch.from_numpy(np.random.default_rng(seed).uniform(0.01, 1.0, x.shape[1]))
    b = Budget(norm, eps)  # type: ignore[arg-type]
    p = b.project(x, x0, sigma)
    z = ((x - x0) / sigma).numpy()
    if norm == "linf":
        expected = x0.numpy() + np.clip(z, -eps, eps) * sigma.numpy()
    else:
        r = eps if norm == "l2" else math.sqrt(eps * x.shape[1])
        length = np.linalg.norm(z, axis=1, keepdims=True)
        expected = x0.numpy() + z * np.minimum(1.0, r / np.maximum(length, 1e-300)) * sigma.numpy()
    np.testing.assert_allclose(p.numpy(), expected, rtol=0, atol=1e-9)
    assert bool(b.contains(p, x0, sigma).all())
    np.testing.assert_allclose(b.project(p, x0, sigma).numpy(), p.numpy(), rtol=0, atol=1e-9)
    # non-expansive in σ units: projecting two points never moves them further apart
    y = x0 + (x - x0).flip(1)
    d_before = np.linalg.norm(((x - y) / sigma).numpy(), axis=1)
    d_after = np.linalg.norm(((p - b.project(y, x0, sigma)) / sigma).numpy(), axis=1)
    assert np.all(d_after <= d_before + 1e-9)


@PROPERTY
@given(jets(), st.sampled_from(["pt-nonnegative", "invariants", "bounds"]))
def test_box_repairs_clip_into_the_box_and_keep_feasible_points(
    pair: tuple[torch.Tensor, torch.Tensor], name: str
) -> None:
    x0, x = pair
    c = CONSTRAINTS[name](FS)
    r = c.repair(x, x0)
    assert not bool(c.violated(r, x0).any())
    box = c.box(x0)
    assert box is not None
    lo, hi = box
    np.testing.assert_array_equal(r.numpy(), np.clip(x.numpy(), lo.numpy(), hi.numpy()))
    np.testing.assert_array_equal(c.repair(r, x0).numpy(), r.numpy())
    assert not bool(c.violated(x0, x0).any())
    np.testing.assert_array_equal(c.repair(x0, x0).numpy(), x0.numpy())


@PROPERTY
@given(jets(), st.floats(-50.0, 50.0))
def test_phi_wrap_lands_in_range_and_moves_by_whole_turns(
    pair: tuple[torch.Tensor, torch.Tensor], shift: float
) -> None:
    x0, x = pair
    periodic = torch.from_numpy(FS.periodic_mask)
    moved = torch.where(periodic, x + shift, x)
    c = CONSTRAINTS["phi-wrap"](FS)
    r = c.repair(moved, x0)
    assert not bool(c.violated(r, x0).any())
    turns = ((r - moved) / (2 * math.pi)).numpy()
    np.testing.assert_allclose(turns, np.round(turns), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(r.numpy()[:, ~FS.periodic_mask], moved.numpy()[:, ~FS.periodic_mask])


@PROPERTY
@given(jets())
def test_pt_ordering_repair_orders_and_only_lowers(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    x0, x = pair
    c = CONSTRAINTS["pt-ordering"](FS)
    r = c.repair(x, x0)
    assert not bool(c.violated(r, x0).any())
    assert bool((r <= x).all())


@PROPERTY
@given(jets(), st.sampled_from(["pt-sum", "energy"]))
def test_conservation_repair_is_the_projection_onto_the_hyperplane(
    pair: tuple[torch.Tensor, torch.Tensor], name: str
) -> None:
    x0, x = pair
    c = CONSTRAINTS[name](FS)
    assert isinstance(c, LinearConservation)
    r = c.repair(x, x0)
    assert not bool(c.violated(r, x0).any())
    np.testing.assert_allclose(c.total(r).numpy(), c.total(x0).numpy(), rtol=1e-9, atol=1e-12)
    padded = (x0[:, torch.from_numpy(PT_COL)] == 0).numpy()
    np.testing.assert_array_equal(r.numpy()[padded], x.numpy()[padded])
    # optimality: the move is parallel to the movable coefficients, i.e. orthogonal to every
    # direction v within the hyperplane (c·v = 0) that keeps padded entries fixed
    coef = c.coefficients(r).numpy() * ~padded
    move = (r - x).numpy()
    v = np.random.default_rng(0).standard_normal(move.shape) * ~padded
    v -= coef * ((v * coef).sum(1, keepdims=True) / np.maximum((coef * coef).sum(1, keepdims=True), 1e-300))
    np.testing.assert_allclose((move * v).sum(1), 0.0, atol=1e-9 * (1 + np.abs(move).sum()))
