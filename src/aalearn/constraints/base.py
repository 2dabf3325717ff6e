"""A set of switchable physics constraints, assembled by name from a feature specification.

The attack framework applies a :class:`ConstraintSet` after every step (repair) and
reports, per jet, which constraint an output violates. Constraints come from the
feature specification (bounds, periodicity, which column is which), never from the
attack (the secml-torch idea of constraints as a separate component).

Example:
    >>> from aalearn.physics import challenge_features
    >>> cs = ConstraintSet.from_names(challenge_features())
    >>> cs.names
    ('pt-nonnegative', 'phi-wrap', 'invariants', 'bounds')
    >>> ConstraintSet.from_names(challenge_features(), ["pt-sum"]).names
    ('pt-sum',)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from aalearn.constraints.physics import (
    Bounds,
    Constraint,
    EnergyConservation,
    LinearConservation,
    PhiWrap,
    PreprocessingInvariants,
    PtNonNegative,
    PtOrdering,
    PtSumConservation,
)
from aalearn.physics.features import FeatureSet

__all__ = [
    "CONSTRAINTS",
    "DEFAULT_CONSTRAINTS",
    "PHYSICAL_CONSTRAINTS",
    "ConstraintSet",
    "resolve_constraint_names",
]

#: Registry: constraint name -> class.
CONSTRAINTS: dict[str, type[Constraint]] = {
    c.name: c
    for c in (
        PtNonNegative,
        PhiWrap,
        PreprocessingInvariants,
        Bounds,
        PtOrdering,
        PtSumConservation,
        EnergyConservation,
    )
}
#: Constraints enabled when none are named.
DEFAULT_CONSTRAINTS: tuple[str, ...] = ("pt-nonnegative", "phi-wrap", "invariants", "bounds")
#: The constraints that define a "physical" jet for the unphysical-fraction metric.
PHYSICAL_CONSTRAINTS: tuple[str, ...] = DEFAULT_CONSTRAINTS
# conservation first, then ordering, then the clamps: the clamps move entries towards
# their clean values, so they never undo feasibility of the others by much; a few
# alternating rounds (see ConstraintSet.repair) settle the rest.
_ORDER = ("pt-sum", "energy", "pt-ordering", "pt-nonnegative", "phi-wrap", "invariants", "bounds")


def resolve_constraint_names(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validate constraint names (``None`` → defaults; ``"none"`` or ``[]`` → no constraints).

    Raises:
        ValueError: For an unknown name, listing the known names and a close match.
    """
    if names is None:
        return DEFAULT_CONSTRAINTS
    if isinstance(names, str):
        names = [] if names.strip().lower() in ("", "none") else [n.strip() for n in names.split(",")]
    out: list[str] = []
    for n in names:
        if n == "default":
            out.extend(c for c in DEFAULT_CONSTRAINTS if c not in out)
            continue
        if n not in CONSTRAINTS:
            close = difflib.get_close_matches(n, CONSTRAINTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown constraint {n!r}{hint}; known constraints: {', '.join(CONSTRAINTS)}")
        if n not in out:
            out.append(n)
    return tuple(sorted(out, key=_ORDER.index))


class ConstraintSet:
    """An ordered set of :class:`Constraint` objects over one feature specification.

    Args:
        features: The feature specification (``None`` only for an empty set).
        constraints: The constraint objects (use :meth:`from_names` to build by name).
        rounds: Alternating repair rounds (only used when more than one constraint that
            moves several entries at once, such as a conservation law, is enabled).
    """

    def __init__(
        self, features: FeatureSet | None, constraints: Sequence[Constraint], rounds: int = 3
    ) -> None:
        self.features = features
        self.constraints = tuple(constraints)
        self.rounds = (
            rounds if any(isinstance(c, (LinearConservation, PtOrdering)) for c in constraints) else 1
        )

    @classmethod
    def from_names(
        cls, features: FeatureSet, names: Sequence[str] | str | None = None, **kwargs: Any
    ) -> ConstraintSet:
        """Build from registry names (see :data:`CONSTRAINTS`); ``None`` gives :data:`DEFAULT_CONSTRAINTS`."""
        return cls(features, [CONSTRAINTS[n](features) for n in resolve_constraint_names(names)], **kwargs)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the enabled constraints, in application order."""
        return tuple(c.name for c in self.constraints)

    def repair(self, x: Tensor, x0: Tensor, sigma: Tensor | None = None) -> Tensor:
        """Apply every constraint's repair (a few alternating rounds when needed).

        Args:
            x: Perturbed rows ``(N, F)``.
            x0: Clean rows.
            sigma: Per-entry σ; conservation repairs then move entries in proportion
                to σ² (the projection in the χ² metric).
        """
        for _ in range(self.rounds):
            for c in self.constraints:
                if isinstance(c, LinearConservation):
                    x = c.repair(x, x0, None if sigma is None else sigma * sigma)
                else:
                    x = c.repair(x, x0)
        return x

    def violations(self, x: Tensor, x0: Tensor) -> dict[str, Tensor]:
        """Per-constraint boolean ``(N,)`` masks of violating rows."""
        return {c.name: c.violated(x, x0) for c in self.constraints}

    def feasible(self, x: Tensor, x0: Tensor) -> Tensor:
        """Boolean ``(N,)``: rows that satisfy every enabled constraint."""
        ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for c in self.constraints:
            ok &= ~c.violated(x, x0)
        return ok

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Intersection of the box-type constraints: absolute ``(lower, upper)`` per entry."""
        lo = torch.full_like(x0, -torch.inf)
        hi = torch.full_like(x0, torch.inf)
        for c in self.constraints:
            b = c.box(x0)
            if b is not None:
                lo = torch.maximum(lo, b[0])
                hi = torch.minimum(hi, b[1])
        return lo, hi

    def check_numpy(self, x: npt.ArrayLike, x0: npt.ArrayLike) -> dict[str, npt.NDArray[np.bool_]]:
        """NumPy convenience for :meth:`violations`."""
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
        x0t = torch.as_tensor(np.asarray(x0, dtype=np.float64))
        return {k: v.numpy() for k, v in self.violations(xt, x0t).items()}

    def repair_numpy(self, x: npt.ArrayLike, x0: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """NumPy convenience for :meth:`repair` (float64)."""
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
        x0t = torch.as_tensor(np.asarray(x0, dtype=np.float64))
        out: npt.NDArray[np.float64] = self.repair(xt, x0t).numpy()
        return out

    def describe(self) -> list[dict[str, str]]:
        """Name and description of each enabled constraint."""
        return [{"name": c.name, "description": c.description} for c in self.constraints]

    def __repr__(self) -> str:
        return f"ConstraintSet({list(self.names)})"
