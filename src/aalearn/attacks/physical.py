r"""Attacks in physical space: perturb (pT [GeV], absolute η, absolute φ), classify after preprocessing.

The challenge models take the 87 TopoDNN-preprocessed features (Pearkes, Fedorko, Lister,
Gay, arXiv:1704.02124): pT in units of 1679.1593 GeV, η and φ relative to the leading
constituent and rotated. Physicists often want to perturb the *physical* constituents
instead, with the physics constraints applied where they mean something: pT ≥ 0, φ wrap,
bounds and — in particular — energy conservation :math:`\sum_i p_{T,i}\cosh\eta_i` with
the **absolute** η (in the preprocessed layout η is relative, so the "energy" there is
only an approximation).

This module puts a differentiable copy of the preprocessing in front of the model:

* :class:`TopoDNNPreprocessing` — the TopoDNN preprocessing as a ``torch.nn.Module``.
  It mirrors :func:`aalearn.physics.preprocessing.topodnn_preprocess`: the preprocessing
  is written twice because one is NumPy (for data files) and one is differentiable torch
  (for attacks); ``tests/attacks/test_physical.py`` keeps the two identical.
* :func:`physical_features` — the :class:`~aalearn.physics.FeatureSet` of the flat
  physical layout ``PT_0, Eta_0, Phi_0, PT_1, ...`` (σ from the resolution model).
* :func:`through_preprocessing` — ``nn.Sequential(TopoDNNPreprocessing(...), model)``.
* :func:`attack_constituents` — runs any registered attack in physical space and returns
  the :class:`~aalearn.attacks.AttackResult` (in physical space) plus the adversarial
  jets in the model's 87-feature layout.

Constraints in physical space: the preprocessing invariants (``invariants``: fixed-zero
columns, :math:`\phi_1 \le 0`) hold by construction after the preprocessing and are
wrong before it (an absolute :math:`\phi_1` may be positive), so they are not available
here; the defaults are :data:`PHYSICAL_SPACE_CONSTRAINTS` plus :class:`PaddedConstituents`
(zero-padded constituents stay exactly as they are), which is always enabled.

Example:
    >>> import numpy as np, torch
    >>> from aalearn.models import TopoDNN
    >>> rng = np.random.default_rng(0)
    >>> pt = np.sort(rng.uniform(1.0, 300.0, (4, 30)))[:, ::-1]
    >>> c = np.stack([pt, rng.normal(0.5, 0.3, (4, 30)), rng.normal(1.0, 0.3, (4, 30))], axis=-1)
    >>> res, x87 = attack_constituents(TopoDNN(hidden=(8,)).eval(), c, attack_kwargs={"eps": 0.5})
    >>> res.x_adv.shape, x87.shape
    ((4, 90), (4, 87))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn.attacks.registry import get_attack
from aalearn.attacks.result import AttackResult
from aalearn.constraints import CONSTRAINTS, ConstraintSet, resolve_constraint_names
from aalearn.constraints.physics import Constraint
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, N_CONSTITUENTS, FeatureSet, FeatureSpec
from aalearn.physics.kinematics import wrap_phi
from aalearn.physics.preprocessing import pad_constituents, topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel

__all__ = [
    "PHYSICAL_SPACE_CONSTRAINTS",
    "PaddedConstituents",
    "TopoDNNPreprocessing",
    "attack_constituents",
    "physical_constraint_set",
    "physical_features",
    "through_preprocessing",
]

#: Constraints enabled in physical space when none are named (plus :class:`PaddedConstituents`).
PHYSICAL_SPACE_CONSTRAINTS: tuple[str, ...] = ("pt-nonnegative", "phi-wrap", "bounds")
#: Largest physical pT of a constituent at the 13 TeV LHC (half the beam energy), GeV.
_MAX_PT_GEV = 6500.0


def _wrap(phi: Tensor) -> Tensor:
    r"""Wrap into :math:`[-\pi, \pi)` exactly like :func:`aalearn.physics.kinematics.wrap_phi`."""
    return torch.remainder(phi + math.pi, 2.0 * math.pi) - math.pi


class TopoDNNPreprocessing(nn.Module):
    r"""Differentiable TopoDNN preprocessing (Pearkes et al., arXiv:1704.02124).

    Mirrors :func:`aalearn.physics.preprocessing.topodnn_preprocess` step by step — that
    one is NumPy (for data files), this one is differentiable torch (for attacks); the
    test suite keeps them identical:

    1. translate so that constituent 0 sits at the origin, φ wrapped into
       :math:`[-\pi, \pi)`;
    2. rotate in the (η, φ) plane so that constituent 1 lands at η = 0, φ ≤ 0;
    3. optionally flip η so that :math:`\sum_i p_{T,i}\eta_i \ge 0` (off by default,
       like the challenge files);
    4. divide pT by ``pt_scale``;
    5. drop ``ConstEta_0``, ``ConstPhi_0``, ``ConstEta_1``.

    Padded constituents (pT = 0, or negative) give zeros in η and φ. Gradients flow
    through every step (``atan2`` with a safe argument where constituent 1 is absent,
    ``remainder`` for the wrap, no in-place operations).

    Args:
        pt_scale: GeV per output pT unit (1679.1593 in the challenge).
        n_constituents: Number of constituents ``K`` of the input.
        flip_eta: Apply the η flip of step 3.

    Input: ``(N, 3K)`` flat ``(pT_0, η_0, φ_0, pT_1, ...)`` in GeV and absolute
    coordinates. Output: ``(N, 3K - 3)`` in the challenge layout (87 columns for K = 30).

    Example:
        >>> pre = TopoDNNPreprocessing(n_constituents=3)
        >>> x = torch.tensor([[300.0, 0.5, 1.0, 100.0, 0.6, 1.1, 50.0, 0.4, 0.9]])
        >>> y = pre(x)
        >>> y.shape, bool(y[0, 2] <= 0)
        (torch.Size([1, 6]), True)
    """

    def __init__(
        self,
        pt_scale: float = CHALLENGE_PT_SCALE_GEV,
        n_constituents: int = N_CONSTITUENTS,
        flip_eta: bool = False,
    ) -> None:
        super().__init__()
        if not (math.isfinite(pt_scale) and pt_scale > 0):
            raise ValueError(f"pt_scale must be positive, got {pt_scale}")
        if isinstance(n_constituents, bool) or not isinstance(n_constituents, int) or n_constituents < 2:
            raise ValueError(f"n_constituents must be an integer of at least 2, got {n_constituents!r}")
        self.pt_scale = float(pt_scale)
        self.n_constituents = n_constituents
        self.flip_eta = bool(flip_eta)

    def extra_repr(self) -> str:
        return f"pt_scale={self.pt_scale}, n_constituents={self.n_constituents}, flip_eta={self.flip_eta}"

    def forward(self, x: Tensor) -> Tensor:
        """Preprocess flat physical constituents ``(N, 3K)`` into ``(N, 3K - 3)`` features."""
        k = self.n_constituents
        if x.ndim != 2 or x.shape[1] != 3 * k:
            raise ValueError(
                f"expected flat constituents of shape (N, {3 * k}) = (pT_0, eta_0, phi_0, ...), "
                f"got {tuple(x.shape)}"
            )
        c = x.reshape(x.shape[0], k, 3)
        pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
        real = pt > 0
        zero = torch.zeros_like(eta)
        # 1. translate
        eta_t = torch.where(real, eta - eta[:, :1], zero)
        phi_t = torch.where(real, _wrap(phi - phi[:, :1]), zero)
        # 2. rotate: constituent 1 at angle psi goes to -pi/2 (eta = 0, phi <= 0)
        e1, p1 = eta_t[:, 1], phi_t[:, 1]
        has_second = (e1 != 0) | (p1 != 0)
        # atan2(0, 0) has a NaN gradient: feed a harmless point where constituent 1 is absent
        psi = torch.atan2(
            torch.where(has_second, p1, torch.zeros_like(p1)),
            torch.where(has_second, e1, torch.ones_like(e1)),
        )
        theta = torch.where(has_second, -0.5 * math.pi - psi, torch.zeros_like(psi))[:, None]
        cos_t, sin_t = torch.cos(theta), torch.sin(theta)
        eta_r = eta_t * cos_t - phi_t * sin_t
        phi_r = eta_t * sin_t + phi_t * cos_t
        # fixed entries: eta_0 = phi_0 = eta_1 = 0, phi_1 <= 0 (exact zero-crossing rounding)
        eta_r = torch.cat([torch.zeros_like(eta_r[:, :2]), eta_r[:, 2:]], dim=1)
        phi_r = torch.cat([torch.zeros_like(phi_r[:, :1]), phi_r[:, 1:2].clamp(max=0.0), phi_r[:, 2:]], dim=1)
        # 3. optional flip
        if self.flip_eta:
            s = (pt * eta_r).sum(dim=1, keepdim=True)
            eta_r = eta_r * torch.where(s < 0, -torch.ones_like(s), torch.ones_like(s))
        eta_r = torch.where(real, eta_r, zero)
        phi_r = torch.where(real, phi_r, zero)
        # 4. scale and 5. drop ConstEta_0, ConstPhi_0, ConstEta_1
        full = torch.stack([pt / self.pt_scale, eta_r, phi_r], dim=-1).reshape(x.shape[0], 3 * k)
        return torch.cat([full[:, 0:1], full[:, 3:4], full[:, 5:]], dim=1)


def physical_features(
    n_constituents: int = N_CONSTITUENTS,
    resolution: ResolutionModel | None = None,
    eta_max: float = 5.0,
) -> FeatureSet:
    """The flat physical layout ``PT_0, Eta_0, Phi_0, PT_1, ...`` as a :class:`FeatureSet`.

    pT in GeV (``scale_gev = 1``) within ``[0, 6500]`` (half the 13 TeV beam energy);
    absolute η within ``[-eta_max, eta_max]``; absolute φ in ``[-π, π)``, periodic with
    period 2π. σ comes from ``resolution`` at each constituent's pT, as for the
    challenge layout (:func:`aalearn.physics.challenge_features`).

    Args:
        n_constituents: Number of constituents ``K`` (3K features).
        resolution: Resolution model defining σ (default :class:`ResolutionModel`).
        eta_max: Bound on the absolute pseudorapidity.

    Returns:
        The feature set (90 features for 30 constituents).

    Example:
        >>> fs = physical_features()
        >>> len(fs), fs.names[:4], fs[0].unit
        (90, ('PT_0', 'Eta_0', 'Phi_0', 'PT_1'), 'GeV')
    """
    if isinstance(n_constituents, bool) or not isinstance(n_constituents, int) or n_constituents < 1:
        raise ValueError(f"n_constituents must be a positive integer, got {n_constituents!r}")
    if not (math.isfinite(eta_max) and eta_max > 0):
        raise ValueError(f"eta_max must be positive, got {eta_max}")
    specs: list[FeatureSpec] = []
    for i in range(n_constituents):
        specs.append(FeatureSpec(f"PT_{i}", "pt", i, "GeV", 0.0, _MAX_PT_GEV, None, 1.0))
        specs.append(FeatureSpec(f"Eta_{i}", "eta", i, "1", -float(eta_max), float(eta_max)))
        specs.append(FeatureSpec(f"Phi_{i}", "phi", i, "rad", -np.pi, np.pi, 2.0 * np.pi))
    return FeatureSet(tuple(specs), resolution or ResolutionModel())


def through_preprocessing(model: nn.Module, **preprocessing_kwargs: Any) -> nn.Module:
    """The model behind a :class:`TopoDNNPreprocessing`: it now takes physical constituents.

    A model that standardises its inputs itself (``input_mean``/``input_std`` buffers,
    as :class:`~aalearn.models.TopoDNN` after ``fit_input_scaling``) needs nothing
    special: it still sees the preprocessed features.

    Args:
        model: A classifier of the preprocessed features.
        **preprocessing_kwargs: ``pt_scale``, ``n_constituents``, ``flip_eta`` of
            :class:`TopoDNNPreprocessing`.

    Returns:
        ``nn.Sequential(TopoDNNPreprocessing(**preprocessing_kwargs), model)``.

    Example:
        >>> m = through_preprocessing(nn.Linear(87, 1))
        >>> m(torch.rand(2, 90) + 1.0).shape
        torch.Size([2, 1])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    wrapped = nn.Sequential(TopoDNNPreprocessing(**preprocessing_kwargs), model)
    # a new container is in training mode; take the model's mode without touching its
    # submodules (ModelAdapter.evaluating() restores the container's mode recursively)
    wrapped.training = wrapped[0].training = model.training
    return wrapped


