r"""Physics constraints on jet features, derived from a :class:`~aalearn.physics.FeatureSet`.

Each constraint knows how to **check** a perturbed sample against its clean original and
how to **repair** it (move it back into the feasible set). All constraints are written
once in PyTorch so that they run inside the attack loop on the same device as the model;
NumPy callers go through :class:`~aalearn.constraints.ConstraintSet`.

Constraints and their repair (registry names in brackets):

* ``pt-nonnegative`` — :math:`p_T \ge 0`; repair: clamp at 0.
* ``phi-wrap`` — :math:`\phi \in [-\pi, \pi)`; repair: wrap (periodic, no distance cost).
* ``invariants`` — the TopoDNN preprocessing invariants (Pearkes et al.,
  arXiv:1704.02124): the columns the preprocessing fixes at zero (``ConstEta_0``,
  ``ConstPhi_0``, ``ConstEta_1`` when present) stay zero, :math:`\phi_1 \le 0`, and
  zero-padded constituents (clean :math:`p_T = 0`) stay exactly as they are. Repair:
  reset / clamp.
* ``bounds`` — every non-periodic feature within its physical bounds from the feature
  specification; repair: clamp.
* ``pt-ordering`` — pairs of neighbouring constituents that are pT-ordered in the clean
  jet stay ordered (the challenge files are only approximately ordered, so the
  constraint is relative to the clean jet); repair: a running minimum along the
  constituent axis.
* ``pt-sum`` — conservation of the jet's scalar :math:`\sum_i p_{T,i}`; repair: the
  σ-weighted Euclidean projection onto the hyperplane,
  :math:`\Delta p_{T,i} \mathrel{-}= \sigma_i^2 \, r / \sum_j \sigma_j^2` with
  :math:`r = \sum_i p_{T,i} - \sum_i p^0_{T,i}`.
* ``energy`` — conservation of :math:`E = \sum_i p_{T,i} \cosh\eta_i` (massless
  constituents); repair: the same projection with coefficients :math:`\cosh\eta_i` on
  the pT entries. In the challenge layout η is relative to the leading constituent, so
  this is the energy in the frame where the jet axis sits at η = 0 (a boost along the
  beam changes it); documented approximation.

Conservation checks use a relative tolerance (default ``1e-5``, float32 round-off).

Example:
    >>> import torch
    >>> from aalearn.physics import challenge_features
    >>> fs = challenge_features()
    >>> c = PtNonNegative(fs)
    >>> x0 = torch.full((1, 87), 0.01)
    >>> x = x0.clone(); x[0, 0] = -0.5
    >>> bool(c.violated(x, x0)[0]), float(c.repair(x, x0)[0, 0])
    (True, 0.0)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from aalearn.physics.features import DROPPED_FEATURES, FeatureSet

__all__ = [
    "Bounds",
    "Constraint",
    "EnergyConservation",
    "LinearConservation",
    "PhiWrap",
    "PreprocessingInvariants",
    "PtNonNegative",
    "PtOrdering",
    "PtSumConservation",
]


def _mask(values: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(values, dtype=bool))


class Constraint(ABC):
    """One physics constraint, built from a feature specification.

    Subclasses set :attr:`name` and :attr:`description` and implement :meth:`violated`
    and :meth:`repair`. Box-type constraints also implement :meth:`box`, which the
    minimal-perturbation attack uses to stay feasible by construction.

    Args:
        features: The feature specification of the columns.
        tol: Tolerance for the check (absolute for bounds, relative for conservation).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: Whether :meth:`repair` returns a point that satisfies this constraint and moves no
    #: entry away from its clean value (clamps, wraps, resets). The attack loop skips
    #: per-step feasibility checks when every enabled constraint is exact; the framework
    #: still checks the final result.
    exact_repair: ClassVar[bool] = True
    #: Whether :meth:`repair` is exactly the clamp into :meth:`box` for a clean ``x0``
    #: inside the box. When every enabled constraint is such a clamp (or a φ wrap that
    #: cannot trigger), the attack loop projects with one clamp in scaled coordinates.
    box_repair: ClassVar[bool] = False

    def __init__(self, features: FeatureSet, tol: float = 1e-6) -> None:
        self.features = features
        self.tol = tol

    @abstractmethod
    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        """Per-row boolean ``(N,)``: does ``x`` violate the constraint (given clean ``x0``)?"""

    @abstractmethod
    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        """Return a repaired copy of ``x`` (``x0`` is the clean original)."""

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor] | None:
        """Per-entry absolute ``(lower, upper)`` implied by this constraint, or ``None``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PtNonNegative(Constraint):
    """Transverse momenta are non-negative."""

    name = "pt-nonnegative"
    box_repair = True
    description = "pT >= 0 for every constituent; repair clamps at 0"

    def __init__(self, features: FeatureSet, tol: float = 0.0) -> None:
        super().__init__(features, tol)
        self.mask = _mask(features.kind_mask("pt"))

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        m = self.mask.to(x.device)
        return (x[:, m] < -self.tol).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        m = self.mask.to(x.device)
        return torch.where(m, x.clamp(min=0.0), x)

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        m = self.mask.to(x0.device)
        lo = torch.where(m, torch.zeros_like(x0), torch.full_like(x0, -torch.inf))
        return lo, torch.full_like(x0, torch.inf)


class PhiWrap(Constraint):
    r"""Azimuthal angles lie in :math:`[-\pi, \pi)`."""

    name = "phi-wrap"
    description = "phi in [-pi, pi); repair wraps periodically"

    def __init__(self, features: FeatureSet, tol: float = 0.0) -> None:
        super().__init__(features, tol)
        self.mask = _mask(features.periodic_mask)
        self.period = torch.tensor(
            [s.period if s.period is not None else 2 * np.pi for s in features], dtype=torch.float64
        )
        self.lower = torch.from_numpy(features.lower)

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        m = self.mask.to(x.device)
        lo = self.lower.to(x.device, x.dtype)
        hi = lo + self.period.to(x.device, x.dtype)
        bad = (x < lo - self.tol) | (x >= hi + self.tol)
        return (bad & m).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        m = self.mask.to(x.device)
        lo = self.lower.to(x.device, x.dtype)
        period = self.period.to(x.device, x.dtype)
        wrapped = torch.remainder(x - lo, period) + lo
        # remainder can return exactly `period` in float32 for tiny negative inputs
        wrapped = torch.where(wrapped >= lo + period, lo, wrapped)
        # only out-of-range entries change: the float round trip must not move the others
        outside = (x < lo) | (x >= lo + period)
        return torch.where(m & outside, wrapped, x)


class PreprocessingInvariants(Constraint):
    r"""The invariants of the TopoDNN preprocessing hold.

    * columns that the preprocessing fixes at zero (``ConstEta_0``, ``ConstPhi_0``,
      ``ConstEta_1``) stay zero when the layout keeps them;
    * :math:`\phi_1 \le 0` (the rotation puts the second constituent below the axis);
    * zero-padded constituents (clean :math:`p_T = 0`) keep all their entries.
    """

    name = "invariants"
    box_repair = True
    description = (
        "preprocessing invariants: fixed-zero columns stay 0, phi_1 <= 0, padded constituents unchanged"
    )

    def __init__(self, features: FeatureSet, tol: float = 0.0) -> None:
        super().__init__(features, tol)
        names = features.names
        self.zero_mask = _mask(np.array([n in DROPPED_FEATURES for n in names]))
        phi1 = [i for i, s in enumerate(features) if s.kind == "phi" and s.constituent == 1]
        nonpos = np.zeros(len(features), dtype=bool)
        nonpos[phi1] = True
        self.nonpos_mask = _mask(nonpos)
        self.pt_col = torch.from_numpy(features.pt_column_of())

    def padded(self, x0: Tensor) -> Tensor:
        """Entries ``(N, F)`` that belong to zero-padded constituents of the clean jet."""
        return x0[:, self.pt_col.to(x0.device)] == 0

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        z = self.zero_mask.to(x.device)
        nonpos = self.nonpos_mask.to(x.device)
        bad = (z & (x.abs() > self.tol)) | (nonpos & (x > self.tol)) | (self.padded(x0) & (x != x0))
        return bad.any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        z = self.zero_mask.to(x.device)
        nonpos = self.nonpos_mask.to(x.device)
        out = torch.where(z, torch.zeros_like(x), x)
        out = torch.where(nonpos, out.clamp(max=0.0), out)
        return torch.where(self.padded(x0), x0, out)

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        lo = torch.full_like(x0, -torch.inf)
        hi = torch.full_like(x0, torch.inf)
        fixed = self.zero_mask.to(x0.device) | self.padded(x0)
        lo = torch.where(fixed, x0, lo)
        hi = torch.where(fixed, x0, hi)
        hi = torch.where(self.nonpos_mask.to(x0.device), hi.clamp(max=0.0), hi)
        return lo, hi


class Bounds(Constraint):
    """Non-periodic features stay within their physical bounds from the specification."""

    name = "bounds"
    box_repair = True
    description = (
        "every non-periodic feature within its physical [lower, upper] from the feature specification"
    )

    def __init__(self, features: FeatureSet, tol: float = 0.0) -> None:
        super().__init__(features, tol)
        periodic = features.periodic_mask
        self.lower = torch.from_numpy(np.where(periodic, -np.inf, features.lower))
        self.upper = torch.from_numpy(np.where(periodic, np.inf, features.upper))

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        lo = self.lower.to(x.device, x.dtype)
        hi = self.upper.to(x.device, x.dtype)
        return ((x < lo - self.tol) | (x > hi + self.tol)).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        return torch.maximum(
            torch.minimum(x, self.upper.to(x.device, x.dtype)), self.lower.to(x.device, x.dtype)
        )

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        lo = self.lower.to(x0.device, x0.dtype).expand_as(x0)
        hi = self.upper.to(x0.device, x0.dtype).expand_as(x0)
        return lo, hi


class PtOrdering(Constraint):
    """Constituent pairs that are pT-ordered in the clean jet stay ordered."""

    name = "pt-ordering"
    exact_repair = False
    description = (
        "neighbouring constituents ordered in pT in the clean jet stay ordered; repair: running minimum"
    )

    def __init__(self, features: FeatureSet, tol: float = 1e-7) -> None:
        super().__init__(features, tol)
        pts = sorted((s.constituent, i) for i, s in enumerate(features) if s.kind == "pt")
        self.cols = torch.tensor([i for _, i in pts], dtype=torch.long)

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        c = self.cols.to(x.device)
        p, p0 = x[:, c], x0[:, c]
        ordered0 = p0[:, :-1] >= p0[:, 1:]
        return (ordered0 & (p[:, 1:] > p[:, :-1] + self.tol)).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        c = self.cols.to(x.device)
        p, p0 = x[:, c].clone(), x0[:, c]
        ordered0 = p0[:, :-1] >= p0[:, 1:]
        # sequential along the (short) constituent axis, vectorised over jets
        for k in range(1, p.shape[1]):
            p[:, k] = torch.where(ordered0[:, k - 1], torch.minimum(p[:, k], p[:, k - 1]), p[:, k])
        out = x.clone()
        out[:, c] = p
        return out


class LinearConservation(Constraint):
    """A conserved linear combination ``sum_i c_i(x) pT_i`` of the pT entries."""

    exact_repair = False

    def __init__(self, features: FeatureSet, tol: float = 1e-5) -> None:
        super().__init__(features, tol)
        self.pt_mask = _mask(features.kind_mask("pt"))
        self.pt_col = torch.from_numpy(features.pt_column_of())

    def coefficients(self, x: Tensor) -> Tensor:
        """Coefficients ``(N, F)`` of the pT entries (zero elsewhere)."""
        return self.pt_mask.to(x.device).to(x.dtype).expand_as(x)

    def total(self, x: Tensor) -> Tensor:
        return (self.coefficients(x) * x).sum(dim=1)

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        t0 = self.total(x0)
        return (self.total(x) - t0).abs() > self.tol * t0.abs().clamp(min=1e-12)

    def repair(self, x: Tensor, x0: Tensor, weights: Tensor | None = None) -> Tensor:
        """σ²-weighted projection onto the conserving hyperplane (``weights`` = σ² or 1)."""
        c = self.coefficients(x)
        w = torch.ones_like(x) if weights is None else weights
        w = w * (x0[:, self.pt_col.to(x.device)] > 0)  # padded constituents are not moved
        r = self.total(x) - self.total(x0)
        denom = (w * c * c).sum(dim=1).clamp(min=1e-30)
        return x - w * c * (r / denom).unsqueeze(1)

    def project_box(
        self, x: Tensor, x0: Tensor, lo: Tensor, hi: Tensor, weights: Tensor | None = None, n_iter: int = 60
    ) -> Tensor:
        r"""Weighted Euclidean projection onto {conserved total} ∩ {lo ≤ x ≤ hi} (pT entries move).

        The minimiser of :math:`\sum_i (x'_i - x_i)^2/w_i` on the intersection is
        :math:`x'_i = \mathrm{clip}(x_i - \lambda w_i c_i, lo_i, hi_i)` for the scalar
        :math:`\lambda` at which the total is conserved; the total is monotone in
        :math:`\lambda`, which is found by bisection (per row). Rows for which the box
        cannot hold the clean total are left at the clip with the closest total.
        """
        c = self.coefficients(x)
        w = torch.ones_like(x) if weights is None else weights
        movable = (c > 0) & (x0[:, self.pt_col.to(x.device)] > 0) & (hi > lo)
        wc = torch.where(movable, w * c, torch.zeros_like(x))
        target = self.total(x0)
        lo_f = torch.where(torch.isfinite(lo), lo, x.detach() - 1e6)
        hi_f = torch.where(torch.isfinite(hi), hi, x.detach() + 1e6)
        span = torch.where(
            movable, ((x - lo_f).abs() + (hi_f - x).abs()) / wc.clamp(min=1e-30), torch.zeros_like(x)
        )
        bound = span.amax(dim=1, keepdim=True).clamp(min=1e-12)
        a, b = -bound, bound  # total(a) >= target >= total(b)

        def candidate(lam: Tensor) -> Tensor:
            moved = torch.minimum(torch.maximum(x - lam * wc, lo_f), hi_f)
            return torch.where(movable, moved, x)

        for _ in range(n_iter):
            mid = (a + b) / 2
            above = (c * candidate(mid)).sum(dim=1, keepdim=True) > target[:, None]
            a = torch.where(above, mid, a)
            b = torch.where(above, b, mid)
        return candidate((a + b) / 2)


class PtSumConservation(LinearConservation):
    """The jet's scalar pT sum is conserved."""

    name = "pt-sum"
    description = (
        "scalar sum of constituent pT conserved (relative tolerance 1e-5); repair: weighted projection"
    )


class EnergyConservation(LinearConservation):
    r"""The jet energy :math:`\sum_i p_{T,i}\cosh\eta_i` is conserved."""

    name = "energy"
    description = (
        "jet energy sum pT*cosh(eta) conserved (relative tolerance 1e-5); repair: weighted projection"
    )

    def __init__(self, features: FeatureSet, tol: float = 1e-5) -> None:
        super().__init__(features, tol)
        eta_of = {s.constituent: i for i, s in enumerate(features) if s.kind == "eta"}
        # constituents whose eta column is absent (eta fixed at 0 by the preprocessing) have cosh = 1
        self.eta_col = torch.tensor(
            [eta_of.get(s.constituent, -1) if s.kind == "pt" else -1 for s in features], dtype=torch.long
        )

    def coefficients(self, x: Tensor) -> Tensor:
        idx = self.eta_col.to(x.device)
        eta = torch.where(idx >= 0, x[:, idx.clamp(min=0)], torch.zeros_like(x))
        return self.pt_mask.to(x.device).to(x.dtype) * torch.cosh(eta)
