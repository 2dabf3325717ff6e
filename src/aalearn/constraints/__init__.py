"""Physics constraints and σ-unit perturbation budgets.

See :mod:`aalearn.constraints.physics` for the constraints, :mod:`aalearn.constraints.base`
for the switchable set and :mod:`aalearn.constraints.budget` for the threat model.
"""

from aalearn.constraints.base import (
    CONSTRAINTS,
    DEFAULT_CONSTRAINTS,
    PHYSICAL_CONSTRAINTS,
    ConstraintSet,
    resolve_constraint_names,
)
from aalearn.constraints.budget import NORMS, Budget, scaled_delta
from aalearn.constraints.physics import (
    Bounds,
    Constraint,
    EnergyConservation,
    PhiWrap,
    PreprocessingInvariants,
    PtNonNegative,
    PtOrdering,
    PtSumConservation,
)

__all__ = [
    "CONSTRAINTS",
    "DEFAULT_CONSTRAINTS",
    "NORMS",
    "PHYSICAL_CONSTRAINTS",
    "Bounds",
    "Budget",
    "Constraint",
    "ConstraintSet",
    "EnergyConservation",
    "PhiWrap",
    "PreprocessingInvariants",
    "PtNonNegative",
    "PtOrdering",
    "PtSumConservation",
    "resolve_constraint_names",
    "scaled_delta",
]