class PaddedConstituents(Constraint):
    """Zero-padded constituents (clean pT = 0) keep all their entries.

    The physical-space counterpart of the padded-constituent rule of
    :class:`~aalearn.constraints.PreprocessingInvariants` (without its φ₁ ≤ 0 and
    fixed-zero rules, which only hold after the preprocessing).

    Example:
        >>> fs = physical_features(2)
        >>> x0 = torch.tensor([[100.0, 0.1, 0.2, 0.0, 0.0, 0.0]])
        >>> x = x0 + 0.5
        >>> c = PaddedConstituents(fs)
        >>> bool(c.violated(x, x0)[0]), c.repair(x, x0)[0, 3:].tolist()
        (True, [0.0, 0.0, 0.0])
    """

    name = "padded"
    description = "zero-padded constituents (clean pT = 0) keep all their entries"

    def __init__(self, features: FeatureSet, tol: float = 0.0) -> None:
        super().__init__(features, tol)
        self.pt_col = torch.from_numpy(features.pt_column_of())

    def padded(self, x0: Tensor) -> Tensor:
        """Entries ``(N, F)`` that belong to zero-padded constituents of the clean jet."""
        return x0[:, self.pt_col.to(x0.device)] == 0

    def violated(self, x: Tensor, x0: Tensor) -> Tensor:
        return (self.padded(x0) & (x != x0)).any(dim=1)

    def repair(self, x: Tensor, x0: Tensor) -> Tensor:
        return torch.where(self.padded(x0), x0, x)

    def box(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        fixed = self.padded(x0)
        lo = torch.where(fixed, x0, torch.full_like(x0, -torch.inf))
        hi = torch.where(fixed, x0, torch.full_like(x0, torch.inf))
        return lo, hi


def _requested_names(constraints: Sequence[str] | str | None) -> list[str]:
    if constraints is None:
        return []
    if isinstance(constraints, str):
        return [n.strip() for n in constraints.split(",")]
    return [str(n) for n in constraints]


def physical_constraint_set(
    features: FeatureSet, constraints: Sequence[str] | str | None = None
) -> ConstraintSet:
    """The constraint set for physical space: the named constraints plus :class:`PaddedConstituents`.

    ``None`` gives :data:`PHYSICAL_SPACE_CONSTRAINTS`; ``"default"`` expands to the
    framework defaults without ``invariants``; ``"none"`` leaves only the padded rule.

    Args:
        features: A physical feature set (:func:`physical_features`).
        constraints: Constraint names (see :data:`aalearn.constraints.CONSTRAINTS`).

    Raises:
        ValueError: For an unknown name, or for ``"invariants"``, which only holds in
            the preprocessed layout.

    Example:
        >>> physical_constraint_set(physical_features(), "default,energy").names
        ('energy', 'pt-nonnegative', 'phi-wrap', 'bounds', 'padded')
    """
    if "invariants" in _requested_names(constraints):
        raise ValueError(
            "the 'invariants' constraint (fixed-zero columns, phi_1 <= 0) describes the preprocessed "
            "layout; in physical space (absolute eta, phi) the preprocessing makes them hold by "
            "construction, and phi_1 <= 0 is wrong for absolute phi. Drop it: padded constituents "
            "are always protected here"
        )
    names = PHYSICAL_SPACE_CONSTRAINTS if constraints is None else resolve_constraint_names(constraints)
    objs: list[Constraint] = [CONSTRAINTS[n](features) for n in names if n != "invariants"]
    return ConstraintSet(features, [*objs, PaddedConstituents(features)])


def attack_constituents(
    model: nn.Module,
    constituents: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    attack: str = "pgd",
    *,
    n_constituents: int = N_CONSTITUENTS,
    constraints: Sequence[str] | str | None = None,
    attack_kwargs: dict[str, Any] | None = None,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
    flip_eta: bool = False,
    resolution: ResolutionModel | None = None,
    eta_max: float = 5.0,
    **run_kwargs: Any,
) -> tuple[AttackResult, npt.NDArray[np.float64]]:
    """Attack a model of the preprocessed features by perturbing the physical constituents.

    The constituents are padded or truncated to ``n_constituents`` and flattened to
    ``(pT_0, η_0, φ_0, pT_1, ...)``; out-of-range φ are wrapped into ``[-π, π)``. The
    attack runs on :func:`through_preprocessing` ``(model)`` with
    :func:`physical_features` (budgets in σ of GeV and absolute angles) and the
    constraints of :func:`physical_constraint_set` (padded constituents always kept).

    Args:
        model: Classifier of the ``3K - 3`` preprocessed features (87 for K = 30).
        constituents: ``(N, K', 3)`` array of (pT [GeV], absolute η, absolute φ).
        labels: True labels, or ``None`` to attack the model's own decisions.
        attack: Registry name (see :data:`aalearn.attacks.ATTACKS`).
        n_constituents: Constituents kept per jet.
        constraints: Constraint names; ``None`` gives :data:`PHYSICAL_SPACE_CONSTRAINTS`.
            ``"invariants"`` is refused.
        attack_kwargs: Keyword arguments of :func:`aalearn.attacks.get_attack`.
        pt_scale: pT scale of the preprocessing (GeV per feature unit).
        flip_eta: η flip of the preprocessing.
        resolution: Resolution model defining σ.
        eta_max: Bound on the absolute η.
        **run_kwargs: Further arguments of :meth:`aalearn.attacks.Attack.run` (``seed``,
            ``batch_size``, ``mutable`` with names such as ``"PT_3"``, ...).

    Returns:
        ``(result, x_adv_features)``: the :class:`AttackResult` in physical space
        (``result.x_adv.reshape(N, K, 3)`` are the adversarial constituents) and the
        adversarial jets in the model's feature layout, float64 ``(N, 3K - 3)``.

    Raises:
        ValueError: For bad shapes, non-finite values, negative pT, values outside the
            physical bounds, ``"invariants"`` or ``features=`` in ``run_kwargs``.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> c = np.array([[[300.0, 0.5, 3.1], [100.0, 0.6, -3.1], [0.0, 0.0, 0.0]]])
        >>> res, x = attack_constituents(TopoDNN(n_features=6, hidden=(4,)).eval(), c, n_constituents=3)
        >>> x.shape, bool(np.all(res.x_adv[:, 6:] == 0))
        ((1, 6), True)
    """
    if "features" in run_kwargs:
        raise ValueError("attack_constituents sets features= itself (physical_features); do not pass it")
    c = pad_constituents(constituents, n_constituents)
    if not np.all(np.isfinite(c)):
        raise ValueError("constituents contain NaN/inf")
    if np.any(c[..., 0] < 0):
        raise ValueError("constituents contain negative pT")
    phi = c[..., 2]
    c[..., 2] = np.where((phi < -np.pi) | (phi >= np.pi), wrap_phi(phi), phi)
    flat = c.reshape(c.shape[0], 3 * n_constituents)
    features = physical_features(n_constituents, resolution, eta_max)
    outside = np.flatnonzero(features.out_of_bounds(flat).any(axis=0))
    if outside.size:
        bad = [features.names[i] for i in outside]
        raise ValueError(
            f"constituents outside the physical bounds (pT in [0, {_MAX_PT_GEV:g}] GeV, "
            f"|eta| <= {eta_max:g}) in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    cs = physical_constraint_set(features, constraints)
    wrapped = through_preprocessing(
        model, pt_scale=pt_scale, n_constituents=n_constituents, flip_eta=flip_eta
    )
    res = get_attack(attack, **(attack_kwargs or {})).run(
        wrapped, flat, labels, features=features, constraints=cs, **run_kwargs
    )
    x_feat = topodnn_preprocess(
        res.x_adv.reshape(-1, n_constituents, 3),
        pt_scale=pt_scale,
        flip_eta=flip_eta,
        n_constituents=n_constituents,
    )
    return res, np.asarray(x_feat, dtype=np.float64)
