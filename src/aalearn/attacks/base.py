"""The attack interface and the framework code every attack shares.

:class:`Attack` validates the input, decides which jets are attacked (the correctly
classified ones, or all jets for unlabeled data, where success means a decision change),
calls the attack-specific search, then **enforces the threat model itself**: rows that
violate an enabled constraint or the budget are reverted to the clean jet, and the
result reports feasibility, distances in σ units and the physical validity of every row.

Example:
    >>> import torch
    >>> from aalearn.attacks import get_attack
    >>> _ = torch.manual_seed(2)
    >>> model = torch.nn.Sequential(torch.nn.Linear(87, 1))
    >>> x = torch.rand(8, 87).numpy() * 0.01
    >>> res = get_attack("fgsm", eps=1.0).run(model, x)
    >>> res.x_adv.shape, res.unphysical_fraction
    ((8, 87), 0.0)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn.attacks.model import ModelAdapter, Output
from aalearn.attacks.result import AttackResult
from aalearn.constraints import PHYSICAL_CONSTRAINTS, Budget, ConstraintSet, scaled_delta
from aalearn.core.validation import check_array
from aalearn.physics.features import FeatureSet, challenge_features, is_challenge_layout

__all__ = ["Attack", "AttackSetup", "resolve_constraints", "resolve_features", "resolve_sigma"]

FloatArray = npt.NDArray[np.float64]


def resolve_features(
    features: FeatureSet | None, sigma: float | npt.ArrayLike | None, n_features: int, *, data: str = "x"
) -> FeatureSet | None:
    """The feature specification of a threat model on ``n_features`` columns.

    The one resolver of the attacks and the adversarial training strategies: the given
    ``features`` (checked against the column count); else, without an explicit ``sigma``,
    the challenge layout (:func:`~aalearn.physics.features.challenge_features`) when the
    columns are in it (:func:`~aalearn.physics.features.is_challenge_layout`); else
    ``None`` (generic tabular data, budget in units of ``sigma``).

    Args:
        features: A :class:`~aalearn.physics.features.FeatureSet` or ``None``.
        sigma: The explicit σ, if any.
        n_features: Number of columns of the data.
        data: Name of the data in error messages.

    Raises:
        TypeError: If ``features`` is not a FeatureSet.
        ValueError: If it describes another number of columns.

    Example:
        >>> len(resolve_features(None, None, 87)), resolve_features(None, 1.0, 87)
        (87, None)
    """
    if features is not None:
        if not isinstance(features, FeatureSet):
            raise TypeError(f"features must be an aalearn FeatureSet, got {type(features).__name__}")
        if len(features) != n_features:
            raise ValueError(
                f"{data} has {n_features} columns but the feature specification has {len(features)}; "
                "pass features=FeatureSet(...) matching the columns"
            )
        return features
    if sigma is None and is_challenge_layout(n_features):
        return challenge_features()
    return None


def resolve_constraints(
    features: FeatureSet | None, constraints: ConstraintSet | Sequence[str] | str | None
) -> ConstraintSet:
    """The enabled constraints: a ConstraintSet as given, else built from names for ``features``.

    Without a feature specification only "no constraints" (``None``, ``"none"`` or an
    empty list) is possible.

    Raises:
        ValueError: For constraint names without a FeatureSet, or unknown names.

    Example:
        >>> resolve_constraints(None, "none").names
        ()
    """
    if isinstance(constraints, ConstraintSet):
        return constraints
    if features is None:
        if constraints not in (None, "none", []) and not (
            isinstance(constraints, Sequence) and len(constraints) == 0
        ):
            raise ValueError("physics constraints need a FeatureSet; pass features=... or constraints='none'")
        return ConstraintSet(None, [])
    return ConstraintSet.from_names(features, constraints)


def resolve_sigma(
    x: FloatArray, features: FeatureSet | None, sigma: float | npt.ArrayLike | None
) -> FloatArray:
    """Per-entry σ ``(N, F)``: explicit ``sigma`` (scalar, ``(F,)``, ``(N, F)``) or from the features."""
    if sigma is not None:
        s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), x.shape).copy()
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("sigma must be finite and strictly positive everywhere")
        out: FloatArray = s
        return out
    if features is None:
        raise ValueError(
            "give either a FeatureSet (features=...) or an explicit sigma=... to define the budget units"
        )
    return np.asarray(features.sigma(x), dtype=np.float64)


@dataclass
class AttackSetup:
    """Everything an attack's search needs, prepared and validated by the framework.

    Attributes:
        model: The adapted model.
        x: Clean inputs, float64 ``(N, F)``.
        features: Feature specification (``None`` for generic tabular data with explicit σ).
        constraints: Enabled constraints.
        sigma: Per-entry σ ``(N, F)``.
        periodic: Periodic columns ``(F,)``.
        mutable: Columns the attack may change ``(F,)``.
        labels: Labels or ``None``.
        target: Class each row must stop being predicted as.
        decision_clean: Clean decisions.
        score_clean: Clean scores (binary models) or ``None``.
        attacked: Rows to attack.
        batch_size: Rows per model call.
        progress: Show progress bars.
    """

    model: ModelAdapter
    x: FloatArray
    features: FeatureSet | None
    constraints: ConstraintSet
    sigma: FloatArray
    periodic: npt.NDArray[np.bool_]
    mutable: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.int64] | None
    target: npt.NDArray[np.int64]
    decision_clean: npt.NDArray[np.int64]
    score_clean: FloatArray | None
    attacked: npt.NDArray[np.bool_]
    batch_size: int
    progress: bool

    def tensor(self, a: npt.ArrayLike) -> Tensor:
        """Array as a tensor with the model's dtype and device."""
        return torch.as_tensor(np.asarray(a), dtype=self.model.dtype, device=self.model.device)

    @torch.no_grad()
    def logits(self, x: npt.ArrayLike) -> Tensor:
        """Logits for all rows of ``x``, batched, no gradient (on CPU)."""
        arr = np.asarray(x)
        outs = [
            self.model.logits(self.tensor(arr[i : i + self.batch_size])).cpu()
            for i in range(0, arr.shape[0], self.batch_size)
        ]
        if not outs:
            return torch.zeros(0)
        return torch.cat(outs)

    def fooled(self, x: npt.ArrayLike, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """For candidate rows ``x`` of the clean rows ``rows``: is the target no longer predicted?"""
        dec = ModelAdapter.decision(self.logits(x)).numpy()
        out: npt.NDArray[np.bool_] = dec != self.target[rows]
        return out


class Attack(ABC):
    """Base class of all attacks.

    Subclasses implement :meth:`search` and :meth:`params`; :meth:`run` does the rest.
    Attributes ``name`` and ``budget`` (``None`` for attacks without a norm ball) are
    read by the framework.
    """

    name: str
    budget: Budget | None

    @abstractmethod
    def search(self, setup: AttackSetup, seed: int) -> tuple[FloatArray, dict[str, Any]]:
        """Return adversarial rows for all of ``setup.x`` (unattacked rows unchanged) and diagnostics."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The attack's parameters (JSON-serialisable)."""

    def run(
        self,
        model: nn.Module,
        x: npt.ArrayLike,
        labels: npt.ArrayLike | None = None,
        *,
        features: FeatureSet | None = None,
        constraints: ConstraintSet | Sequence[str] | str | None = None,
        sigma: float | npt.ArrayLike | None = None,
        mutable: Sequence[str] | npt.ArrayLike | None = None,
        output: Output = "logit",
        seed: int = 0,
        batch_size: int = 4096,
        enforce: bool = True,
        progress: bool = False,
    ) -> AttackResult:
        """Attack ``model`` on ``x``.

        Args:
            model: Torch classifier (binary logit/probability, or multi-class logits).
            x: Clean inputs ``(N, F)``, in the model's input space.
            labels: True labels; ``None`` attacks the model's own decisions (unlabeled data).
            features: Feature specification; default: the 87-column challenge layout when
                ``x`` has 87 columns. ``None`` is allowed for generic tabular data with an
                explicit ``sigma`` and no physics constraints.
            constraints: A :class:`ConstraintSet`, constraint names, ``"none"``, or
                ``None`` for the defaults (pT ≥ 0, φ wrap, preprocessing invariants, bounds).
            sigma: Explicit per-feature uncertainty (overrides the feature specification's).
            mutable: Feature names (or a boolean mask) the attack may change; default all.
            output: ``"logit"`` or ``"probability"`` (what the model returns).
            seed: Random seed; the same seed gives the same result for any ``batch_size``.
            batch_size: Rows per model call.
            enforce: Revert rows that violate an enabled constraint or the budget.
            progress: Show a progress bar.

        Returns:
            The :class:`AttackResult`.

        Raises:
            ValueError: For bad shapes, non-finite values, unknown constraint or feature
                names, or a feature specification that does not match ``x``.
        """
        t0 = time.perf_counter()
        setup = self._prepare(
            model, x, labels, features, constraints, sigma, mutable, output, batch_size, progress
        )
        with setup.model.evaluating():
            x_adv, extra = self.search(setup, seed)
            x_adv = np.where(setup.attacked[:, None], x_adv, setup.x)
            return self._finalize(setup, x_adv, extra, enforce, time.perf_counter() - t0)

    # ------------------------------------------------------------------ framework
    def _prepare(
        self,
        model: nn.Module,
        x: npt.ArrayLike,
        labels: npt.ArrayLike | None,
        features: FeatureSet | None,
        constraints: ConstraintSet | Sequence[str] | str | None,
        sigma: float | npt.ArrayLike | None,
        mutable: Sequence[str] | npt.ArrayLike | None,
        output: Output,
        batch_size: int,
        progress: bool,
    ) -> AttackSetup:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        adapter = ModelAdapter(model, output)
        arr = check_array(x, name="x", ndim=2, dtype=np.float64)
        n, f = arr.shape
        features = resolve_features(features, sigma, f)
        cs = resolve_constraints(features, constraints)
        sig = resolve_sigma(arr, features, sigma)
        periodic = features.periodic_mask if features is not None else np.zeros(f, dtype=bool)
        mut = self._mutable(mutable, features, f)
        logits = AttackSetup(
            adapter,
            arr,
            features,
            cs,
            sig,
            periodic,
            mut,
            None,
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            None,
            np.zeros(n, bool),
            batch_size,
            progress,
        )
        with adapter.evaluating():
            lg = logits.logits(arr)
        decision = ModelAdapter.decision(lg).numpy().astype(np.int64)
        score = torch.sigmoid(lg).double().numpy() if lg.ndim == 1 else None
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != (n,):
                raise ValueError(f"labels must have shape ({n},), got {lab.shape}")
            if not np.issubdtype(lab.dtype, np.integer) and (
                not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab))
            ):
                raise ValueError("labels must be integer class indices")
            lab = lab.astype(np.int64)
            n_classes = 2 if lg.ndim == 1 else lg.shape[1]
            if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
                raise ValueError(
                    f"labels must lie in [0, {n_classes - 1}] for this model, got {lab.min()}..{lab.max()}"
                )
            target = lab
            attacked = decision == lab
        else:
            lab = None
            target = decision.copy()
            attacked = np.ones(n, dtype=bool)
        logits.labels, logits.target, logits.decision_clean = lab, target, decision
        logits.score_clean, logits.attacked = score, attacked
        return logits

    @staticmethod
    def _mutable(
        mutable: Sequence[str] | npt.ArrayLike | None, features: FeatureSet | None, f: int
    ) -> npt.NDArray[np.bool_]:
        if mutable is None:
            return np.ones(f, dtype=bool)
        m = np.asarray(mutable)
        if m.dtype == bool:
            if m.shape != (f,):
                raise ValueError(f"mutable mask must have shape ({f},), got {m.shape}")
            return m.copy()
        if features is None:
            raise ValueError("mutable feature names need a FeatureSet; pass a boolean mask instead")
        out = np.zeros(f, dtype=bool)
        out[features.indices([str(s) for s in m.ravel()])] = True
        return out

    def _finalize(
        self, setup: AttackSetup, x_adv: FloatArray, extra: dict[str, Any], enforce: bool, seconds: float
    ) -> AttackResult:
        x0 = torch.from_numpy(setup.x)
        xa = torch.from_numpy(np.ascontiguousarray(x_adv, dtype=np.float64))
        sig = torch.from_numpy(setup.sigma)
        per = torch.from_numpy(setup.periodic)
        violations = {k: v.numpy() for k, v in setup.constraints.violations(xa, x0).items()}
        nonfinite = (~torch.isfinite(xa)).any(dim=1).numpy()
        if nonfinite.any():
            violations["non-finite"] = nonfinite
            xa = torch.where(torch.isfinite(xa), xa, x0)
        changed_immutable = ((xa != x0) & ~torch.from_numpy(setup.mutable)).any(dim=1).numpy()
        if changed_immutable.any():
            violations["immutable"] = changed_immutable
        budget = getattr(self, "budget", None)
        if budget is not None:
            violations["budget"] = (~budget.contains(xa, x0, sig, per)).numpy()
        infeasible = np.zeros(setup.x.shape[0], dtype=bool)
        for v in violations.values():
            infeasible |= v
        if enforce and infeasible.any():
            extra = dict(extra)
            extra["reverted_infeasible"] = {k: int(v.sum()) for k, v in violations.items() if v.any()}
            x_adv = np.where(infeasible[:, None], setup.x, x_adv)
            xa = torch.from_numpy(np.ascontiguousarray(x_adv, dtype=np.float64))
            violations = {k: np.zeros_like(v) for k, v in violations.items()}
            infeasible[:] = False
        if setup.features is not None:
            # the preprocessing invariants only mean something in the preprocessed layout
            # (ConstPT_i, ...); in physical space (absolute η, φ) they do not apply
            preprocessed = any(n.startswith("Const") for n in setup.features.names)
            names = [n for n in PHYSICAL_CONSTRAINTS if preprocessed or n != "invariants"]
            phys = ConstraintSet.from_names(setup.features, names)
            physical = {k: v.numpy() for k, v in phys.violations(xa, x0).items()}
        else:
            physical = {}
        lg = setup.logits(x_adv)
        decision_adv = ModelAdapter.decision(lg).numpy().astype(np.int64)
        score_adv = torch.sigmoid(lg).double().numpy() if lg.ndim == 1 else None
        z = scaled_delta(xa, x0, sig, per)
        delta = xa - x0
        distance = {
            "linf_sigma": z.abs().amax(dim=1).numpy() if z.shape[1] else np.zeros(len(z)),
            "l2_sigma": z.norm(dim=1).numpy(),
            "chi2_sigma": (z * z).mean(dim=1).numpy(),
            "l1": delta.abs().sum(dim=1).numpy(),
            "n_changed": (delta != 0).sum(dim=1).numpy().astype(np.float64),
        }
        success = setup.attacked & (decision_adv != setup.target)
        extra = {**extra, "sigma": setup.sigma, "periodic": setup.periodic}
        return AttackResult(
            attack=self.name,
            params=self.params(),
            x=setup.x,
            x_adv=np.asarray(x_adv, dtype=np.float64),
            target=setup.target,
            labels=setup.labels,
            decision_clean=setup.decision_clean,
            decision_adv=decision_adv,
            score_clean=setup.score_clean,
            score_adv=score_adv,
            attacked=setup.attacked,
            success=success,
            feasible=~infeasible,
            violations=violations,
            physical_violations=physical,
            distance=distance,
            seconds=seconds,
            extra=extra,
        )
