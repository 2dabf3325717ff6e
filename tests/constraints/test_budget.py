"""Tests of the σ-unit perturbation budgets (:mod:`aalearn.constraints.budget`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aalearn.constraints import NORMS, Budget, scaled_delta

F = 12


def _setup(seed: int = 0, n: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random clean rows, perturbed rows far outside any small ball, σ and a periodic mask."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, F, generator=g, dtype=torch.float64) * 2 - 1
    sigma = torch.rand(n, F, generator=g, dtype=torch.float64) * 0.5 + 0.01
    x = x0 + torch.randn(n, F, generator=g, dtype=torch.float64) * sigma * 5
    periodic = torch.zeros(F, dtype=torch.bool)
    periodic[::3] = True
    return x, x0, sigma, periodic


def _ball_distance(norm: str, z: torch.Tensor) -> torch.Tensor:
    """Independent implementation of the three norms."""
    if norm == "linf":
        return z.abs().amax(dim=1)
    if norm == "l2":
        return torch.sqrt((z * z).sum(dim=1))
    return (z * z).sum(dim=1) / z.shape[1]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("eps", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("use_periodic", [False, True])
def test_projection_is_idempotent_and_inside_the_ball(norm: str, eps: float, use_periodic: bool) -> None:
    x, x0, sigma, periodic = _setup()
    per = periodic if use_periodic else None
    b = Budget(norm, eps)  # type: ignore[arg-type]
    p1 = b.project(x, x0, sigma, per)
    p2 = b.project(p1, x0, sigma, per)
    np.testing.assert_allclose(p2.numpy(), p1.numpy(), rtol=0, atol=1e-12)
    d = _ball_distance(norm, scaled_delta(p1, x0, sigma, per))
    assert bool((d <= eps * (1 + 1e-9) + 1e-12).all())
    assert bool(b.contains(p1, x0, sigma, per).all())
    np.testing.assert_allclose(
        b.distance(scaled_delta(p1, x0, sigma, per)).numpy(), d.numpy(), rtol=1e-12, atol=1e-15
    )
    if eps > 0:
        # the perturbations were large: projection puts (almost) every row on the sphere
        assert bool((~b.contains(x, x0, sigma, per)).any())
        assert float(d.max()) == pytest.approx(eps, rel=1e-9)


@pytest.mark.parametrize("norm", NORMS)
def test_points_inside_the_ball_are_not_moved(norm: str) -> None:
    x, x0, sigma, _ = _setup(seed=1)
    b = Budget(norm, 1.0)  # type: ignore[arg-type]
    z = scaled_delta(x, x0, sigma)
    r = b.distance(z)[:, None]
    shrink = (0.9 / r).clamp(max=1.0)  # rows at 90 % of the radius (or where they already are)
    if norm == "chi2":
        shrink = shrink.sqrt()  # χ²/N is quadratic in z
    inside = x0 + z * shrink * sigma
    assert bool(b.contains(inside, x0, sigma).all())
    assert float(b.distance(scaled_delta(inside, x0, sigma)).max()) == pytest.approx(0.9)
    np.testing.assert_allclose(b.project(inside, x0, sigma).numpy(), inside.numpy(), rtol=0, atol=1e-12)


def test_projection_is_the_nearest_point_for_linf() -> None:
    x0 = torch.zeros(1, 3, dtype=torch.float64)
    sigma = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    x = torch.tensor([[3.0, -0.5, -2.0]], dtype=torch.float64)
    p = Budget("linf", 1.0).project(x, x0, sigma)
    np.testing.assert_allclose(p.numpy(), [[1.0, -0.5, -0.5]])


def test_l2_and_chi2_radii() -> None:
    assert Budget("l2", 2.0).radius_l2(50) == 2.0
    assert Budget("chi2", 0.5).radius_l2(50) == pytest.approx(5.0)
    assert Budget("linf", 0.5).radius_l2(50) == 0.5
    z = torch.full((1, 4), 0.5, dtype=torch.float64)
    assert float(Budget("chi2", 1.0).distance(z)[0]) == pytest.approx(0.25)  # χ²/N
    assert float(Budget("l2", 1.0).distance(z)[0]) == pytest.approx(1.0)
    assert float(Budget("linf", 1.0).distance(z)[0]) == pytest.approx(0.5)


def test_periodic_difference_is_wrapped() -> None:
    x0 = torch.tensor([[3.1]], dtype=torch.float64)
    x = torch.tensor([[-3.1]], dtype=torch.float64)
    sigma = torch.ones(1, 1, dtype=torch.float64)
    per = torch.tensor([True])
    step = 2 * math.pi - 6.2  # ≈ 0.083 rad, across the ±π seam
    z = scaled_delta(x, x0, sigma, per)
    assert float(z[0, 0]) == pytest.approx(step, abs=1e-12)
    assert float(scaled_delta(x0, x, sigma, per)[0, 0]) == pytest.approx(-step, abs=1e-12)
    assert float(scaled_delta(x, x0, sigma)[0, 0]) == pytest.approx(-6.2)  # not periodic: a huge step
    assert bool(Budget("linf", 0.1).contains(x, x0, sigma, per).all())
    assert not bool(Budget("linf", 0.1).contains(x, x0, sigma).any())
    # projecting onto a smaller ball moves along the short way round (modulo 2π)
    p = Budget("linf", 0.05).project(x, x0, sigma, per)
    assert float(scaled_delta(p, x0, sigma, per)[0, 0]) == pytest.approx(0.05, abs=1e-12)
    assert float(torch.remainder(p - x + math.pi, 2 * math.pi)[0, 0] - math.pi) == pytest.approx(
        0.05 - step, abs=1e-12
    )


def test_wrapped_difference_lies_in_minus_pi_pi() -> None:
    x0 = torch.linspace(-math.pi, math.pi - 1e-9, 101, dtype=torch.float64)[:, None]
    x = torch.flip(x0, dims=[0])
    z = scaled_delta(x, x0, torch.ones_like(x0), torch.tensor([True]))
    assert bool((z >= -math.pi).all())
    assert bool((z < math.pi).all())


@pytest.mark.parametrize("eps", [-1.0, -1e-12, float("nan"), float("inf"), -float("inf")])
def test_bad_eps_raises_value_error(eps: float) -> None:
    with pytest.raises(ValueError, match="eps must be a finite non-negative number"):
        Budget("linf", eps)


@pytest.mark.parametrize("eps", ["1.0", None, [1.0], True, torch.tensor(1.0)])
def test_non_number_eps_raises_type_error(eps: object) -> None:
    with pytest.raises(TypeError, match="eps must be a number"):
        Budget("linf", eps)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", ["l1", "Linf", "", "chi"])
def test_unknown_norm_raises_value_error(norm: str) -> None:
    with pytest.raises(ValueError, match="unknown norm"):
        Budget(norm, 1.0)  # type: ignore[arg-type]


def test_integer_and_numpy_float64_eps_are_accepted() -> None:
    assert Budget("l2", 2).eps == 2
    assert Budget("linf", np.float64(0.5)).eps == 0.5
    assert Budget("linf", 0).eps == 0


@pytest.mark.parametrize("eps", [np.float32(0.5), np.int64(2)], ids=["float32", "int64"])
def test_numpy_scalar_eps_is_a_number(eps: object) -> None:
    assert Budget("linf", eps).eps == pytest.approx(float(eps))  # type: ignore[arg-type]


def test_budget_is_frozen_and_comparable() -> None:
    b = Budget("linf", 1.0)
    assert b == Budget("linf", 1.0)
    with pytest.raises(AttributeError):
        b.eps = 2.0  # type: ignore[misc]
