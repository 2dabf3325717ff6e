r"""Perturbation budgets in units of each feature's experimental uncertainty σ.

A budget is a norm ball around the clean jet in the scaled coordinates
:math:`z_i = \Delta x_i / \sigma_i`, with :math:`\sigma_i` from the feature
specification's resolution model evaluated at the **clean** jet (so the budget does not
move while the attack runs). Periodic features use the wrapped difference.

* ``linf``: :math:`\max_i |z_i| \le \epsilon`;
* ``l2``: :math:`\lVert z \rVert_2 \le \epsilon`;
* ``chi2``: :math:`\chi^2/N = \frac{1}{F}\sum_i z_i^2 \le \epsilon` (the MiniFool
  distance, arXiv:2511.01352), i.e. an L2 ball of radius :math:`\sqrt{\epsilon F}`.

Projection onto the ball is the foolbox pattern: the framework, not the attack, calls
:meth:`Budget.project` after every step.

Example:
    >>> import torch
    >>> b = Budget("linf", 1.0)
    >>> x0 = torch.zeros(1, 3); sigma = torch.ones(1, 3)
    >>> b.project(torch.tensor([[3.0, -0.5, -2.0]]), x0, sigma)
    tensor([[ 1.0000, -0.5000, -1.0000]])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["NORMS", "Budget", "scaled_delta"]

Norm = Literal["linf", "l2", "chi2"]
NORMS: tuple[str, ...] = ("linf", "l2", "chi2")


def scaled_delta(x: Tensor, x0: Tensor, sigma: Tensor, periodic: Tensor | None = None) -> Tensor:
    r""":math:`(x - x_0)/\sigma`; for periodic columns the difference is wrapped into :math:`[-\pi, \pi)`."""
    d = x - x0
    if periodic is not None and bool(periodic.any()):
        wrapped = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
        d = torch.where(periodic.to(x.device), wrapped, d)
    return d / sigma


@dataclass(frozen=True)
class Budget:
    """A norm ball of radius ``eps`` in σ units.

    Attributes:
        norm: ``"linf"``, ``"l2"`` or ``"chi2"``.
        eps: Radius in σ units (``chi2``: the bound on χ²/N). Must be non-negative.
    """

    norm: Norm
    eps: float

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; use one of {', '.join(NORMS)}")
        if not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool | np.bool_):
            raise TypeError(f"eps must be a number, got {type(self.eps).__name__}")
        if not math.isfinite(self.eps) or self.eps < 0:
            raise ValueError(f"eps must be a finite non-negative number of sigmas, got {self.eps}")
        object.__setattr__(self, "eps", float(self.eps))

    def radius_l2(self, n_features: int) -> float:
        """L2 radius in σ units (for ``chi2``: :math:`\\sqrt{\\epsilon F}`)."""
        return math.sqrt(self.eps * n_features) if self.norm == "chi2" else self.eps

    def distance(self, z: Tensor) -> Tensor:
        """Per-row distance of scaled perturbations ``z`` in this budget's norm."""
        if self.norm == "linf":
            return z.abs().amax(dim=1)
        if self.norm == "l2":
            return z.norm(dim=1)
        return (z * z).mean(dim=1)

    def project(self, x: Tensor, x0: Tensor, sigma: Tensor, periodic: Tensor | None = None) -> Tensor:
        """Project ``x`` onto the ball around ``x0`` (Euclidean projection in σ units)."""
        z = scaled_delta(x, x0, sigma, periodic)
        if self.norm == "linf":
            z = z.clamp(-self.eps, self.eps)
        else:
            r = self.radius_l2(x.shape[1])
            n = z.norm(dim=1, keepdim=True)
            z = z * torch.where(n > r, r / n.clamp(min=1e-30), torch.ones_like(n))
        return x0 + z * sigma

    def contains(
        self, x: Tensor, x0: Tensor, sigma: Tensor, periodic: Tensor | None = None, rtol: float = 1e-4
    ) -> Tensor:
        """Boolean ``(N,)``: rows within the budget (relative tolerance for round-off)."""
        d = self.distance(scaled_delta(x, x0, sigma, periodic))
        return d <= self.eps * (1 + rtol) + 1e-6
