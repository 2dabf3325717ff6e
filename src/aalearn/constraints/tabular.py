"""The box constraint of a tabular feature specification (bounds and periodicity per column).

Jet data described by a :class:`~aalearn.physics.features.FeatureSet` use the physics
constraints of :mod:`aalearn.constraints.physics`; tabular data described by a
:class:`~aalearn.physics.spec.FeatureSpecification` use :class:`SpecBounds`: every
non-periodic column stays within its bounds (repair: clamp), periodic columns are wrapped
into ``[lower, lower + period)``.

Example:
    >>> import torch
    >>> from aalearn.physics.spec import parse_feature_spec
    >>> spec = parse_feature_spec({"column": [{"name": "m", "sigma": 1.0, "lower": 0.0},
    ...                                       {"name": "a", "sigma": 0.1, "lower": -1.0, "period": 2.0}]})
    >>> c = SpecBounds(spec)
    >>> x0 = torch.tensor([[1.0, 0.0]]); x = torch.tensor([[-0.5, 1.5]])
    >>> bool(c.violated(x, x0)[0]), c.repair(x, x0).tolist()
    (True, [[0.0, -0.5]])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from aalearn.constraints.base import ConstraintSet
from aalearn.constraints.physics import Constraint
from aalearn.physics.spec import FeatureSpecification

__all__ = ["SpecBounds", "spec_constraints"]


class SpecBounds(Constraint):
    """Bounds and periodicity of every column of a tabular specification."""

    name = "bounds"
    description = "every column within its specified bounds (clamp); periodic columns wrapped"

    def __init__(self, spec: FeatureSpecification, tol: float = 1e-9) -> None:
        self.spec = spec
        self.tol = tol
        self.lower = torch.from_numpy(spec.lower)
        self.upper = torch.from_numpy(spec.upper)
        self.periodic = torch.from_numpy(spec.periodic_mask)
        self.period = torch.from_numpy(np.nan_to_num(spec.period, nan=1.0))

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        lo, hi = self.lower.to(x), self.upper.to(x)
        per = self.periodic.to(x.device)
        below = x < lo - self.tol
        above = torch.where(per, x >= hi + self.tol, x > hi + self.tol)
        return (below | above).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        lo, hi = self.lower.to(x), self.upper.to(x)
        per = self.periodic.to(x.device)
        period = self.period.to(x)
        wrapped = lo + torch.remainder(x - lo, period)
        return torch.where(per, wrapped, torch.maximum(torch.minimum(x, hi), lo))

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        per = self.periodic.to(x0.device)
        inf = torch.full_like(x0, torch.inf)
        lo = torch.where(per, -inf, self.lower.to(x0).expand_as(x0))
        hi = torch.where(per, inf, self.upper.to(x0).expand_as(x0))
        return lo, hi


def spec_constraints(spec: FeatureSpecification) -> ConstraintSet:
    """The :class:`ConstraintSet` of a tabular specification (its :class:`SpecBounds`)."""
    return ConstraintSet(None, [SpecBounds(spec)])
